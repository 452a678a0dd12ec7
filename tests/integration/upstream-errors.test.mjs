// Upstream failures as the client sees them (docs/REFERENCE.md §2.2, §2.10), with retries
// off: 4xx and 5xx passed through with status and body, non-JSON and malformed bodies
// 502, a hang 504, nothing listening 502. Every failure is still one ledger record with
// the client's status.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { closedPort, openAIErrorProblems, startGateway, startMock, stopAll } from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

const PROVIDER_TIMEOUT_S = 1;

let mock;
let gateway;
const clientStatuses = [];  // every call that reached routing, in order, as the client saw it

before(async () => {
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => { config.providers.openai.timeout_s = PROVIDER_TIMEOUT_S; },
  });
});
after(stopAll);

const request = { model: 'auto', messages: promptWithTokens(12) };

async function callGateway() {
  const response = await gateway.chat(request);
  clientStatuses.push(response.status);
  return response;
}

// The body the mock answers with `faults`, asked directly.
async function directAnswer(faults) {
  await mock.configure(faults);
  const direct = await mock.chat({ ...request, model: 'gpt-3.5-turbo' });
  await mock.reset();
  return direct;
}

function assertOpenAIShape(response) {
  assert.deepEqual(openAIErrorProblems(response.json), [], `OpenAI error shape: ${response.text}`);
  assert.ok(response.headers.get('x-request-id'), 'x-request-id on errors too');
}

describe('upstream status passthrough', () => {
  for (const status of [400, 404, 422, 429, 500, 503]) {
    it(`upstream ${status} reaches the client with its status and body`, async () => {
      const faults = { fail_status: status, fail_first: 1 };
      const direct = await directAnswer(faults);
      assert.equal(direct.status, status, 'the mock injects the fault');
      await mock.configure(faults);
      const response = await callGateway();
      await mock.reset();
      assert.equal(response.status, status, response.text);
      assert.deepEqual(response.json, direct.json, 'the upstream error body, unchanged');
      assertOpenAIShape(response);
      assert.equal(response.headers.get('x-turnout-attempts'), '1', 'no retry with routing.retries: 0');
      assert.equal(response.headers.get('x-turnout-model'), 'gpt-3.5-turbo');
    });
  }
});

describe('upstream failures the gateway maps', () => {
  const cases = [
    { label: 'an HTML error page (502)', faults: { html_error: true }, status: 502 },
    { label: 'an HTML page with status 500', faults: { html_error: true, fail_status: 500 }, status: 502 },
    { label: 'a malformed 200 body', faults: { malformed: true }, status: 502 },
    { label: `a hang past timeout_s (${PROVIDER_TIMEOUT_S} s)`, faults: { hang: true, fail_first: 1 }, status: 504 },
  ];
  for (const { label, faults, status } of cases) {
    it(`${label} becomes ${status} in the OpenAI shape`, async () => {
      await mock.configure(faults);
      const started = Date.now();
      const response = await callGateway();
      const elapsedMs = Date.now() - started;
      await mock.reset();
      assert.equal(response.status, status, response.text);
      assertOpenAIShape(response);
      assert.ok(!/<html/i.test(response.text), 'no upstream HTML reaches the client');
      if (faults.hang) assert.ok(elapsedMs < PROVIDER_TIMEOUT_S * 1000 + 4000, `504 after ${elapsedMs} ms`);
      // The gateway recovers: the next call succeeds.
      const next = await callGateway();
      assert.equal(next.status, 200, next.text);
    });
  }

  it('latency below the timeout is not an error', async () => {
    await mock.configure({ latency_ms: 300 });
    const response = await callGateway();
    await mock.reset();
    assert.equal(response.status, 200, response.text);
    assert.ok(response.json.latency_ms >= 300, `latency_ms ${response.json.latency_ms} includes the upstream's 300 ms`);
  });

  it('every call above is one ledger record with the status the client saw', async () => {
    const stats = await gateway.stats(`?recent=${clientStatuses.length}`);
    assert.equal(stats.total_calls, clientStatuses.length);
    assert.deepEqual(stats.recent_calls.map((call) => call.status), clientStatuses);
    assert.equal(stats.errors, clientStatuses.filter((status) => status >= 400).length);
  });
});

describe('upstream not listening', () => {
  it('connection refused becomes 502 in the OpenAI shape', async () => {
    const port = await closedPort();
    const unreachable = await startGateway({ upstreamUrl: `http://127.0.0.1:${port}/v1` });
    const response = await unreachable.chat(request);
    assert.equal(response.status, 502, response.text);
    assertOpenAIShape(response);
    assert.equal((await unreachable.request('GET', '/health')).status, 200, 'the gateway itself stays healthy');
  });
});
