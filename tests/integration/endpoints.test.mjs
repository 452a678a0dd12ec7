// The other endpoints (docs/REFERENCE.md §2) and the server's conduct: GET /v1/models,
// POST /route, GET /health, GET /metrics, x-request-id everywhere, keep-alive, a stalled
// client that blocks nobody, graceful SIGTERM/SIGINT.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  RawConnection, TEST_MODELS, openAIErrorProblems, runTurnout, sleep, startGateway, startMock, stopAll,
} from './lib/harness.mjs';
import { chatPromptTokens, femtoToNumber, promptWithTokens, tokenCost } from './lib/reference.mjs';

let mock;
let gateway;

before(async () => {
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => { config.routing.aliases = ['auto', 'router']; },
  });
});
after(stopAll);

describe('GET /v1/models', () => {
  it('lists the configured models, the routing aliases and the embedding models in OpenAI list format', async () => {
    const response = await gateway.request('GET', '/v1/models');
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.object, 'list');
    const ids = response.json.data.map((model) => model.id).sort();
    // Embeddings are reached by name only (allow_unknown_models), so their names are listed.
    const embeddingModels = ['text-embedding-3-large', 'text-embedding-3-small', 'text-embedding-ada-002'];
    assert.deepEqual(ids, [...Object.keys(TEST_MODELS), 'auto', 'router', ...embeddingModels].sort());
    for (const model of response.json.data) {
      assert.equal(model.object, 'model');
      assert.equal(typeof model.created, 'number');
      assert.equal(typeof model.owned_by, 'string');
    }
  });
});

describe('POST /route', () => {
  it('gives the routing decision and calls nothing upstream', async () => {
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is a tier?', name: 'bob' }];
    const tokens = chatPromptTokens(messages);
    await mock.clearRequests();
    const response = await gateway.request('POST', '/route', { json: { model: 'auto', messages } });
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(response.json, {
      model: 'gpt-3.5-turbo',
      route: 'simple',
      prompt_tokens: tokens,
      encoding: 'cl100k_base',
      context_window: TEST_MODELS['gpt-3.5-turbo'].context_window,
      estimated_input_cost_usd: femtoToNumber(tokenCost(tokens, TEST_MODELS['gpt-3.5-turbo'].input)),
      count_estimated: false,
      count_partial: false,
    });
    assert.deepEqual(await mock.requests(), []);
  });

  it('explicit models, tiers by count and context fit', async () => {
    const explicit = await gateway.request('POST', '/route', { json: { model: 'gpt-4o', messages: promptWithTokens(20) } });
    assert.equal(explicit.json.model, 'gpt-4o');
    assert.equal(explicit.json.route, 'explicit');
    assert.equal(explicit.json.context_window, TEST_MODELS['gpt-4o'].context_window);

    const medium = await gateway.request('POST', '/route', { json: { model: 'router', messages: promptWithTokens(1000) } });
    assert.equal(medium.json.route, 'medium');
    assert.equal(medium.json.model, 'gpt-4o-mini');
    assert.equal(medium.json.prompt_tokens, 1000);

    // 20 prompt tokens + 16366 output do not fit gpt-3.5-turbo's 16385.
    const fit = await gateway.request('POST', '/route', { json: { messages: promptWithTokens(20), max_tokens: 16366 } });
    assert.equal(fit.json.route, 'context-fit');
    assert.equal(fit.json.model, 'gpt-4o-mini');

    const tooLong = await gateway.request('POST', '/route', { json: { messages: promptWithTokens(20), max_tokens: 500_000 } });
    assert.equal(tooLong.status, 400, tooLong.text);
    assert.equal(tooLong.json.error.code, 'context_length_exceeded');
    assert.deepEqual(await mock.requests(), []);
  });

  it('validates like /v1/chat/completions', async () => {
    const response = await gateway.request('POST', '/route', { json: { messages: [] } });
    assert.equal(response.status, 400);
    assert.deepEqual(openAIErrorProblems(response.json), []);
  });

  it('is not a ledger record', async () => {
    assert.equal((await gateway.stats()).total_calls, 0);
  });
});

describe('GET /health', () => {
  it('is 200 healthy with x-request-id', async () => {
    const response = await gateway.request('GET', '/health');
    assert.equal(response.status, 200);
    assert.equal(response.json.status, 'healthy');
    assert.ok(response.headers.get('x-request-id'));
  });
});

describe('GET /livez', () => {
  it('is 200 alive without a key, and only GET is allowed', async () => {
    const keyed = await startGateway({ upstreamUrl: mock.baseUrl, configure: (c) => { c.server.api_keys = ['sk-livez-test']; } });
    const response = await keyed.request('GET', '/livez');
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(response.json, { status: 'alive' }, 'no instance id (host name, PID) without a key');
    const withKey = await keyed.request('GET', '/livez', { headers: { authorization: 'Bearer sk-livez-test' } });
    assert.equal(withKey.json.status, 'alive');
    assert.equal(typeof withKey.json.uptime_s, 'number');
    assert.equal(typeof withKey.json.instance_id, 'string');
    const post = await keyed.request('POST', '/livez', { json: {} });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
    assert.equal((await keyed.request('GET', '/v1/models')).status, 401, 'other endpoints still need the key');
  });
});

describe('x-request-id on every response', () => {
  const endpoints = [['GET', '/health'], ['GET', '/v1/models'], ['GET', '/stats'], ['GET', '/metrics'], ['GET', '/nope'], ['POST', '/route']];
  endpoints.forEach(([method, urlPath], index) => {
    it(`${method} ${urlPath}`, async () => {
      const id = `it-endpoint-${index}`;
      const json = method === 'POST' ? { messages: [{ role: 'user', content: 'hi' }] } : undefined;
      const response = await gateway.request(method, urlPath, { json, headers: { 'x-request-id': id } });
      assert.equal(response.headers.get('x-request-id'), id);
      const generated = await gateway.request(method, urlPath, { json });
      assert.ok(generated.headers.get('x-request-id'), 'generated when the client sends none');
      assert.notEqual(generated.headers.get('x-request-id'), id);
    });
  });
});

describe('GET /metrics', () => {
  it('is Prometheus text exposition with turnout_ metrics that follow the traffic', async () => {
    const chat = await gateway.chat({ model: 'auto', messages: promptWithTokens(12) });
    assert.equal(chat.status, 200);
    const response = await gateway.request('GET', '/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const lines = response.text.split('\n').filter((line) => line.length > 0);
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? [-+]?(\d+(\.\d+)?([eE][-+]?\d+)?|NaN|\+Inf|-Inf)( \d+)?$/;
    for (const line of lines) {
      if (line.startsWith('#')) assert.match(line, /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /, line);
      else assert.match(line, sample, `exposition sample line: ${line}`);
    }
    const types = Object.fromEntries(lines.filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ').slice(2, 4)));
    const names = Object.keys(types);
    assert.ok(names.filter((name) => name.startsWith('turnout_')).length >= 3, `turnout_ metric names: ${names}`);
    assert.ok(Object.values(types).includes('histogram'), 'latency histograms');
    assert.ok(lines.some((l) => /_bucket\{.*le="\+Inf"/.test(l)), 'histogram buckets');
    assert.ok(lines.some((l) => !l.startsWith('#') && /model="gpt-3\.5-turbo"/.test(l) && /route="simple"/.test(l)),
      'a sample labelled with the routed model and route');
  });
});

// Sample lines of an exposition as {"name{labels}": value}.
function metricSamples(text) {
  return Object.fromEntries(text.split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => { const cut = line.lastIndexOf(' '); return [line.slice(0, cut), Number(line.slice(cut + 1))]; }));
}

// Series whose value grew by exactly `delta` between two scrapes, among those `matching`.
function seriesGrownBy(before, after, delta, matching) {
  return Object.keys(after).filter((series) => matching(series) && after[series] - (before[series] ?? 0) === delta);
}

describe('metrics follow the traffic', () => {
  it('a chat call adds 1 to a counter labelled with its model and status', async () => {
    const before = metricSamples((await gateway.request('GET', '/metrics')).text);
    assert.equal((await gateway.chat({ model: 'auto', messages: promptWithTokens(12) })).status, 200);
    const after = metricSamples((await gateway.request('GET', '/metrics')).text);
    const grown = seriesGrownBy(before, after, 1, (series) => series.includes('model="gpt-3.5-turbo"') && series.includes('status="200"'));
    assert.ok(grown.length >= 1, 'a request counter by model and status');
  });

  it('a rejected request counts in /metrics (and only there)', async () => {
    const before = metricSamples((await gateway.request('GET', '/metrics')).text);
    const callsBefore = (await gateway.stats()).total_calls;
    assert.equal((await gateway.chat({ model: 'auto', messages: [] })).status, 400);
    const after = metricSamples((await gateway.request('GET', '/metrics')).text);
    assert.ok(seriesGrownBy(before, after, 1, (series) => series.includes('status="400"')).length >= 1, 'a counter of rejections by status');
    assert.equal((await gateway.stats()).total_calls, callsBefore, 'not a ledger record');
  });
});

describe('connections', () => {
  it('serves several requests on one keep-alive connection', async () => {
    const connection = await RawConnection.open(gateway.port);
    try {
      for (let i = 0; i < 3; i += 1) {
        connection.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        const response = await connection.readResponse();
        assert.equal(response.status, 200);
      }
      const body = JSON.stringify({ model: 'auto', messages: promptWithTokens(12) });
      connection.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      const chat = await connection.readResponse();
      assert.equal(chat.status, 200, chat.text);
    } finally {
      connection.close();
    }
  });

  it('clients stalled mid-headers do not block anyone else', async () => {
    const stalled = [];
    try {
      for (let i = 0; i < 20; i += 1) {
        const connection = await RawConnection.open(gateway.port);
        connection.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty');
        stalled.push(connection);
      }
      const halfBody = await RawConnection.open(gateway.port);
      halfBody.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{"messages":');
      stalled.push(halfBody);

      const started = Date.now();
      const results = await Promise.all(Array.from({ length: 10 }, () =>
        gateway.request('POST', '/v1/chat/completions', { json: { model: 'auto', messages: promptWithTokens(12) }, timeoutMs: 5000 })));
      assert.deepEqual(results.map((r) => r.status), Array(10).fill(200));
      assert.equal((await gateway.request('GET', '/health', { timeoutMs: 2000 })).status, 200);
      assert.ok(Date.now() - started < 5000, 'served while others stall');
    } finally {
      for (const connection of stalled) connection.close();
    }
  });
});

describe('graceful shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    it(`${signal}: the in-flight call completes, is recorded, and the process exits 0`, async () => {
      const own = await startGateway({ upstreamUrl: mock.baseUrl });
      await mock.configure({ latency_ms: 800 });
      try {
        const inFlight = own.chat({ model: 'auto', messages: promptWithTokens(12) }, { 'x-request-id': `drain-${signal}` });
        await sleep(250);
        own.handle.child.kill(signal);
        const response = await inFlight;
        assert.equal(response.status, 200, response.text);
        const exit = await own.handle.waitExit();
        assert.deepEqual(exit, { code: 0, signal: null });
      } finally {
        await mock.reset();
      }
      const cli = await runTurnout(['stats', '--config', own.configFile], { cwd: own.dir });
      assert.equal(cli.code, 0, cli.stderr);
      const stats = JSON.parse(cli.stdout);
      assert.equal(stats.total_calls, 1);
      assert.equal(stats.recent_calls[0].id, `drain-${signal}`);
    });
  }

  it('stops accepting new connections after SIGTERM', async () => {
    const own = await startGateway({ upstreamUrl: mock.baseUrl });
    const exit = await own.stop('SIGTERM');
    assert.equal(exit.code, 0);
    await assert.rejects(RawConnection.open(own.port, { timeoutMs: 2000 }));
  });
});
