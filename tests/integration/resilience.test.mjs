// Resilience and providers (issue 5): a model that keeps failing is skipped for
// routing.cooldown.duration_s and tried again afterwards (visible in /health and
// /metrics); a provider's first_byte_timeout_s answers a hung upstream with a 504 in time
// without cutting a slow stream; Azure and OpenAI-compatible providers build the
// request the provider expects (checked against the mock's recording).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import {
  UPSTREAM_KEY, modelEntry, openAIErrorProblems, sleep, startGateway, startMock, stopAll, TEST_MODELS,
} from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

let mock;
const proxyServers = [];  // closed with everything else
before(async () => { mock = await startMock(); });
after(async () => {
  for (const server of proxyServers) server.close();
  await stopAll();
});

const request = { model: 'auto', messages: promptWithTokens(12) };  // routes to gpt-3.5-turbo (tier simple)

async function callWith(gateway, faults, body = request) {
  await mock.reset();
  if (faults) await mock.configure(faults);
  const started = Date.now();
  const response = await gateway.chat(body);
  const elapsedMs = Date.now() - started;
  const upstreamCalls = await mock.chatRequests();
  return { response, upstreamCalls, elapsedMs };
}

async function health(gateway) {
  const response = await gateway.request('GET', '/health');
  assert.equal(response.status, 200, 'a cooling-down model does not make the gateway unhealthy');
  return response.json;
}

// The value of one sample line of /metrics, e.g. metric('turnout_model_cooldown', 'gpt-4o').
async function metric(gateway, name, model) {
  const { text } = await gateway.request('GET', '/metrics');
  const line = text.split('\n').find((l) => l.startsWith(`${name}{model="${model}"} `));
  assert.ok(line, `${name}{model="${model}"} in /metrics`);
  return Number(line.split(' ').at(-1));
}

describe('cooldown', () => {
  const durationS = 2;
  let gateway;
  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.routing.retries = 0;
        config.routing.fallbacks = { 'gpt-3.5-turbo': ['gpt-4o-mini'] };
        config.routing.cooldown = { failures: 2, window_s: 30, duration_s: durationS };
      },
    });
  });

  it('after `failures` failures the model is skipped, its fallback answers, and it is tried again after duration_s', async () => {
    const failing = { fail_status: 503, fault_models: ['gpt-3.5-turbo'] };
    for (let i = 1; i <= 2; ++i) {
      const { response, upstreamCalls } = await callWith(gateway, failing);
      assert.equal(response.status, 200, response.text);
      assert.deepEqual(upstreamCalls.map((c) => c.json.model), ['gpt-3.5-turbo', 'gpt-4o-mini'], `call ${i}`);
    }

    // Cooling down: the primary is not called at all; the fallback answers at once.
    const cooled = await callWith(gateway, failing);
    assert.equal(cooled.response.status, 200, cooled.response.text);
    assert.deepEqual(cooled.upstreamCalls.map((c) => c.json.model), ['gpt-4o-mini'], 'no call to the cooled-down model');
    assert.equal(cooled.response.headers.get('x-turnout-model'), 'gpt-4o-mini');
    assert.equal(cooled.response.headers.get('x-turnout-route'), 'fallback:gpt-3.5-turbo');
    assert.equal(cooled.response.headers.get('x-turnout-attempts'), '1');

    const { cooldowns } = await health(gateway);
    assert.deepEqual(Object.keys(cooldowns), ['gpt-3.5-turbo']);
    assert.equal(cooldowns['gpt-3.5-turbo'].failures, 2);
    const untilS = cooldowns['gpt-3.5-turbo'].until;
    const nowS = Date.now() / 1000;
    assert.ok(untilS > nowS && untilS <= nowS + durationS + 0.5, `until ${untilS} vs now ${nowS}`);
    assert.equal(await metric(gateway, 'turnout_model_cooldown', 'gpt-3.5-turbo'), 1);
    assert.equal(await metric(gateway, 'turnout_model_cooldown', 'gpt-4o-mini'), 0);
    assert.equal(await metric(gateway, 'turnout_model_failures_total', 'gpt-3.5-turbo'), 2);

    // After duration_s (the upstream has recovered) the routed model answers again.
    await sleep(Math.max(0, untilS * 1000 - Date.now()) + 100);
    const recovered = await callWith(gateway, null);
    assert.equal(recovered.response.status, 200, recovered.response.text);
    assert.deepEqual(recovered.upstreamCalls.map((c) => c.json.model), ['gpt-3.5-turbo']);
    assert.equal(recovered.response.headers.get('x-turnout-route'), 'simple');
    assert.deepEqual((await health(gateway)).cooldowns, {});
    assert.equal(await metric(gateway, 'turnout_model_cooldown', 'gpt-3.5-turbo'), 0);
  });
});

describe('cooldown with nothing else to try', () => {
  it('the routed model is still tried when every candidate is cooling down, and its success ends the cooldown', async () => {
    const gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.routing.retries = 0;
        config.routing.cooldown = { failures: 1, window_s: 30, duration_s: 600 };
      },
    });
    const failed = await callWith(gateway, { fail_status: 500, fail_first: 1 });
    assert.equal(failed.response.status, 500);
    assert.ok((await health(gateway)).cooldowns['gpt-3.5-turbo'], 'cooling down after one failure');

    const tried = await callWith(gateway, null);
    assert.equal(tried.response.status, 200, tried.response.text);
    assert.equal(tried.upstreamCalls.length, 1, 'tried rather than failed without a call');
    assert.equal(tried.response.headers.get('x-turnout-route'), 'simple');
    assert.deepEqual((await health(gateway)).cooldowns, {});
  });

  it('failures: 0 disables the cooldown', async () => {
    const gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.routing.fallbacks = { 'gpt-3.5-turbo': ['gpt-4o-mini'] };
        config.routing.cooldown = { failures: 0 };
      },
    });
    for (let i = 0; i < 3; ++i) {
      const { upstreamCalls } = await callWith(gateway, { fail_status: 503, fault_models: ['gpt-3.5-turbo'] });
      assert.equal(upstreamCalls[0].json.model, 'gpt-3.5-turbo', `call ${i} still tries the routed model`);
    }
    assert.deepEqual((await health(gateway)).cooldowns, {});
    assert.equal(await metric(gateway, 'turnout_model_failures_total', 'gpt-3.5-turbo'), 3);
  });
});

describe('first_byte_timeout_s', () => {
  const firstByteS = 0.5;
  let gateway;
  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.providers.openai.timeout_s = 10;
        config.providers.openai.first_byte_timeout_s = firstByteS;
      },
    });
  });

  it('a hung upstream is a 504 in the OpenAI shape within the first-byte timeout', async () => {
    const { response, elapsedMs } = await callWith(gateway, { hang: true });
    assert.equal(response.status, 504, response.text);
    assert.deepEqual(openAIErrorProblems(response.json), []);
    assert.equal(response.json.error.code, 'upstream_timeout');
    assert.ok(elapsedMs >= firstByteS * 1000 - 50, `answered after ${elapsedMs} ms: not before the timeout`);
    assert.ok(elapsedMs < firstByteS * 1000 + 750, `answered after ${elapsedMs} ms (first_byte_timeout_s: ${firstByteS}), not timeout_s`);
  });

  it('a slow stream is not cut once its first byte arrived', async () => {
    await mock.reset();
    await mock.configure({ chunks: 6, chunk_delay_ms: 200 });  // ~1.2 s of events, > first_byte_timeout_s
    const started = Date.now();
    const response = await fetch(`${gateway.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...request, stream: true }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    const elapsedMs = Date.now() - started;
    assert.equal(response.status, 200);
    assert.ok(elapsedMs > firstByteS * 1000 * 2, `the stream took ${elapsedMs} ms, longer than the first-byte timeout`);
    assert.ok(text.trimEnd().endsWith('data: [DONE]'), `complete stream: ${text.slice(-200)}`);
    assert.ok(!text.includes('"error"'), 'no error event');
  });
});

describe('providers', () => {
  it('azure: deployment URL with api-version, api-key header, no Authorization, provider headers', async () => {
    const azureKey = 'az-test-key-5e2b';
    const gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.providers = {
          azure: {
            type: 'azure',
            base_url: mock.url,
            api_key: azureKey,
            api_version: '2024-10-21',
            headers: { 'x-ms-client-team': 'search' },
            timeout_s: 10,
          },
        };
        config.models = {
          'gpt-4o-mini': { ...modelEntry(TEST_MODELS['gpt-4o-mini']), provider: 'azure', upstream_name: 'my-mini-deployment' },
          'gpt-4o': { ...modelEntry(TEST_MODELS['gpt-4o']), provider: 'azure' },
        };
        config.routing.tiers = [{ name: 'simple', below: 1000, model: 'gpt-4o-mini' }, { name: 'complex', model: 'gpt-4o' }];
      },
    });
    const { response, upstreamCalls } = await callWith(gateway, null);
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-4o-mini');
    assert.equal(upstreamCalls.length, 1);
    const [call] = upstreamCalls;
    assert.equal(call.target, '/openai/deployments/my-mini-deployment/chat/completions?api-version=2024-10-21');
    assert.equal(call.headers['api-key'], azureKey);
    assert.equal(call.headers.authorization, undefined, 'Azure gets no Authorization header');
    assert.equal(call.headers['x-ms-client-team'], 'search');
    assert.equal(call.json.model, 'my-mini-deployment');
    assert.ok(!response.text.includes(azureKey), 'the key never reaches the client');
  });

  it('OpenAI-compatible: {base_url}/chat/completions with Bearer key and the provider headers', async () => {
    const gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.providers.openai.headers = { 'HTTP-Referer': 'https://turnout.example', 'X-Title': 'Turnout tests' };
        config.models['gpt-3.5-turbo'] = modelEntry({ ...TEST_MODELS['gpt-3.5-turbo'], upstream_name: 'meta-llama/Llama-3.1-8B-Instruct' });
      },
    });
    const { response, upstreamCalls } = await callWith(gateway, null);
    assert.equal(response.status, 200, response.text);
    const [call] = upstreamCalls;
    assert.equal(call.target, '/v1/chat/completions');
    assert.equal(call.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.equal(call.headers['api-key'], undefined);
    assert.equal(call.headers['http-referer'], 'https://turnout.example');
    assert.equal(call.headers['x-title'], 'Turnout tests');
    assert.equal(call.json.model, 'meta-llama/Llama-3.1-8B-Instruct');
  });
});

// A tiny HTTP CONNECT proxy that records each CONNECT head, answers `status`, and (on 200)
// pipes the tunnel to `tunnelPort`.
async function startConnectProxy({ status = 200, tunnelPort } = {}) {
  const heads = [];
  const server = net.createServer((client) => {
    let pending = Buffer.alloc(0);
    const onData = (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      heads.push(pending.subarray(0, end).toString('latin1'));
      if (status !== 200) {
        client.end(`HTTP/1.1 ${status} Refused\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      const upstream = net.connect({ host: '127.0.0.1', port: tunnelPort }, () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstream.write(pending.subarray(end + 4));
        client.pipe(upstream).pipe(client);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    };
    client.on('data', onData);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  proxyServers.push(server);
  return { port: server.address().port, heads };
}

describe('HTTPS_PROXY', () => {
  const httpsHost = 'api.turnout-proxy-test.invalid';  // never resolved by the gateway when proxied

  async function gatewayWithHttpsModel(env) {
    return startGateway({
      upstreamUrl: mock.baseUrl,
      env,
      configure: (config) => {
        config.providers.remote = { base_url: `https://${httpsHost}/v1`, api_key: 'sk-remote-secret', timeout_s: 5 };
        config.models['gpt-4o'] = modelEntry({ ...TEST_MODELS['gpt-4o'], provider: 'remote' });
      },
    });
  }

  it('HTTPS upstreams go through a CONNECT tunnel (with Proxy-Authorization); http ones do not', async () => {
    const proxy = await startConnectProxy({ tunnelPort: mock.port });
    const gateway = await gatewayWithHttpsModel({ HTTPS_PROXY: `http://user:p%40ss@127.0.0.1:${proxy.port}`, NO_PROXY: '' });

    // The tunnel reaches the (plain-HTTP) mock, so the TLS handshake fails: a 502. What
    // matters is the tunnel request, and that the proxy never saw the request or its key.
    const remote = await gateway.chat({ model: 'gpt-4o', messages: promptWithTokens(12) });
    assert.equal(remote.status, 502, remote.text);
    assert.equal(proxy.heads.length, 1);
    const [requestLine, ...headerLines] = proxy.heads[0].split('\r\n');
    assert.equal(requestLine, `CONNECT ${httpsHost}:443 HTTP/1.1`);
    const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    assert.equal(headers['proxy-authorization'], `Basic ${Buffer.from('user:p@ss').toString('base64')}`);
    assert.ok(!proxy.heads[0].includes('sk-remote-secret'), 'the upstream key stays inside the tunnel');

    const local = await callWith(gateway, null);  // gpt-3.5-turbo on the http:// mock
    assert.equal(local.response.status, 200, local.response.text);
    assert.equal(proxy.heads.length, 1, 'plain-http upstreams are reached directly');
  });

  it('a proxy that refuses the tunnel is a 502 naming the proxy', async () => {
    const proxy = await startConnectProxy({ status: 407 });
    const gateway = await gatewayWithHttpsModel({ HTTPS_PROXY: `127.0.0.1:${proxy.port}` });
    const response = await gateway.chat({ model: 'gpt-4o', messages: promptWithTokens(12) });
    assert.equal(response.status, 502, response.text);
    assert.deepEqual(openAIErrorProblems(response.json), []);
    assert.match(response.json.error.message, /proxy .*refused a tunnel .*407/);
    assert.equal(proxy.heads.length, 1);
  });

  it('NO_PROXY hosts are reached directly', async () => {
    const proxy = await startConnectProxy({ tunnelPort: mock.port });
    const gateway = await gatewayWithHttpsModel({ HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, NO_PROXY: 'localhost,.turnout-proxy-test.invalid' });
    const response = await gateway.chat({ model: 'gpt-4o', messages: promptWithTokens(12) });
    assert.equal(response.status, 502, 'the .invalid host does not resolve');
    assert.equal(proxy.heads.length, 0);
  });
});
