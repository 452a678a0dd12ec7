// Live config reload (docs/REFERENCE.md §3.4): SIGHUP re-reads the config file through
// the real binary. Calls in flight across the signal finish on the config they were
// dispatched with; calls dispatched after the reload's log line get the new prices and
// tiers, exactly; an invalid file is refused with its key path and the running config
// keeps serving; listener/ledger changes are reported as needing a restart; gateway keys
// reload; /metrics counts reloads.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  baseConfig, modelEntry, runTurnout, sleep, startGateway, startMock, stopAll, withTimeout, writeConfig, TEST_MODELS,
} from './lib/harness.mjs';
import { parseDecimal, promptWithTokens, usageCost } from './lib/reference.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(stopAll);

const prompt = promptWithTokens(20);
const NEW_35_PRICES = { input: '0.0011', output: '0.0033', context_window: 16385 };

// Waits (bounded) for the n-th {"event":"config_reload"} line; returns it parsed.
async function reloadLine(gateway, n) {
  const lines = () => gateway.handle.logEntries().filter((entry) => entry.event === 'config_reload');
  return withTimeout((async () => {
    while (lines().length < n) await sleep(10);
    return lines()[n - 1];
  })(), 10_000, `config_reload line #${n}`);
}

async function metricValue(gateway, series) {
  const text = (await gateway.request('GET', '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function inflight(gateway) {
  return metricValue(gateway, 'turnout_inflight_requests');
}

// The ledger's records by request id (turnout ledger export, JSON Lines), with the exact cost text.
async function ledgerRecords(gateway) {
  const exported = await runTurnout(['ledger', 'export', '--format', 'jsonl', '--config', gateway.configFile], { cwd: gateway.dir });
  assert.equal(exported.code, 0, exported.stderr);
  const byId = new Map();
  for (const line of exported.stdout.split('\n').filter(Boolean)) {
    const record = JSON.parse(line);
    byId.set(record.id, { ...record, costText: /"cost_usd":([^,}]+)/.exec(line)[1] });
  }
  return byId;
}

function assertBilledAt(record, prices, what) {
  const usage = { prompt_tokens: record.prompt_tokens, completion_tokens: record.completion_tokens };
  assert.equal(parseDecimal(record.costText, 15), usageCost(usage, prices), `${what}: exact cost at ${JSON.stringify(prices)}`);
}

describe('SIGHUP reload under load', () => {
  let gateway;
  let oldConfig;
  let newConfig;

  before(async () => {
    await mock.reset();
    gateway = await startGateway({ upstreamUrl: mock.baseUrl });
    oldConfig = baseConfig({ upstreamUrl: mock.baseUrl, dir: gateway.dir });
    newConfig = structuredClone(oldConfig);
    newConfig.models['gpt-3.5-turbo'] = modelEntry(NEW_35_PRICES);
    newConfig.routing.tiers[0] = { name: 'small', below: 1000, model: 'gpt-4o-mini' };
    newConfig.ledger.retention_days = 30;  // start-up only: reported, not applied
  });

  it('switches prices and tiers exactly at the reload; no call in flight fails', async () => {
    await mock.configure({ latency_ms: 700 });
    let n = 0;
    const call = (model, tag) => {
      const id = `reload-${tag}-${n += 1}`;
      const started = Date.now();
      return gateway.chat({ model, messages: prompt }, { 'x-request-id': id })
        .then((response) => ({ id, model, started, response }));
    };
    // Slow calls dispatched before the signal: they must finish on the old config.
    const before = [];
    for (let i = 0; i < 4; i += 1) before.push(call('auto', 'before'), call('gpt-3.5-turbo', 'before'));
    await withTimeout((async () => { while ((await inflight(gateway)) < before.length) await sleep(10); })(),
      10_000, 'the first calls in flight');

    // Steady load across the signal: each worker keeps one call in flight.
    let loading = true;
    const steady = [];
    const workers = [0, 1, 2].map(async (w) => {
      while (loading) steady.push(await call(w % 2 ? 'auto' : 'gpt-3.5-turbo', 'steady'));
    });

    await sleep(100);
    writeConfig(gateway.dir, newConfig);
    const signalled = Date.now();
    process.kill(gateway.handle.pid, 'SIGHUP');
    const line = await reloadLine(gateway, 1);
    const reloaded = Date.now();
    assert.equal(line.result, 'success', JSON.stringify(line));
    assert.deepEqual(line.changed, ['models', 'routing']);
    assert.deepEqual(line.restart_required, ['ledger.retention_days']);

    const after = [];
    for (let i = 0; i < 3; i += 1) after.push(call('auto', 'after'), call('gpt-3.5-turbo', 'after'));
    const [beforeDone, afterDone] = await Promise.all([Promise.all(before), Promise.all(after)]);
    loading = false;
    await Promise.all(workers);
    await mock.reset();

    const everything = [...beforeDone, ...steady, ...afterDone];
    for (const { id, response } of everything) assert.equal(response.status, 200, `${id}: ${response.text}`);
    assert.ok(steady.some((c) => c.started < signalled) && steady.some((c) => c.started > reloaded),
      'the steady load spans the reload');

    const ledger = await ledgerRecords(gateway);
    const expectOld = ({ id, model, response }) => {
      const record = ledger.get(id);
      assert.ok(record, `${id} is in the ledger`);
      const served = model === 'auto' ? 'gpt-3.5-turbo' : model;
      assert.equal(record.model, served, `${id}: old tier`);
      if (model === 'auto') assert.equal(record.route, 'simple', `${id}: old route`);
      assertBilledAt(record, TEST_MODELS['gpt-3.5-turbo'], `${id} (old config)`);
      assert.equal(Number(response.headers.get('x-turnout-cost-usd')), Number(record.costText), `${id}: header = ledger`);
    };
    const expectNew = ({ id, model }) => {
      const record = ledger.get(id);
      assert.ok(record, `${id} is in the ledger`);
      if (model === 'auto') {
        assert.equal(record.model, 'gpt-4o-mini', `${id}: new tier`);
        assert.equal(record.route, 'small', `${id}: new route`);
        assertBilledAt(record, TEST_MODELS['gpt-4o-mini'], `${id} (new tier)`);
      } else {
        assert.equal(record.model, 'gpt-3.5-turbo');
        assertBilledAt(record, NEW_35_PRICES, `${id} (new price)`);
      }
    };
    beforeDone.forEach(expectOld);
    afterDone.forEach(expectNew);
    // Sent well before the signal: dispatched on the old config; sent after the reload's
    // log line: on the new one; in between, either, but never a mix of the two.
    for (const c of steady) {
      if (c.started < signalled - 100) expectOld(c);
      else if (c.started > reloaded) expectNew(c);
      else {
        const record = ledger.get(c.id);
        const old = c.model === 'auto' ? record.model === 'gpt-3.5-turbo' : parseDecimal(record.costText, 15) ===
          usageCost({ prompt_tokens: record.prompt_tokens, completion_tokens: record.completion_tokens }, TEST_MODELS['gpt-3.5-turbo']);
        (old ? expectOld : expectNew)(c);
      }
    }
    assert.equal(await metricValue(gateway, 'turnout_config_reloads_total{result="success"}'), 1);
    assert.equal(await metricValue(gateway, 'turnout_config_reloads_total{result="failure"}'), 0);
    const at = await metricValue(gateway, 'turnout_config_last_reload_timestamp_seconds{result="success"}');
    assert.ok(at * 1000 >= signalled - 1000 && at * 1000 <= reloaded + 1000, `reload timestamp ${at}`);
  });

  it('refuses an invalid file with its key path; the running config keeps serving', async () => {
    const broken = structuredClone(newConfig);
    broken.routing.tiers[1].below = -5;
    writeConfig(gateway.dir, broken);
    process.kill(gateway.handle.pid, 'SIGHUP');
    const line = await reloadLine(gateway, 2);
    assert.equal(line.result, 'failure', JSON.stringify(line));
    assert.match(line.error, /routing\.tiers\[1\]\.below/);

    writeConfig(gateway.dir, 'routing: [unclosed');
    process.kill(gateway.handle.pid, 'SIGHUP');
    assert.equal((await reloadLine(gateway, 3)).result, 'failure');

    const response = await gateway.chat({ model: 'auto', messages: prompt });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-4o-mini', 'the last good config still routes');
    assert.equal(response.headers.get('x-turnout-route'), 'small');
    assert.equal(await metricValue(gateway, 'turnout_config_reloads_total{result="failure"}'), 2);
    assert.equal(await metricValue(gateway, 'turnout_config_last_reload_successful'), 0);
    assert.equal((await gateway.request('GET', '/health')).status, 200);
  });
});

describe('SIGHUP reload of gateway keys and providers', () => {
  it('a key added by a reload is required from then on; a provider moved takes the next call', async () => {
    await mock.reset();
    const gateway = await startGateway({ upstreamUrl: mock.baseUrl, configure: (c) => { c.routing.retries = 1; } });
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir: gateway.dir });
    config.routing.retries = 1;
    assert.equal((await gateway.chat({ model: 'auto', messages: prompt })).status, 200);
    await mock.clearRequests();

    config.server.api_keys = ['tk-reloaded-key-1'];
    config.server.host = '127.0.0.2';  // start-up only
    writeConfig(gateway.dir, config);
    process.kill(gateway.handle.pid, 'SIGHUP');
    const line = await reloadLine(gateway, 1);
    assert.equal(line.result, 'success');
    assert.deepEqual(line.changed, ['server.api_keys']);
    assert.deepEqual(line.restart_required, ['server.host']);
    assert.ok(!JSON.stringify(gateway.handle.stdoutLines).includes('tk-reloaded-key-1'), 'the key is never logged');

    assert.equal((await gateway.chat({ model: 'auto', messages: prompt })).status, 401);
    gateway.apiKey = 'tk-reloaded-key-1';
    assert.equal((await gateway.chat({ model: 'auto', messages: prompt })).status, 200);
    await mock.clearRequests();

    // A call whose first attempt failed is waiting (Retry-After: 1) when the provider
    // moves to a port nothing listens on: its retry still goes where it started, while
    // the next call goes to the new address and fails upstream.
    await mock.configure({ fail_first: 1, fail_status: 503, retry_after: '1' });
    const retried = gateway.chat({ model: 'auto', messages: prompt });
    await withTimeout((async () => { while ((await mock.chatRequests()).length < 1) await sleep(10); })(), 5000, 'first attempt');
    config.providers.openai.base_url = 'http://127.0.0.1:9/v1';
    writeConfig(gateway.dir, config);
    process.kill(gateway.handle.pid, 'SIGHUP');
    assert.deepEqual((await reloadLine(gateway, 2)).changed, ['providers']);
    assert.equal((await gateway.chat({ model: 'auto', messages: prompt })).status, 502);
    const answer = await retried;
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers.get('x-turnout-attempts'), '2');
    assert.equal((await mock.chatRequests()).length, 2, 'both attempts of the call in flight reached the old provider');
    await mock.reset();
  });
});

describe('SIGHUP reload of a provider key', () => {
  // The key is written into the provider's request head when the config is loaded; a reload
  // writes it again. Keys are compared, never printed (assert.ok, not assert.equal).
  it('the next call carries the new key; a stream in flight across the reload finishes on the old one', async () => {
    const OLD_KEY = 'sk-provider-old-5e1b7c';
    const NEW_KEY = 'sk-provider-new-9a3d04';
    await mock.reset();
    const gateway = await startGateway({ upstreamUrl: mock.baseUrl, configure: (c) => { c.providers.openai.api_key = OLD_KEY; } });
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir: gateway.dir });
    config.providers.openai.api_key = OLD_KEY;
    await mock.configure({ chunks: 8, chunk_delay_ms: 150 });
    const streamed = gateway.chat({ model: 'auto', messages: prompt, stream: true });
    await withTimeout((async () => { while ((await mock.chatRequests()).length < 1) await sleep(10); })(), 5000, 'the stream upstream');

    config.providers.openai.api_key = NEW_KEY;
    writeConfig(gateway.dir, config);
    process.kill(gateway.handle.pid, 'SIGHUP');
    assert.deepEqual((await reloadLine(gateway, 1)).changed, ['providers']);
    assert.ok(!JSON.stringify(gateway.handle.stdoutLines).includes(NEW_KEY), 'the key is never logged');
    assert.equal((await gateway.chat({ model: 'auto', messages: prompt })).status, 200);
    const stream = await streamed;
    assert.equal(stream.status, 200);
    assert.ok(stream.text.includes('data: [DONE]'), 'the stream in flight ran to its end');

    const requests = await mock.chatRequests();
    assert.equal(requests.length, 2);
    const sentKeys = requests.map((request) => request.headers.authorization);
    assert.ok(sentKeys[0] === `Bearer ${OLD_KEY}`, 'the stream in flight was sent with the old key');
    assert.ok(sentKeys[1] === `Bearer ${NEW_KEY}`, 'the call after the reload carries the new key');
    await mock.reset();
  });
});

// POST /admin/v1/reload: the same reload as SIGHUP, behind governance.admin_key, answering
// what it did. The gateway's governance store needs no PostgreSQL: the SQLite ledger hosts it.
describe('POST /admin/v1/reload', () => {
  const ADMIN_KEY = 'adm-reload-test-61c9e2a07f3b';
  let gateway;
  let config;
  const reload = (key = ADMIN_KEY) =>
    gateway.request('POST', '/admin/v1/reload', { headers: key === null ? {} : { authorization: `Bearer ${key}` } });

  before(async () => {
    await mock.reset();
    gateway = await startGateway({ upstreamUrl: mock.baseUrl, configure: (c) => { c.governance = { admin_key: ADMIN_KEY }; } });
    config = baseConfig({ upstreamUrl: mock.baseUrl, dir: gateway.dir });
    config.governance = { admin_key: ADMIN_KEY };
  });

  it('needs the admin key: nothing else reloads', async () => {
    config.routing.tiers[0] = { name: 'small', below: 1000, model: 'gpt-4o-mini' };
    writeConfig(gateway.dir, config);
    for (const key of [null, 'adm-wrong', `${ADMIN_KEY}x`, ADMIN_KEY.slice(0, -1)]) {
      const refused = await reload(key);
      assert.equal(refused.status, 401, `${key}: ${refused.text}`);
      assert.equal(refused.json.error.code, 'invalid_api_key');
    }
    const response = await gateway.chat({ model: 'auto', messages: prompt });
    assert.equal(response.headers.get('x-turnout-route'), 'simple', 'no refused request reloaded the config');
    assert.equal(await metricValue(gateway, 'turnout_config_reloads_total{result="success"}') ?? 0, 0);
  });

  it('applies a valid config: what changed and what needs a restart, then calls use it', async () => {
    config.server.host = '127.0.0.2';  // start-up only
    writeConfig(gateway.dir, config);
    const answer = await reload();
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.status, 'applied');
    assert.equal(answer.json.config, gateway.configFile);
    assert.deepEqual(answer.json.changed, ['routing']);
    assert.deepEqual(answer.json.restart_required, ['server.host']);
    const line = await reloadLine(gateway, 1);
    assert.equal(line.result, 'success', 'logged like a SIGHUP reload');
    const response = await gateway.chat({ model: 'auto', messages: prompt });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-route'), 'small');
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-4o-mini');
    assert.equal(await metricValue(gateway, 'turnout_config_reloads_total{result="success"}'), 1);
    assert.ok(!JSON.stringify(gateway.handle.stdoutLines).includes(ADMIN_KEY), 'the admin key is never logged');
  });

  it('refuses an invalid config with 422 naming the key path; the running config keeps serving', async () => {
    const broken = structuredClone(config);
    broken.routing.tiers[1].below = -5;
    writeConfig(gateway.dir, broken);
    const refused = await reload();
    assert.equal(refused.status, 422, refused.text);
    assert.deepEqual(Object.keys(refused.json.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(refused.json.error.code, 'invalid_config');
    assert.equal(refused.json.error.param, 'routing.tiers[1].below');
    assert.match(refused.json.error.message, /running one stays in effect/);
    assert.equal((await reloadLine(gateway, 2)).result, 'failure');

    writeConfig(gateway.dir, 'routing: [unclosed');
    const unparsable = await reload();
    assert.equal(unparsable.status, 422, unparsable.text);
    assert.equal(unparsable.json.error.code, 'invalid_config');

    const response = await gateway.chat({ model: 'auto', messages: prompt });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-route'), 'small', 'the last good config still routes');
    assert.equal(await metricValue(gateway, 'turnout_config_reloads_total{result="failure"}'), 2);
  });

  it('is 404 without governance.admin_key (the admin API is off)', async () => {
    const off = await startGateway({ upstreamUrl: mock.baseUrl });
    const answer = await off.request('POST', '/admin/v1/reload', { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(answer.status, 404, answer.text);
    await off.stop();
  });
});
