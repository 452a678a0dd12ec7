// Retries and fallbacks (docs/REFERENCE.md §4.4): 429/5xx/timeouts/connection failures
// are retried `retries` times with backoff honouring Retry-After (capped by
// max_retry_wait_s), then the fallbacks are tried in order (route fallback:<original>);
// other 4xx and malformed bodies are not retried. Counted by what the mock received.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { TEST_MODELS, closedPort, modelEntry, startGateway, startMock, stopAll } from './lib/harness.mjs';
import { femtoToNumber, promptWithTokens, usageCost } from './lib/reference.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(stopAll);

const request = { model: 'auto', messages: promptWithTokens(12) };  // routes to gpt-3.5-turbo

// Sends `request` with `faults` set on the mock; returns the response and the upstream calls.
async function callWith(gateway, faults, body = request) {
  await mock.reset();
  if (faults) await mock.configure(faults);
  const started = Date.now();
  const response = await gateway.chat(body);
  const elapsedMs = Date.now() - started;
  const upstreamCalls = await mock.chatRequests();
  await mock.reset();
  return { response, upstreamCalls, elapsedMs };
}

describe('retries on one model', () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.routing.retries = 2;
        config.routing.retry_backoff_ms = 10;
        config.routing.max_retry_wait_s = 2;
        config.providers.openai.timeout_s = 1;
      },
    });
  });

  for (const status of [429, 500, 502, 503]) {
    it(`upstream ${status} twice, then success: 200 after 3 attempts`, async () => {
      const { response, upstreamCalls } = await callWith(gateway, { fail_status: status, fail_first: 2 });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.headers.get('x-turnout-attempts'), '3');
      assert.equal(response.headers.get('x-turnout-route'), 'simple', 'a retry is not a fallback');
      assert.equal(upstreamCalls.length, 3);
    });
  }

  it('retries spent: the last upstream error reaches the client', async () => {
    const { response, upstreamCalls } = await callWith(gateway, { fail_status: 503 });
    assert.equal(response.status, 503, response.text);
    assert.equal(response.headers.get('x-turnout-attempts'), '3');
    assert.equal(upstreamCalls.length, 3);
  });

  it('429 with retries spent is a 429', async () => {
    const { response } = await callWith(gateway, { fail_status: 429 });
    assert.equal(response.status, 429, response.text);
    assert.ok(response.json?.error, 'OpenAI error shape');
  });

  it('a timeout is retried', async () => {
    const { response, upstreamCalls } = await callWith(gateway, { hang: true, fail_first: 1 });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-attempts'), '2');
    assert.equal(upstreamCalls.length, 2);
  });

  for (const [label, faults] of [
    ['a 400', { fail_status: 400, fail_first: 1 }],
    ['a 401', { fail_status: 401, fail_first: 1 }],
    ['a malformed 200 body', { malformed: true, fail_first: 1 }],
  ]) {
    it(`${label} is not retried`, async () => {
      const { response, upstreamCalls } = await callWith(gateway, faults);
      assert.notEqual(response.status, 200);
      assert.equal(response.headers.get('x-turnout-attempts'), '1');
      assert.equal(upstreamCalls.length, 1);
    });
  }

  it('Retry-After is honoured before the retry', async () => {
    const { response, upstreamCalls } = await callWith(gateway, { fail_status: 429, fail_first: 1, retry_after: '1' });
    assert.equal(response.status, 200, response.text);
    const gapS = upstreamCalls[1].time - upstreamCalls[0].time;
    assert.ok(gapS >= 0.95, `retry ${gapS.toFixed(3)} s after a Retry-After: 1`);
  });

  it('a Retry-After beyond max_retry_wait_s is not waited out', async () => {
    const { response, elapsedMs } = await callWith(gateway, { fail_status: 429, fail_first: 1, retry_after: '120' });
    assert.ok(elapsedMs < 2000 + 1500, `answered after ${elapsedMs} ms (max_retry_wait_s: 2)`);
    assert.ok([200, 429].includes(response.status), `status ${response.status}`);
  });
});

describe('fallbacks', () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.routing.retries = 1;
        config.routing.retry_backoff_ms = 10;
        // A fallback too small for the prompt + max_tokens is skipped.
        config.models['tiny-window'] = modelEntry({ input: '0.0001', output: '0.0002', context_window: 40 });
        config.routing.fallbacks = { 'gpt-3.5-turbo': ['tiny-window', 'gpt-4o-mini', 'gpt-4o'] };
      },
    });
  });

  it('after the retries, the first fitting fallback answers: route fallback:<original>', async () => {
    const body = { ...request, max_tokens: 100 };  // 12 + 100 > 40: tiny-window does not fit
    const { response, upstreamCalls } = await callWith(gateway, { fail_status: 503, fault_models: ['gpt-3.5-turbo'] }, body);
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-4o-mini');
    assert.equal(response.headers.get('x-turnout-route'), 'fallback:gpt-3.5-turbo');
    assert.equal(response.headers.get('x-turnout-attempts'), '3', '2 on gpt-3.5-turbo, 1 on gpt-4o-mini');
    assert.deepEqual(upstreamCalls.map((call) => call.json.model), ['gpt-3.5-turbo', 'gpt-3.5-turbo', 'gpt-4o-mini']);
    assert.equal(response.json.cost_usd, femtoToNumber(usageCost(response.json.usage, TEST_MODELS['gpt-4o-mini'])));

    const [recorded] = (await gateway.stats('?recent=1')).recent_calls;
    assert.equal(recorded.model, 'gpt-4o-mini');
    assert.equal(recorded.route, 'fallback:gpt-3.5-turbo');
  });

  it('a 4xx does not fall back', async () => {
    const { response, upstreamCalls } = await callWith(gateway, { fail_status: 400, fault_models: ['gpt-3.5-turbo'] });
    assert.equal(response.status, 400);
    assert.equal(upstreamCalls.length, 1);
  });

  it('every fallback failing: the last error reaches the client', async () => {
    const { response, upstreamCalls } = await callWith(gateway, { fail_status: 500 });
    assert.equal(response.status, 500, response.text);
    // tiny-window fits this short prompt: 3 models x 2 attempts (+ gpt-4o).
    assert.equal(upstreamCalls.length, 8);
    assert.equal(response.headers.get('x-turnout-attempts'), '8');
  });
});

describe('connection failures fall back to another provider', () => {
  it('a dead provider is retried, then its model falls back to a live one', async () => {
    const deadPort = await closedPort();
    const gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.providers.dead = { base_url: `http://127.0.0.1:${deadPort}/v1`, api_key: 'sk-dead', timeout_s: 2 };
        config.models['gpt-3.5-turbo'] = modelEntry({ ...TEST_MODELS['gpt-3.5-turbo'], provider: 'dead' });
        config.routing.retries = 1;
        config.routing.retry_backoff_ms = 10;
        config.routing.fallbacks = { 'gpt-3.5-turbo': ['gpt-4o-mini'] };
      },
    });
    const { response, upstreamCalls } = await callWith(gateway, null);
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-4o-mini');
    assert.equal(response.headers.get('x-turnout-route'), 'fallback:gpt-3.5-turbo');
    assert.equal(response.headers.get('x-turnout-attempts'), '3');
    assert.equal(upstreamCalls.length, 1, 'only the live provider saw a call');
  });
});
