// Streaming chat completions over the wire (docs/REFERENCE.md §2.3 Streaming, §6, §7),
// with raw sockets against the real binary and the mock: events relayed as they arrive,
// the head known before the first byte, usage stripped or priced, every mid-stream fault
// ending in an SSE error event without [DONE], a client that leaves cancelling the
// upstream call, exactly one ledger record per stream, counted usage when the upstream
// reports none, n > 1 / logprobs / tool-call streams passed through byte for byte (checked
// against a tap on the upstream connection and a scripted upstream), [DONE] not held back
// by a slow upstream body end, and a keep-alive client's next request not swallowed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import {
  TEST_MODELS, UPSTREAM_KEY, modelEntry, openAIErrorProblems, sleep, startGateway, startMock, stopAll, withTimeout,
} from './lib/harness.mjs';
import { chatPromptTokens, countTokens, femtoToNumber, tokenCost, usageCost } from './lib/reference.mjs';

const IDLE_TIMEOUT_S = 1;
const STREAM_WAIT_MS = 15_000;
const messages = [{ role: 'user', content: 'Tell me a short story about a gateway.' }];
const SIMPLE_PRICES = TEST_MODELS['gpt-3.5-turbo'];  // the tier a short prompt routes to

// ---------------------------------------------------------------------------------------
// A raw streaming client: the response head, then each SSE event with its arrival time.

class StreamClient {
  static async post(port, body, { headers = {} } = {}) {
    const socket = net.connect({ host: '127.0.0.1', port });
    await withTimeout(new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }), 5_000, `connect to ${port}`);
    const client = new StreamClient(socket);
    const payload = Buffer.from(JSON.stringify(body));
    const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    client.sentAt = performance.now();
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n`
      + `Content-Length: ${payload.length}\r\n${extra}\r\n`);
    socket.write(payload);
    return client;
  }

  constructor(socket) {
    this.socket = socket;
    this.pending = Buffer.alloc(0);
    this.head = null;        // {status, headers}
    this.events = [];        // {raw, data, json, at}
    this.sse = '';
    this.ended = false;      // the terminating zero-length chunk arrived
    this.closed = false;
    this.waiters = new Set();
    socket.on('data', (bytes) => this.receive(bytes, performance.now()));
    socket.on('error', () => {});
    socket.on('close', () => { this.closed = true; this.wake(); });
  }

  receive(bytes, at) {
    this.pending = Buffer.concat([this.pending, bytes]);
    if (!this.head) {
      const end = this.pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.pending.subarray(0, end).toString('latin1').split('\r\n');
      const headers = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      this.head = { status: Number(lines[0].split(' ')[1]), headers, at };
      this.pending = this.pending.subarray(end + 4);
    }
    this.decodeChunks(at);
    this.wake();
  }

  decodeChunks(at) {
    for (;;) {
      const lineEnd = this.pending.indexOf('\r\n');
      if (lineEnd < 0 || this.ended) return;
      const size = parseInt(this.pending.subarray(0, lineEnd).toString('latin1'), 16);
      if (size === 0) {
        this.ended = true;
        return;
      }
      if (this.pending.length < lineEnd + 2 + size + 2) return;
      this.sse += this.pending.subarray(lineEnd + 2, lineEnd + 2 + size).toString('utf8');
      this.pending = this.pending.subarray(lineEnd + 2 + size + 2);
      this.splitEvents(at);
    }
  }

  splitEvents(at) {
    for (;;) {
      const match = /\r\n\r\n|\n\n|\r\r/.exec(this.sse);
      if (!match) return;
      const raw = this.sse.slice(0, match.index + match[0].length);
      this.sse = this.sse.slice(raw.length);
      const data = raw.split(/\r\n|\n|\r/).filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, '')).join('\n');
      let json = null;
      try { json = JSON.parse(data); } catch { /* [DONE], or not JSON */ }
      this.events.push({ raw, data, json, at });
    }
  }

  wake() { for (const waiter of this.waiters) waiter(); }

  // Resolves once `predicate()` holds; rejects after `timeoutMs`.
  async until(predicate, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (this.closed && !predicate()) throw new Error(`connection closed before ${what}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(done, remaining);
        const waiters = this.waiters;
        function done() { clearTimeout(timer); waiters.delete(done); resolve(); }
        waiters.add(done);
      });
    }
  }

  // Waits for the end of the response (terminating chunk or close); returns the client.
  async finish(timeoutMs = STREAM_WAIT_MS) {
    await this.until(() => this.ended || this.closed, timeoutMs, 'the end of the stream');
    this.finishedAt = performance.now();
    this.socket.destroy();
    return this;
  }

  get id() { return this.head?.headers['x-request-id']; }
  get body() { return this.events.map((event) => event.raw).join(''); }
  get sawDone() { return this.events.some((event) => event.data === '[DONE]'); }
  get errorEvents() { return this.events.filter((event) => event.json?.error); }
  get chunks() { return this.events.filter((event) => event.json?.object === 'chat.completion.chunk'); }
  contentEvents() { return this.chunks.filter((event) => event.json.choices.some((choice) => choice.delta?.content)); }
  content() {
    return this.chunks.map((event) => event.json.choices.map((choice) => choice.delta?.content ?? '').join('')).join('');
  }

  close() { this.socket.destroy(); }
}

// Streams `body` to the end.
async function stream(gateway, body) {
  const client = await StreamClient.post(gateway.port, body);
  return client.finish();
}

// ---------------------------------------------------------------------------------------
// A TCP tap between a gateway and the mock: the exact bytes the mock sent, and when the
// gateway closed its upstream connection.

class UpstreamTap {
  static async start(targetPort) {
    const tap = new UpstreamTap(targetPort);
    await new Promise((resolve) => tap.server.listen(0, '127.0.0.1', resolve));
    tap.port = tap.server.address().port;
    return tap;
  }

  constructor(targetPort) {
    this.received = [];   // per connection: Buffer chunks from the mock since the last take()
    this.closes = [];     // performance.now() of each gateway-side close
    this.sockets = new Set();
    this.server = net.createServer((downstream) => {
      const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
      const capture = [];
      this.received.push(capture);
      this.sockets.add(downstream).add(upstream);
      downstream.on('data', (bytes) => upstream.write(bytes));
      upstream.on('data', (bytes) => { capture.push(bytes); downstream.write(bytes); });
      downstream.on('close', () => { this.closes.push(performance.now()); upstream.destroy(); });
      upstream.on('close', () => downstream.destroy());
      for (const socket of [downstream, upstream]) socket.on('error', () => {});
    });
  }

  // The response bodies the mock sent since the last take (chunked coding removed).
  take() {
    const bodies = this.received.filter((capture) => capture.length > 0)
      .map((capture) => dechunk(httpBody(Buffer.concat(capture.splice(0)))));
    return bodies.join('');
  }

  close() {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

function httpBody(bytes) {
  const end = bytes.indexOf('\r\n\r\n');
  assert.ok(end >= 0, 'the tap saw a response head');
  return bytes.subarray(end + 4);
}

function dechunk(bytes) {
  const parts = [];
  let offset = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    if (lineEnd < 0) break;
    const size = parseInt(bytes.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts).toString('utf8');
}

// Splits an SSE body into its events (each with its blank line).
function sseEvents(text) {
  return text.match(/[\s\S]*?(?:\r\n\r\n|\n\n|\r\r)/g) ?? [];
}

function isUsageOnly(event) {
  if (!event.startsWith('data: {')) return false;
  const chunk = JSON.parse(event.slice('data: '.length));
  return chunk.choices?.length === 0 && Boolean(chunk.usage);
}

// ---------------------------------------------------------------------------------------
// Ledger: /stats, and the SQLite row (src/ledger/sqlite/schema.cpp) for the fields /stats
// does not show: error type, usage reported or counted, time to first token.

async function statsTotals(gateway) {
  const stats = await gateway.stats('?recent=0');
  return { total: stats.total_calls, errors: stats.errors };
}

function ledgerRows(gateway, id) {
  assert.match(id, /^[\w.-]+$/, 'request ids are safe to quote');
  const sql = `SELECT status, error_type, usage_reported, ttft_ms, stream FROM calls WHERE id = '${id}'`;
  const out = execFileSync('sqlite3', ['-json', path.join(gateway.dir, 'ledger.db'), sql], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

// Waits (bounded) for the record of request `id`, then checks it is the only new one.
async function expectOneRecord(gateway, before, id, { status, errorType, failed }) {
  let recent = [];
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    recent = (await gateway.stats('?recent=20')).recent_calls;
    if (recent.some((call) => call.id === id)) break;
    await sleep(50);
  }
  const records = recent.filter((call) => call.id === id);
  assert.equal(records.length, 1, `one /stats record for ${id}`);
  assert.equal(records[0].status, status);
  const after = await statsTotals(gateway);
  assert.equal(after.total, before.total + 1, 'exactly one new ledger record');
  assert.equal(after.errors, before.errors + (failed ? 1 : 0), failed ? 'counted in errors' : 'not an error');
  const rows = ledgerRows(gateway, id);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].status, status);
  assert.equal(rows[0].error_type, errorType);
  assert.equal(rows[0].stream, 1);
  return { record: records[0], row: rows[0] };
}

// ---------------------------------------------------------------------------------------

async function mockStats(mock) { return mock.control('GET', '/_mock/stats'); }

// Polls the mock until `predicate(stats)`; returns the stats and the time it took.
async function waitMockStats(mock, predicate, timeoutMs) {
  const started = performance.now();
  for (;;) {
    const stats = await mockStats(mock);
    if (predicate(stats)) return { stats, ms: performance.now() - started };
    if (performance.now() - started > timeoutMs) {
      throw new Error(`mock stats still ${JSON.stringify(stats)} after ${timeoutMs} ms`);
    }
    await sleep(20);
  }
}

function assertErrorEnding(client) {
  assert.equal(client.head.status, 200, 'the head was sent before the failure');
  assert.equal(client.sawDone, false, 'no [DONE] after a failure');
  const errors = client.errorEvents;
  assert.equal(errors.length, 1, `one error event in ${JSON.stringify(client.body)}`);
  assert.deepEqual(openAIErrorProblems(errors[0].json), []);
  assert.equal(client.events.at(-1), errors[0], 'the error event is the last one');
  for (const event of client.events) assert.notEqual(event.json, null, `every event is JSON: ${event.raw}`);
  for (const chunk of client.chunks) {
    assert.ok(chunk.json.choices.every((choice) => choice.finish_reason == null), 'no finish_reason before the error');
  }
  assert.ok(client.ended, 'the chunked body is terminated properly');
}

let mock;
let gateway;
before(async () => {
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => { config.providers.openai.stream_idle_timeout_s = IDLE_TIMEOUT_S; },
  });
});
after(stopAll);

describe('relaying', () => {
  it('events reach the client as the upstream produces them, not when it finishes', async () => {
    await mock.configure({ chunks: 5, chunk_delay_ms: 200 });
    try {
      const client = await stream(gateway, { model: 'auto', messages, stream: true });
      const content = client.contentEvents();
      assert.equal(content.length, 5);
      // Produced 200 ms apart: relayed, the first arrives ~800 ms before the last is even
      // produced and they come one by one; buffered, they would arrive together.
      const spread = content.at(-1).at - content[0].at;
      assert.ok(spread >= 500, `first and last content events arrived ${spread.toFixed(0)} ms apart`);
      const gaps = content.slice(1).map((event, i) => event.at - content[i].at).sort((a, b) => a - b);
      const medianGap = gaps[Math.floor(gaps.length / 2)];
      assert.ok(medianGap >= 100, `median gap between content events ${medianGap.toFixed(0)} ms`);
      assert.ok(client.sawDone);
    } finally {
      await mock.reset();
    }
  });

  it('the head: event-stream, chunked, x-turnout-* known before the first byte, no cost header', async () => {
    const client = await stream(gateway, { model: 'auto', messages, stream: true });
    const { headers } = client.head;
    assert.equal(client.head.status, 200);
    assert.match(headers['content-type'], /^text\/event-stream/);
    assert.equal(headers['transfer-encoding'], 'chunked');
    assert.equal(headers['content-length'], undefined);
    assert.equal(headers['x-turnout-model'], 'gpt-3.5-turbo');
    assert.equal(headers['x-turnout-route'], 'simple');
    assert.equal(headers['x-turnout-prompt-tokens'], String(chatPromptTokens(messages)));
    assert.equal(headers['x-turnout-attempts'], '1');
    assert.ok(headers['x-request-id']);
    assert.equal(headers['x-turnout-cost-usd'], undefined, 'a stream has no cost header');
    assert.ok(client.ended, 'terminating chunk');
    assert.equal(client.events.at(-1).raw, 'data: [DONE]\n\n');
  });
});

describe('usage', () => {
  it('a client that did not ask gets no usage chunk; the call is still metered from upstream usage', async () => {
    const before = await statsTotals(gateway);
    const client = await stream(gateway, { model: 'auto', messages, stream: true });
    assert.ok(client.sawDone);
    assert.ok(client.chunks.every((event) => !event.json.usage), 'no chunk carries usage');
    assert.ok(client.chunks.every((event) => event.json.choices.length > 0), 'no usage-only chunk');
    const { record, row } = await expectOneRecord(gateway, before, client.id, { status: 200, errorType: '', failed: false });
    assert.equal(row.usage_reported, 1, 'the gateway asked the upstream for usage');
    assert.equal(record.prompt_tokens, chatPromptTokens(messages));
    assert.equal(record.completion_tokens, countTokens(client.content()));
    assert.equal(record.cost_usd, femtoToNumber(usageCost(record, SIMPLE_PRICES)));
    assert.ok(row.ttft_ms > 0 && row.ttft_ms <= record.latency_ms);
  });

  it('a client that asked gets the usage chunk last, with the exact cost_usd', async () => {
    const before = await statsTotals(gateway);
    const client = await stream(gateway, { model: 'auto', messages, stream: true, stream_options: { include_usage: true } });
    const usageChunk = client.chunks.at(-1);
    assert.deepEqual(usageChunk.json.choices, []);
    assert.equal(usageChunk.json.usage.prompt_tokens, chatPromptTokens(messages));
    assert.equal(usageChunk.json.usage.completion_tokens, countTokens(client.content()));
    assert.equal(usageChunk.json.cost_usd, femtoToNumber(usageCost(usageChunk.json.usage, SIMPLE_PRICES)));
    assert.ok(client.chunks.slice(0, -1).every((event) => !event.json.usage), 'usage only in the last chunk');
    assert.ok(client.sawDone);
    const { record } = await expectOneRecord(gateway, before, client.id, { status: 200, errorType: '', failed: false });
    assert.equal(record.cost_usd, usageChunk.json.cost_usd);
  });

  it('no upstream usage: prompt from the gateway count, completion counted from the streamed content', async () => {
    await mock.configure({ no_usage: true, chunks: 7 });
    try {
      const before = await statsTotals(gateway);
      const client = await stream(gateway, { model: 'auto', messages, stream: true, stream_options: { include_usage: true } });
      assert.ok(client.sawDone);
      const { record, row } = await expectOneRecord(gateway, before, client.id, { status: 200, errorType: '', failed: false });
      assert.equal(row.usage_reported, 0, 'marked as counted');
      assert.equal(record.prompt_tokens, Number(client.head.headers['x-turnout-prompt-tokens']));
      assert.equal(record.completion_tokens, countTokens(client.content()));
      assert.ok(record.completion_tokens > 0);
      assert.equal(record.cost_usd, femtoToNumber(usageCost(record, SIMPLE_PRICES)));
    } finally {
      await mock.reset();
    }
  });

  it('no upstream usage on a tool call: the streamed arguments are counted', async () => {
    await mock.configure({ no_usage: true, chunks: 4 });
    try {
      const tool = {
        type: 'function',
        function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
      };
      const toolMessages = [{ role: 'user', content: 'Weather in Lima?' }];
      const before = await statsTotals(gateway);
      const client = await stream(gateway, { model: 'auto', messages: toolMessages, tools: [tool], stream: true });
      const args = client.chunks.map((event) => event.json.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? '').join('');
      assert.equal(typeof JSON.parse(args), 'object');
      const { record, row } = await expectOneRecord(gateway, before, client.id, { status: 200, errorType: '', failed: false });
      assert.equal(row.usage_reported, 0);
      assert.equal(record.completion_tokens, countTokens(args));
      assert.equal(record.prompt_tokens, Number(client.head.headers['x-turnout-prompt-tokens']));
    } finally {
      await mock.reset();
    }
  });
});

describe('mid-stream upstream failures', () => {
  it(`a stall past stream_idle_timeout_s (${IDLE_TIMEOUT_S} s): error event, no [DONE], bounded`, async () => {
    await mock.configure({ chunks: 6, stall_after_chunks: 2 });
    try {
      const before = await statsTotals(gateway);
      const client = await StreamClient.post(gateway.port, { model: 'auto', messages, stream: true });
      await client.finish();
      assertErrorEnding(client);
      assert.equal(client.errorEvents[0].json.error.code, 'upstream_stream_timeout');
      const lastData = client.events.at(-2);
      const silence = client.errorEvents[0].at - lastData.at;
      assert.ok(silence >= IDLE_TIMEOUT_S * 1000 * 0.9, `error after ${silence.toFixed(0)} ms of silence`);
      const total = client.finishedAt - client.sentAt;
      assert.ok(total < IDLE_TIMEOUT_S * 1000 + 3000, `the response ended after ${total.toFixed(0)} ms`);
      assert.equal(client.chunks.length, 2, 'the two events sent before the stall were relayed');
      const { row } = await expectOneRecord(gateway, before, client.id,
        { status: 200, errorType: 'upstream_stream_timeout', failed: true });
      assert.ok(row.ttft_ms > 0);
      // The stalled upstream connection was closed, not left open.
      await waitMockStats(mock, (stats) => stats.streams_active === 0, 3_000);
    } finally {
      await mock.reset();
    }
  });

  for (const [label, faults, eventsBefore] of [
    ['a connection reset after 3 events', { chunks: 10, reset_after_chunks: 3 }, 3],
    ['a malformed event', { chunks: 10, malformed: true }, 2],
  ]) {
    it(`${label}: error event, no [DONE], one 200 record counted as an error`, async () => {
      await mock.configure(faults);
      try {
        const before = await statsTotals(gateway);
        const client = await stream(gateway, { model: 'auto', messages, stream: true });
        assertErrorEnding(client);
        assert.equal(client.errorEvents[0].json.error.code, 'upstream_stream_error');
        assert.equal(client.chunks.length, eventsBefore, 'what came before the fault was relayed');
        const { record, row } = await expectOneRecord(gateway, before, client.id,
          { status: 200, errorType: 'upstream_stream_error', failed: true });
        assert.equal(row.usage_reported, 0, 'no usage arrived: counted');
        assert.equal(record.completion_tokens, countTokens(client.content()), 'usage so far');
        await waitMockStats(mock, (stats) => stats.streams_active === 0, 3_000);
      } finally {
        await mock.reset();
      }
    });
  }
});

describe('a client that goes away', () => {
  it('between events: the mock sees its stream end promptly; one 499 record', async () => {
    await mock.configure({ chunks: 40, chunk_delay_ms: 100 });
    try {
      const before = await statsTotals(gateway);
      const statsBefore = await mockStats(mock);
      const client = await StreamClient.post(gateway.port, { model: 'auto', messages, stream: true });
      await client.until(() => client.contentEvents().length >= 2, STREAM_WAIT_MS, 'two content events');
      const id = client.id;
      client.close();
      // 38 more chunks would take 3.8 s: the upstream stream must end long before.
      const { stats, ms } = await waitMockStats(mock,
        (s) => s.streams_active === 0 && s.streams_client_gone === statsBefore.streams_client_gone + 1, 1_500);
      assert.equal(stats.streams_completed, statsBefore.streams_completed, 'the upstream stream did not run to its end');
      assert.ok(ms < 1_500, `upstream gone after ${ms.toFixed(0)} ms`);
      const { record, row } = await expectOneRecord(gateway, before, id, { status: 499, errorType: 'client_closed', failed: true });
      assert.ok(record.latency_ms < 2_500, `recorded at ${record.latency_ms} ms, not after draining the upstream`);
      assert.ok(record.completion_tokens > 0, 'what was used so far');
      assert.equal(row.usage_reported, 0);
    } finally {
      await mock.reset();
    }
  });
});

describe('a keep-alive client that sends its next request mid-stream', () => {
  // The disconnect watch waits for the client socket to become readable and checks FIONREAD:
  // bytes waiting are a request, not a close, and they must keep their place before the
  // connection's next read. A regression guard: a watch that read and dropped those bytes, or
  // took them for a leave, fails it (no [DONE], or no second 200).
  it('has not gone: the stream ends complete, then the next request is answered on that connection', async () => {
    await mock.configure({ chunks: 8, chunk_delay_ms: 100 });
    try {
      const statsBefore = await mockStats(mock);
      const client = await StreamClient.post(gateway.port, { model: 'auto', messages, stream: true });
      await client.until(() => client.contentEvents().length >= 1, STREAM_WAIT_MS, 'a content event');
      const id = client.id;
      const next = JSON.stringify({ model: 'gpt-3.5-turbo', messages });
      client.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n`
        + `Content-Length: ${Buffer.byteLength(next)}\r\n\r\n${next}`);
      await client.until(() => client.ended, STREAM_WAIT_MS, 'the end of the stream');
      assert.ok(client.sawDone, 'the stream ended with [DONE]');
      assert.deepEqual(client.errorEvents, []);
      const secondHead = () => client.pending.toString('latin1').match(/HTTP\/1\.1 (\d{3})/);
      await client.until(() => secondHead() && client.pending.includes('"chat.completion"'), STREAM_WAIT_MS,
        'the answer to the second request');
      assert.equal(secondHead()[1], '200');
      client.close();
      const stats = await mockStats(mock);
      assert.equal(stats.streams_client_gone, statsBefore.streams_client_gone, 'the upstream stream was not cancelled');
      let recent = [];
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
        recent = (await gateway.stats('?recent=20')).recent_calls;
        if (recent.some((call) => call.id === id)) break;
      }
      const record = recent.find((call) => call.id === id);
      assert.equal(record?.status, 200, 'the stream is recorded complete, not as a client that left');
    } finally {
      await mock.reset();
    }
  });
});

describe('through a tap on the upstream connection', () => {
  let tap;
  let tapped;
  before(async () => {
    tap = await UpstreamTap.start(mock.port);
    tapped = await startGateway({ upstreamUrl: `http://127.0.0.1:${tap.port}/v1` });
  });
  after(() => tap.close());

  it('a client that leaves during a long upstream pause: the upstream connection is closed at once', async () => {
    await mock.configure({ chunks: 3, chunk_delay_ms: 3_000 });
    try {
      const before = await statsTotals(tapped);
      const statsBefore = await mockStats(mock);
      const client = await StreamClient.post(tapped.port, { model: 'auto', messages, stream: true });
      await client.until(() => client.chunks.length >= 1, STREAM_WAIT_MS, 'the role event');
      const closesBefore = tap.closes.length;
      const left = performance.now();
      client.close();
      // No write to the client is due for 3 s: only watching the socket notices the leave.
      const deadline = left + 1_000;
      while (tap.closes.length === closesBefore && performance.now() < deadline) await sleep(10);
      assert.equal(tap.closes.length, closesBefore + 1, 'the gateway closed its upstream connection within 1 s');
      await expectOneRecord(tapped, before, client.id, { status: 499, errorType: 'client_closed', failed: true });
      // The mock notices at its next write; then no stream is left open.
      await waitMockStats(mock,
        (s) => s.streams_active === 0 && s.streams_client_gone === statsBefore.streams_client_gone + 1, 6_000);
    } finally {
      await mock.reset();
    }
  });

  it('a client that sends its next request mid-stream and then leaves during a pause: noticed at once, one 499 record', async () => {
    await mock.configure({ chunks: 3, chunk_delay_ms: 3_000 });
    try {
      const before = await statsTotals(tapped);
      const statsBefore = await mockStats(mock);
      const client = await StreamClient.post(tapped.port, { model: 'auto', messages, stream: true });
      await client.until(() => client.chunks.length >= 1, STREAM_WAIT_MS, 'the role event');
      const next = JSON.stringify({ model: 'gpt-3.5-turbo', messages });
      client.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n`
        + `Content-Length: ${Buffer.byteLength(next)}\r\n\r\n${next}`);
      await sleep(200);  // the request reaches the gateway's watch first
      const closesBefore = tap.closes.length;
      const left = performance.now();
      client.socket.destroy();
      // No write to the client is due for 3 s: only a watch still running after the
      // pipelined request notices the leave.
      const deadline = left + 1_000;
      while (tap.closes.length === closesBefore && performance.now() < deadline) await sleep(10);
      assert.equal(tap.closes.length, closesBefore + 1, 'the gateway closed its upstream connection within 1 s');
      await expectOneRecord(tapped, before, client.id, { status: 499, errorType: 'client_closed', failed: true });
      await waitMockStats(mock,
        (s) => s.streams_active === 0 && s.streams_client_gone === statsBefore.streams_client_gone + 1, 6_000);
    } finally {
      await mock.reset();
    }
  });

  for (const [label, extra] of [
    ['n: 2', { n: 2 }],
    ['logprobs', { logprobs: true, top_logprobs: 2 }],
    ['n: 2 with tool-call deltas', {
      n: 2,
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }],
    }],
  ]) {
    it(`${label}: the events are the mock's, byte for byte (less the usage chunk nobody asked for)`, async () => {
      await mock.configure({ chunks: 4 });
      try {
        tap.take();
        await mock.clearRequests();
        const body = { model: 'gpt-4o-mini', messages, stream: true, ...extra };
        const client = await stream(tapped, body);
        const sent = sseEvents(tap.take());
        assert.ok(sent.length > 4, 'the tap saw the upstream stream');
        const expected = sent.filter((event) => !isUsageOnly(event)).join('');
        assert.equal(client.body, expected);
        if (extra.n) {
          const indexes = new Set(client.chunks.flatMap((event) => event.json.choices.map((choice) => choice.index)));
          assert.deepEqual([...indexes].sort(), [0, 1]);
        }
        const [forwarded] = await mock.chatRequests();
        for (const [key, value] of Object.entries(extra)) assert.deepEqual(forwarded.json[key], value, `${key} forwarded`);
      } finally {
        await mock.reset();
      }
    });
  }
});

// An upstream that sends fixed streams: one with real logprobs and two choices, cut into
// pieces at awkward places (mid-line, mid-UTF-8 sequence, between the two newlines), and
// one that reports its own error midway, as providers do on an overload.
describe('a scripted upstream', () => {
  const envelope = '{"id":"chatcmpl-scripted","object":"chat.completion.chunk","created":1732600000,"model":"scripted-1",'
    + '"system_fingerprint":"fp_0a1b2c","choices":[';
  const logprob = (token, value) => `{"token":"${token}","logprob":${value},"bytes":[${[...Buffer.from(token)].join(',')}]}`;
  const event = (choices, tail = ',"usage":null}') => `data: ${envelope}${choices}]${tail}\n\n`;
  const contentChoice = (index, text, value) => `{"index":${index},"delta":{"content":"${text}"},"logprobs":{"content":[`
    + `{"token":"${text}","logprob":${value},"bytes":[${[...Buffer.from(text)].join(',')}],"top_logprobs":[`
    + `${logprob(text, value)},${logprob('x', '-7.25e-05')}]}],"refusal":null},"finish_reason":null}`;
  const events = [
    event('{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}'),
    event('{"index":1,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}'),
    ': keep-alive\n\n',
    event(contentChoice(0, 'Héllo', -0.0001)),
    event(contentChoice(1, ' wörld €', -1.5)),
    event(contentChoice(0, ' 🙂', -0.3125)),
    event('{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}'),
    event('{"index":1,"delta":{},"logprobs":null,"finish_reason":"length"}'),
    event('', ',"usage":{"prompt_tokens":11,"completion_tokens":9,"total_tokens":20}}'),
    'data: [DONE]\n\n',
  ];
  const wire = Buffer.from(events.join(''));
  // Written in pieces cut inside "data:", inside a multi-byte character, between "\n" and "\n".
  const accent = wire.indexOf('é');
  const cuts = [3, accent + 1, wire.indexOf('\n\n', accent) + 1, wire.indexOf('🙂') + 2, wire.length];
  const upstreamError = 'data: {"error":{"message":"The server had an error while processing your request.",'
    + '"type":"server_error","param":null,"code":null}}\n\n';
  const failing = [events[0], events[3], upstreamError, 'data: [DONE]\n\n'];
  const SLOW_END_MS = 3_000;
  let server;
  let scriptedGateway;

  before(async () => {
    assert.ok(cuts.every((cut, i) => i === 0 || cut > cuts[i - 1]), `cut points ascend: ${cuts}`);
    server = http.createServer((req, res) => {
      let requestBody = '';
      req.on('data', (piece) => { requestBody += piece; });
      req.on('end', async () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const { model } = JSON.parse(requestBody);
        if (model === 'scripted-failing') {
          res.end(failing.join(''));
          return;
        }
        if (model === 'scripted-slow-end') {
          res.write(events.join(''));  // [DONE] included; the body's end comes later
          await sleep(SLOW_END_MS);
          res.end();
          return;
        }
        let from = 0;
        for (const cut of cuts) {
          res.write(wire.subarray(from, cut));
          from = cut;
          await sleep(15);
        }
        res.end();
      });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    scriptedGateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.providers.scripted = { base_url: `http://127.0.0.1:${server.address().port}/v1`, api_key: UPSTREAM_KEY };
        for (const name of ['scripted-1', 'scripted-failing', 'scripted-slow-end']) {
          config.models[name] = modelEntry({ input: '0.001', output: '0.002', context_window: 8192, provider: 'scripted' });
        }
      },
    });
  });
  after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));

  it('relays every event unchanged, drops only the usage chunk, and meters the reported usage', async () => {
    const before = await statsTotals(scriptedGateway);
    const client = await stream(scriptedGateway, { model: 'scripted-1', messages, stream: true, n: 2, logprobs: true, top_logprobs: 2 });
    const expected = events.filter((text) => !text.includes('"usage":{')).join('');
    assert.equal(client.body, expected);
    const { record, row } = await expectOneRecord(scriptedGateway, before, client.id, { status: 200, errorType: '', failed: false });
    assert.equal(row.usage_reported, 1);
    assert.equal(record.prompt_tokens, 11);
    assert.equal(record.completion_tokens, 9);
    assert.equal(record.cost_usd, femtoToNumber(tokenCost(11, '0.001') + tokenCost(9, '0.002')));
  });

  it("the upstream's own error event reaches the client as it was sent, and no [DONE] follows", async () => {
    const before = await statsTotals(scriptedGateway);
    const client = await stream(scriptedGateway, { model: 'scripted-failing', messages, stream: true });
    assert.equal(client.body, failing.slice(0, 3).join(''));
    const { record, row } = await expectOneRecord(scriptedGateway, before, client.id,
      { status: 200, errorType: 'upstream_stream_error', failed: true });
    assert.equal(row.usage_reported, 0);
    assert.equal(record.completion_tokens, countTokens('Héllo', 'cl100k_base'));
  });

  it('[DONE] reaches the client when the upstream sends it, not when the upstream ends its body', async () => {
    const client = await StreamClient.post(scriptedGateway.port, { model: 'scripted-slow-end', messages, stream: true });
    await client.until(() => client.sawDone, STREAM_WAIT_MS, '[DONE]');
    const doneAfter = client.events.at(-1).at - client.sentAt;
    assert.ok(doneAfter < SLOW_END_MS / 2, `[DONE] arrived ${doneAfter.toFixed(0)} ms after the request`);
    await client.finish();
    assert.equal(client.body, events.filter((text) => !text.includes('"usage":{')).join(''));
  });

  it('a keep-alive client may send its next request right after [DONE]: it is answered on that connection', async () => {
    const client = await StreamClient.post(scriptedGateway.port, { model: 'scripted-slow-end', messages, stream: true });
    await client.until(() => client.sawDone, STREAM_WAIT_MS, '[DONE]');
    // The gateway may still be reading the end of the upstream body: the request must wait
    // in the connection, not be swallowed by the disconnect watch.
    const next = JSON.stringify({ model: 'gpt-3.5-turbo', messages });
    client.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n`
      + `Content-Length: ${Buffer.byteLength(next)}\r\n\r\n${next}`);
    const secondHead = () => client.pending.toString('latin1').match(/HTTP\/1\.1 (\d{3})/);
    await client.until(() => secondHead() && client.pending.includes('"chat.completion"'), STREAM_WAIT_MS,
      'the answer to the second request');
    assert.equal(secondHead()[1], '200');
    client.close();
  });
});
