// Calls still running when server.shutdown_grace_s ends (issue 21, item 1): at the grace
// deadline every in-flight call is cancelled upstream, gets a terminal answer — a stream
// already relaying gets an SSE error event (code `shutdown`) and ends without [DONE], a
// call still waiting for the upstream gets a 503 in OpenAI's error shape — and is in the
// ledger with what it used (status as the client saw it, error_type `shutdown`) before the
// ledger is closed and the process exits 0.
//
// The mock makes the calls outlast a 1 s grace: gpt-4o answers only after 60 s (buffered
// calls and streams stuck before their first event), and gpt-3.5-turbo streams 2,000
// chunks 20 ms apart (streams relaying when the grace ends).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  REQUEST_TIMEOUT_MS, openAIErrorProblems, runTurnout, sleep, startGateway, startMock, stopAll, withTimeout,
} from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

const RELAYING_STREAMS = 8;
const WAITING_STREAMS = 3;
const WAITING_BUFFERED = 6;
const GRACE_S = 1;

let mock;
let gateway;

before(async () => {
  mock = await startMock([
    '--fault-models', 'gpt-4o', '--latency-ms', '60000',
    '--chunks', '2000', '--completion-words', '2000', '--chunk-delay-ms', '20',
  ]);
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => {
      config.server.shutdown_grace_s = GRACE_S;
      config.providers.openai.timeout_s = 300;
    },
  });
});
after(stopAll);

// Starts a streaming call and resolves once its response head and first event are in; the
// returned `done` resolves with everything the client read and whether the body ended
// cleanly (the chunked terminator arrived) or broke.
async function startRelayingStream(id) {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': id },
    body: JSON.stringify({ model: 'gpt-3.5-turbo', stream: true, messages: promptWithTokens(12) }),
    signal: AbortSignal.timeout(60_000),
  });
  assert.equal(response.status, 200);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('\n\n')) {
    const { value, done } = await reader.read();
    assert.ok(!done, `stream ${id} ended before its first event`);
    text += decoder.decode(value, { stream: true });
  }
  const done = (async () => {
    try {
      for (;;) {
        const { value, done: finished } = await reader.read();
        if (finished) return { text, clean: true };
        text += decoder.decode(value, { stream: true });
      }
    } catch (error) {
      return { text, clean: false, error };
    }
  })();
  return { id, done };
}

// A call the upstream will not answer within the grace; resolves with the response.
function startWaitingCall(id, stream) {
  const body = { model: 'gpt-4o', messages: promptWithTokens(12) };
  if (stream) body.stream = true;
  return {
    id,
    done: gateway.request('POST', '/v1/chat/completions', { json: body, headers: { 'x-request-id': id }, timeoutMs: 60_000 }),
  };
}

function sseData(text) {
  return text.split('\n\n').filter(Boolean).map((event) => event.split('\n')
    .filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim()).join('\n'));
}

async function exportLedger() {
  const out = await runTurnout(['ledger', 'export', '--format', 'jsonl', '--config', gateway.configFile], { cwd: gateway.dir });
  assert.equal(out.code, 0, out.stderr);
  return out.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

describe('calls still in flight when the shutdown grace ends', () => {
  const relaying = [];
  const waiting = [];
  let exit;
  let stoppedAfterMs;

  it('SIGTERM: the process exits 0 soon after the grace, though the calls would run much longer', async () => {
    for (let i = 0; i < RELAYING_STREAMS; i += 1) relaying.push(await startRelayingStream(`cut-stream-${i}`));
    for (let i = 0; i < WAITING_STREAMS; i += 1) waiting.push(startWaitingCall(`cut-wait-stream-${i}`, true));
    for (let i = 0; i < WAITING_BUFFERED; i += 1) waiting.push(startWaitingCall(`cut-wait-plain-${i}`, false));
    // Every waiting call has reached the upstream.
    await withTimeout((async () => {
      while ((await mock.chatRequests()).length < RELAYING_STREAMS + WAITING_STREAMS + WAITING_BUFFERED) await sleep(50);
    })(), REQUEST_TIMEOUT_MS, 'every call reached the mock');

    const signalled = Date.now();
    gateway.handle.child.kill('SIGTERM');
    exit = await gateway.handle.waitExit(30_000);
    stoppedAfterMs = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null }, gateway.handle.stderr);
    assert.ok(stoppedAfterMs >= GRACE_S * 1000 - 100, `stopped after ${stoppedAfterMs} ms: the grace was not waited for`);
    assert.ok(stoppedAfterMs < GRACE_S * 1000 + 5000, `stopped after ${stoppedAfterMs} ms`);
    const events = gateway.handle.logEntries().map((entry) => entry.event);
    assert.ok(events.includes('stopped'), 'the stopped line is logged');
  });

  it('a stream that was relaying gets an SSE error event (code shutdown) and ends cleanly without [DONE]', async () => {
    for (const stream of relaying) {
      const { text, clean, error } = await withTimeout(stream.done, 10_000, `stream ${stream.id}`);
      assert.ok(clean, `stream ${stream.id} broke instead of ending: ${error}`);
      const data = sseData(text);
      assert.ok(!data.includes('[DONE]'), `${stream.id}: a cut stream must not look complete`);
      const last = JSON.parse(data[data.length - 1]);
      assert.deepEqual(openAIErrorProblems(last), [], `${stream.id}: ${data[data.length - 1]}`);
      assert.equal(last.error.code, 'shutdown');
      assert.ok(data.length > 2, `${stream.id}: content was relayed before the cut`);
    }
  });

  it('a call still waiting for the upstream gets 503 in the OpenAI error shape', async () => {
    for (const call of waiting) {
      const response = await withTimeout(call.done, 10_000, `call ${call.id}`);
      assert.equal(response.status, 503, `${call.id}: ${response.text}`);
      assert.deepEqual(openAIErrorProblems(response.json), [], response.text);
      assert.equal(response.json.error.code, 'shutdown');
      assert.equal(response.headers.get('x-request-id'), call.id);
    }
  });

  it('every call is in the ledger once, with what it used and the status its client saw', async () => {
    const records = await exportLedger();
    const byId = new Map();
    for (const record of records) byId.set(record.id, [...(byId.get(record.id) ?? []), record]);
    for (const { id } of [...relaying, ...waiting]) assert.equal(byId.get(id)?.length, 1, `${id}: ${JSON.stringify(byId.get(id))}`);
    assert.equal(records.length, relaying.length + waiting.length, 'nothing else was recorded');
    for (const { id } of relaying) {
      const [record] = byId.get(id);
      assert.equal(record.status, 200, `${id}: the stream had started`);
      assert.equal(record.error_type, 'shutdown');
      assert.equal(record.stream, true);
      assert.ok(record.completion_tokens > 0, `${id}: the streamed tokens are billed`);
      assert.ok(record.prompt_tokens > 0, `${id}: the prompt is billed`);
      assert.notEqual(record.cost_usd, null);
    }
    for (const { id } of waiting) {
      const [record] = byId.get(id);
      assert.equal(record.status, 503, id);
      assert.equal(record.error_type, 'shutdown');
      assert.equal(record.completion_tokens, 0, `${id}: the upstream never answered`);
      assert.equal(record.attempts, 1);
    }
  });

  it('the upstream calls were cancelled, not left running', async () => {
    // The mock notices a relayed stream's cancellation at its next write.
    await withTimeout((async () => {
      for (;;) {
        const stats = await mock.control('GET', '/_mock/stats');
        if (stats.streams_client_gone >= RELAYING_STREAMS && stats.streams_active === 0) return;
        await sleep(50);
      }
    })(), 10_000, 'the mock saw the relayed streams cancelled');
  });
});
