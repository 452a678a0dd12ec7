// OpenTelemetry traces (docs/REFERENCE.md §3.9) through the real binary, exported to an
// OTLP/HTTP receiver written here (a node http server collecting the POSTed JSON): the
// span tree and its GenAI attributes, trace id continuity from a client traceparent to
// the upstream, no prompt text, sampling 0 sends nothing, and a dead or hanging collector
// neither slows nor fails calls.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { closedPort, runTurnout, sleep, startGateway, startMock, stopAll, withTimeout, writeConfig, makeTempDir, baseConfig } from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const SECRET_WORDS = 'zebra-quartz-prompt-marker';

let mock;
const servers = [];
before(async () => { mock = await startMock(); });
after(async () => {
  for (const server of servers) server.closeAllConnections?.();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  await stopAll();
});

// An OTLP/HTTP receiver: every POST body to /v1/traces, parsed. `hang`: never answers.
async function startReceiver({ hang = false } = {}) {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ path: req.url, contentType: req.headers['content-type'], text: Buffer.concat(chunks).toString('utf8') });
      if (hang) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  servers.push(server);
  return { url: `http://127.0.0.1:${server.address().port}`, received };
}

function spansOf(received) {
  return received.flatMap(({ text }) => JSON.parse(text).resourceSpans.flatMap((rs) =>
    rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ ...span, resource: rs.resource })))));
}

function attrs(span) {
  return Object.fromEntries(span.attributes.map(({ key, value }) => [key, Object.values(value)[0]]));
}

async function waitForSpans(receiver, predicate, what) {
  return withTimeout((async () => {
    for (;;) {
      const spans = spansOf(receiver.received);
      if (predicate(spans)) return spans;
      await sleep(50);
    }
  })(), 10_000, what);
}

function gatewayWith(telemetry, configure) {
  return startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => { config.telemetry = telemetry; configure?.(config); },
  });
}

const prompt = [{ role: 'user', content: `${SECRET_WORDS} ${promptWithTokens(20)[0].content}` }];

describe('traces over OTLP/HTTP', () => {
  let receiver;
  let gateway;

  before(async () => {
    receiver = await startReceiver();
    gateway = await gatewayWith({ otlp_endpoint: receiver.url, sample_ratio: 1, service_name: 'turnout-it' },
      (config) => { config.routing.retries = 1; config.routing.retry_backoff_ms = 1; });
  });

  it('a call is one trace continuing the client traceparent: server span, route, count, attempts, ledger commit', async () => {
    await mock.reset();
    await mock.configure({ fail_first: 1, fail_status: 500 });
    const response = await gateway.chat({ model: 'auto', messages: prompt },
      { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` });
    const upstream = await mock.chatRequests();
    await mock.reset();
    assert.equal(response.status, 200, response.text);

    const spans = (await waitForSpans(receiver, (all) => all.some((s) => s.traceId === TRACE_ID && s.kind === 2), 'the trace'))
      .filter((s) => s.traceId === TRACE_ID);
    assert.equal(receiver.received[0].path, '/v1/traces');
    assert.match(receiver.received[0].contentType, /^application\/json/);
    const byName = (name) => spans.filter((s) => s.name === name);
    const [root] = byName('POST /v1/chat/completions');
    assert.ok(root, `root span among ${spans.map((s) => s.name)}`);
    assert.equal(root.kind, 2);
    assert.equal(root.parentSpanId, CLIENT_SPAN, 'the root continues the client span');
    assert.equal(attrs({ attributes: root.resource.attributes })['service.name'], 'turnout-it');
    const rootAttrs = attrs(root);
    assert.equal(rootAttrs['gen_ai.operation.name'], 'chat');
    assert.equal(rootAttrs['gen_ai.request.model'], 'auto');
    assert.equal(rootAttrs['gen_ai.response.model'], 'gpt-3.5-turbo');
    assert.equal(rootAttrs['gen_ai.usage.input_tokens'], String(response.json.usage.prompt_tokens));
    assert.equal(rootAttrs['gen_ai.usage.output_tokens'], String(response.json.usage.completion_tokens));
    assert.equal(Number(rootAttrs['turnout.cost_usd']), Number(response.headers.get('x-turnout-cost-usd')));
    assert.equal(rootAttrs['turnout.route'], 'simple');
    assert.equal(rootAttrs['http.response.status_code'], '200');
    assert.equal(rootAttrs['turnout.request_id'], response.headers.get('x-request-id'));
    assert.ok(BigInt(root.endTimeUnixNano) > BigInt(root.startTimeUnixNano));

    const [route] = byName('route');
    assert.equal(route.parentSpanId, root.spanId);
    assert.equal(attrs(route)['turnout.route'], 'simple');
    const [count] = byName('count');
    assert.equal(count.parentSpanId, route.spanId);
    assert.equal(attrs(count)['turnout.encoding'], 'cl100k_base');
    assert.equal(attrs(count)['turnout.prompt_tokens'], response.headers.get('x-turnout-prompt-tokens'));

    const attempts = byName('chat gpt-3.5-turbo');
    assert.equal(attempts.length, 2, 'one client span per upstream attempt (a 500, then the retry)');
    for (const span of attempts) {
      assert.equal(span.kind, 3);
      assert.equal(span.parentSpanId, root.spanId);
      const a = attrs(span);
      assert.equal(a['gen_ai.operation.name'], 'chat');
      assert.equal(a['gen_ai.system'], 'openai');
      assert.equal(a['gen_ai.request.model'], 'gpt-3.5-turbo');
      assert.equal(a['server.address'], '127.0.0.1');
    }
    assert.deepEqual(attempts.map((s) => attrs(s)['http.response.status_code']), ['500', '200']);
    assert.equal(attempts[0].status?.code, 2, 'the failed attempt is an error');
    assert.equal(attempts[1].status, undefined);
    const [ledger] = byName('ledger commit');
    assert.equal(ledger.parentSpanId, root.spanId);
    assert.equal(attrs(ledger)['turnout.durable'], true);

    // The upstream got the trace: each attempt's traceparent names its client span.
    assert.equal(upstream.length, 2);
    assert.deepEqual(upstream.map((r) => r.headers.traceparent),
      attempts.map((s) => `00-${TRACE_ID}-${s.spanId}-01`));
    const exported = receiver.received.map((r) => r.text).join('');
    assert.ok(!exported.includes(SECRET_WORDS), 'no prompt text in the spans');
    assert.ok(!exported.includes('sk-upstream'), 'no key in the spans');
  });

  // The spans of the trace `traceId` once its root has arrived.
  async function traceOf(traceId) {
    return (await waitForSpans(receiver, (all) => all.some((s) => s.traceId === traceId && s.kind === 2), `trace ${traceId}`))
      .filter((s) => s.traceId === traceId);
  }

  it('the client tracestate goes upstream with traceparent', async () => {
    await mock.reset();
    const traceId = 'aa'.repeat(16);
    const tracestate = 'vendor1=opaque-value,rojo=00f067aa0ba902b7';
    const response = await gateway.chat({ model: 'auto', messages: prompt },
      { traceparent: `00-${traceId}-${CLIENT_SPAN}-01`, tracestate });
    assert.equal(response.status, 200, response.text);
    const [upstream] = await mock.chatRequests();
    assert.match(upstream.headers.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    assert.equal(upstream.headers.tracestate, tracestate);
    // A new trace (no valid traceparent) carries no vendor state of another trace.
    await mock.reset();
    assert.equal((await gateway.chat({ model: 'auto', messages: prompt }, { traceparent: 'junk', tracestate })).status, 200);
    const [fresh] = await mock.chatRequests();
    assert.equal(fresh.headers.tracestate, undefined);
  });

  it('a Responses call has the chat call\'s span tree and GenAI attributes', async () => {
    await mock.reset();
    const traceId = 'bb'.repeat(16);
    const tracestate = 'vendor1=responses';
    const response = await gateway.request('POST', '/v1/responses', {
      json: { model: 'auto', input: `${SECRET_WORDS} hello there` },
      headers: { traceparent: `00-${traceId}-${CLIENT_SPAN}-01`, tracestate },
    });
    assert.equal(response.status, 200, response.text);
    const upstream = (await mock.requests()).filter((r) => r.target.endsWith('/responses'));
    const spans = await traceOf(traceId);
    const byName = (name) => spans.filter((s) => s.name === name);
    const [root] = byName('POST /v1/responses');
    assert.ok(root, `root span among ${spans.map((s) => s.name)}`);
    assert.equal(root.parentSpanId, CLIENT_SPAN);
    const rootAttrs = attrs(root);
    assert.equal(rootAttrs['gen_ai.operation.name'], 'chat');
    assert.equal(rootAttrs['gen_ai.request.model'], 'auto');
    assert.equal(rootAttrs['gen_ai.response.model'], 'gpt-3.5-turbo');
    assert.equal(rootAttrs['gen_ai.usage.input_tokens'], String(response.json.usage.input_tokens));
    assert.equal(rootAttrs['gen_ai.usage.output_tokens'], String(response.json.usage.output_tokens));
    assert.equal(Number(rootAttrs['turnout.cost_usd']), Number(response.headers.get('x-turnout-cost-usd')));
    const [route] = byName('route');
    assert.equal(route.parentSpanId, root.spanId);
    assert.equal(attrs(route)['turnout.route'], 'simple');
    const [count] = byName('count');
    assert.equal(count.parentSpanId, route.spanId);
    assert.equal(attrs(count)['turnout.prompt_tokens'], response.headers.get('x-turnout-prompt-tokens'));
    const [attempt] = byName('chat gpt-3.5-turbo');
    assert.equal(attempt.kind, 3);
    assert.equal(attrs(attempt)['gen_ai.operation.name'], 'chat');
    assert.equal(attrs(attempt)['http.response.status_code'], '200');
    assert.equal(byName('ledger commit').length, 1);
    assert.equal(upstream.length, 1);
    assert.equal(upstream[0].headers.traceparent, `00-${traceId}-${attempt.spanId}-01`);
    assert.equal(upstream[0].headers.tracestate, tracestate);
    assert.ok(!receiver.received.map((r) => r.text).join('').includes(SECRET_WORDS), 'no prompt text in the spans');
  });

  it('a streamed Responses call: the served attempt\'s span lasts the stream, the root has the usage', async () => {
    await mock.reset();
    const traceId = 'cc'.repeat(16);
    const response = await gateway.request('POST', '/v1/responses', {
      json: { model: 'auto', input: 'stream me a few words', stream: true },
      headers: { traceparent: `00-${traceId}-${CLIENT_SPAN}-01` },
    });
    assert.equal(response.status, 200, response.text);
    const completed = response.text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)))
      .find((event) => event.type === 'response.completed');
    assert.ok(completed, 'the stream completes');
    const spans = await traceOf(traceId);
    const root = spans.find((s) => s.kind === 2);
    assert.equal(root.name, 'POST /v1/responses');
    assert.equal(attrs(root)['gen_ai.usage.output_tokens'], String(completed.response.usage.output_tokens));
    const attempt = spans.find((s) => s.kind === 3);
    assert.equal(attempt.parentSpanId, root.spanId);
    assert.equal(attrs(attempt)['http.response.status_code'], '200');
    assert.ok(spans.some((s) => s.name === 'ledger commit'));
  });

  it('an embeddings call is traced with gen_ai.operation.name "embeddings"', async () => {
    await mock.reset();
    const traceId = 'dd'.repeat(16);
    const response = await gateway.request('POST', '/v1/embeddings', {
      json: { model: 'text-embedding-3-small', input: [`${SECRET_WORDS} one`, 'two'] },
      headers: { traceparent: `00-${traceId}-${CLIENT_SPAN}-01`, tracestate: 'vendor1=embed' },
    });
    assert.equal(response.status, 200, response.text);
    const upstream = (await mock.requests()).filter((r) => r.target.endsWith('/embeddings'));
    const spans = await traceOf(traceId);
    const byName = (name) => spans.filter((s) => s.name === name);
    const [root] = byName('POST /v1/embeddings');
    assert.ok(root, `root span among ${spans.map((s) => s.name)}`);
    assert.equal(attrs(root)['gen_ai.operation.name'], 'embeddings');
    assert.equal(attrs(root)['gen_ai.request.model'], 'text-embedding-3-small');
    assert.equal(attrs(root)['gen_ai.response.model'], 'text-embedding-3-small');
    assert.equal(attrs(root)['gen_ai.usage.input_tokens'], String(response.json.usage.prompt_tokens));
    assert.equal(attrs(root)['gen_ai.usage.output_tokens'], '0');
    const [route] = byName('route');
    assert.equal(route.parentSpanId, root.spanId);
    const [count] = byName('count');
    assert.equal(count.parentSpanId, route.spanId);
    assert.equal(attrs(count)['turnout.encoding'], 'cl100k_base');
    assert.equal(attrs(count)['turnout.prompt_tokens'], String(response.json.usage.prompt_tokens));
    const [attempt] = byName('embeddings text-embedding-3-small');
    assert.ok(attempt, `attempt span among ${spans.map((s) => s.name)}`);
    assert.equal(attempt.kind, 3);
    assert.equal(attrs(attempt)['gen_ai.operation.name'], 'embeddings');
    assert.equal(byName('ledger commit').length, 1);
    assert.equal(upstream[0].headers.traceparent, `00-${traceId}-${attempt.spanId}-01`);
    assert.equal(upstream[0].headers.tracestate, 'vendor1=embed');
  });

  it('a call without traceparent starts a new trace; a malformed one is ignored', async () => {
    await mock.reset();
    const before = spansOf(receiver.received).length;
    const response = await gateway.chat({ model: 'gpt-4o', messages: prompt }, { traceparent: '00-zz-not-a-trace' });
    assert.equal(response.status, 200);
    const spans = await waitForSpans(receiver, (all) => all.slice(before).some((s) => s.kind === 2), 'the new trace');
    const root = spans.slice(before).find((s) => s.kind === 2);
    assert.match(root.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(root.traceId, TRACE_ID);
    assert.equal(root.parentSpanId ?? '', '');
    const [upstream] = await mock.chatRequests();
    assert.match(upstream.headers.traceparent, new RegExp(`^00-${root.traceId}-[0-9a-f]{16}-01$`));
  });
});

describe('traces of a streamed call', () => {
  it('the served attempt\'s span lasts until the relay ends; the root has the billed usage', async () => {
    const receiver = await startReceiver();
    const gateway = await gatewayWith({ otlp_endpoint: receiver.url });
    await mock.reset();
    await mock.configure({ chunks: 6, chunk_delay_ms: 60 });
    const started = BigInt(Date.now()) * 1_000_000n;
    const response = await gateway.chat({ model: 'auto', messages: prompt, stream: true, stream_options: { include_usage: true } });
    const ended = BigInt(Date.now()) * 1_000_000n;
    await mock.reset();
    assert.equal(response.status, 200);
    const usage = response.text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)))
      .find((event) => event.usage)?.usage;
    assert.ok(usage, 'the stream reports usage');
    const spans = await waitForSpans(receiver, (all) => all.some((s) => s.kind === 2), 'the streamed trace');
    const root = spans.find((s) => s.kind === 2);
    const attempt = spans.find((s) => s.kind === 3);
    assert.equal(attrs(root)['gen_ai.usage.output_tokens'], String(usage.completion_tokens));
    assert.equal(attrs(attempt)['http.response.status_code'], '200');
    const streamed = BigInt(attempt.endTimeUnixNano) - BigInt(attempt.startTimeUnixNano);
    assert.ok(streamed >= 300_000_000n, `the client span covers the 6 x 60 ms stream (${streamed} ns)`);
    assert.ok(BigInt(root.startTimeUnixNano) >= started - 50_000_000n && BigInt(root.endTimeUnixNano) <= ended + 50_000_000n);
  });
});

describe('sampling and a dead collector', () => {
  it('sample_ratio 0 sends nothing (the upstream still gets the trace id)', async () => {
    const receiver = await startReceiver();
    const gateway = await gatewayWith({ otlp_endpoint: receiver.url, sample_ratio: 0 });
    await mock.reset();
    for (let i = 0; i < 5; i += 1) {
      const response = await gateway.chat({ model: 'auto', messages: prompt }, { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` });
      assert.equal(response.status, 200);
    }
    assert.equal((await gateway.chat({ model: 'auto', messages: prompt })).status, 200);
    await sleep(1500);  // three batch delays
    assert.equal(receiver.received.length, 0, 'nothing exported');
    const upstream = await mock.chatRequests();
    assert.match(upstream[0].headers.traceparent, new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
  });

  for (const kind of ['refusing', 'hanging']) {
    it(`a ${kind} collector neither slows nor fails calls; failures are counted`, async () => {
      const endpoint = kind === 'refusing' ? `http://127.0.0.1:${await closedPort()}` : (await startReceiver({ hang: true })).url;
      const gateway = await gatewayWith({ otlp_endpoint: endpoint, sample_ratio: 1 });
      await mock.reset();
      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 40 }, () => gateway.chat({ model: 'auto', messages: prompt })));
      const elapsed = Date.now() - started;
      for (const response of results) assert.equal(response.status, 200, response.text);
      assert.ok(elapsed < 3000, `40 calls took ${elapsed} ms`);
      if (kind === 'refusing') {
        await withTimeout((async () => {
          for (;;) {
            const text = (await gateway.request('GET', '/metrics')).text;
            if (/^turnout_trace_export_failures_total [1-9]/m.test(text)) return;
            await sleep(100);
          }
        })(), 10_000, 'an export failure counted');
      }
      // Stopping waits for at most one bounded export attempt.
      const stopping = Date.now();
      await gateway.stop();
      assert.ok(Date.now() - stopping < 12_000);
    });
  }

  it('refuses invalid telemetry settings at start-up, naming the key', async () => {
    const dir = makeTempDir();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    for (const [telemetry, key] of [
      [{ otlp_endpoint: 'http://127.0.0.1:4318', sample_ratio: 1.5 }, 'telemetry.sample_ratio'],
      [{ otlp_endpoint: 'grpc://collector:4317' }, 'telemetry.otlp_endpoint'],
      [{ otlp_endpoint: 'http://127.0.0.1:4318', service_name: '' }, 'telemetry.service_name'],
      [{ otlp_endpoint: 'http://127.0.0.1:4318', spans: 3 }, 'telemetry.spans'],
    ]) {
      const file = writeConfig(dir, { ...config, telemetry });
      const result = await runTurnout(['serve', '--config', file, '--port', '0']);
      assert.equal(result.code, 2, `${key}: ${result.stderr}`);
      assert.match(result.stderr, new RegExp(key.replace('.', '\\.')));
    }
  });
});
