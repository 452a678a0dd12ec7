// GET /stats exactness (docs/REFERENCE.md §5): after a known sequence of calls, every
// field is recomputed here from the usage the mock reported and the config prices, with
// exact decimal arithmetic. Then since/until/recent, persistence across a restart, and
// `turnout stats --config` printing the same JSON.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { modelEntry, runTurnout, sleep, startGateway, startMock, stopAll } from './lib/harness.mjs';
import { femtoToNumber, nearestRank, promptWithTokens, usageCost } from './lib/reference.mjs';

const PRICES = {
  'gpt-3.5-turbo': { input: '0.0005', output: '0.0015', context_window: 16385 },
  'gpt-4o-mini': { input: '0.00015', output: '0.0006', cached: '0.000075', context_window: 128000 },
  'gpt-4o': { input: '0.0025', output: '0.01', cached: '0.00125', context_window: 128000 },
  'gpt-4.1-nano': { input: '0.0001', output: '0.0004', context_window: 1047576 },
};
const BASELINE = 'gpt-4o';
const UNPRICED_MODEL = 'acme-unpriced-llm';

let mock;
let gateway;
const calls = [];  // what the client saw, in order: {id, model, route, status, usage, batch}
let batchBoundary;  // unix seconds: batch 1 arrived before it, batch 2 at or after

async function call(id, body, { batch, faults } = {}) {
  if (faults) await mock.configure(faults);
  const response = await gateway.chat(body, { 'x-request-id': id });
  if (faults) await mock.reset();
  assert.equal(response.headers.get('x-request-id'), id);
  const ok = response.status === 200;
  calls.push({
    id, batch,
    model: response.headers.get('x-turnout-model'),
    route: response.headers.get('x-turnout-route'),
    status: response.status,
    usage: ok ? response.json.usage : null,
    costUsd: ok ? response.json.cost_usd : undefined,
  });
  return response;
}

const shortPrompt = promptWithTokens(15);
const mediumPrompt = promptWithTokens(1500);

before(async () => {
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => {
      config.models = Object.fromEntries(Object.entries(PRICES).map(([name, prices]) => [name, modelEntry(prices)]));
      config.routing.baseline_model = BASELINE;
    },
  });

  // Batch 1.
  for (let i = 0; i < 3; i += 1) await call(`stats-simple-${i}`, { model: 'auto', messages: shortPrompt }, { batch: 1 });
  for (let i = 0; i < 2; i += 1) await call(`stats-medium-${i}`, { model: 'auto', messages: mediumPrompt }, { batch: 1 });
  await call('stats-explicit-4o', { model: 'gpt-4o', messages: shortPrompt, max_tokens: 50 }, { batch: 1 });
  await call('stats-failed-400', { model: 'gpt-4.1-nano', messages: shortPrompt }, { batch: 1, faults: { fail_status: 400, fail_first: 1 } });

  // Wait for the next whole second so the batches straddle it.
  batchBoundary = Math.floor(Date.now() / 1000) + 1;
  await sleep(batchBoundary * 1000 - Date.now() + 50);

  // Batch 2.
  for (let i = 0; i < 2; i += 1) await call(`stats-simple-b2-${i}`, { messages: shortPrompt }, { batch: 2 });
  await call('stats-unpriced', { model: UNPRICED_MODEL, messages: shortPrompt }, { batch: 2 });
  await call('stats-cached-mini', { model: 'gpt-4o-mini', messages: mediumPrompt }, { batch: 2, faults: { cached_tokens: 1024 } });
});
after(stopAll);

// The /stats body expected for `selected` calls, from their usage and the config prices.
// Latency fields are checked separately (they are the gateway's measurements).
function expectedStats(selected) {
  const models = {};
  const routes = {};
  const distribution = {};
  let totalCost = 0n;
  let baselineCost = 0n;
  let savings = 0n;
  for (const c of selected) {
    distribution[c.model] = (distribution[c.model] ?? 0) + 1;
    routes[c.route] = (routes[c.route] ?? 0) + 1;
    const entry = models[c.model] ??= { calls: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0n, priced: false };
    entry.calls += 1;
    if (c.status >= 400) entry.errors += 1;
    const prices = PRICES[c.model];
    if (prices) entry.priced = true;
    if (!c.usage) continue;  // a failed call without usage costs nothing
    entry.prompt_tokens += c.usage.prompt_tokens;
    entry.completion_tokens += c.usage.completion_tokens;
    const baseline = usageCost(c.usage, PRICES[BASELINE]);
    baselineCost += baseline;
    if (prices) {
      const cost = usageCost(c.usage, prices);
      entry.cost += cost;
      totalCost += cost;
      savings += baseline - cost;
    }
  }
  return {
    total_calls: selected.length,
    total_cost_usd: femtoToNumber(totalCost),
    model_distribution: distribution,
    errors: selected.filter((c) => c.status >= 400).length,
    routes,
    baseline_cost_usd: femtoToNumber(baselineCost),
    savings_usd: femtoToNumber(savings),
    unpriced_calls: selected.filter((c) => !PRICES[c.model]).length,
    models: Object.fromEntries(Object.entries(models).map(([name, m]) => [name, {
      calls: m.calls, errors: m.errors, prompt_tokens: m.prompt_tokens, completion_tokens: m.completion_tokens,
      cost_usd: m.priced ? femtoToNumber(m.cost) : null,
    }])),
  };
}

// Compares a /stats body with the expectation for `selected` (all fields but latency).
function assertStatsMatch(stats, selected) {
  const expected = expectedStats(selected);
  for (const field of ['total_calls', 'total_cost_usd', 'errors', 'baseline_cost_usd', 'savings_usd', 'unpriced_calls']) {
    assert.equal(stats[field], expected[field], field);
  }
  assert.deepEqual(stats.model_distribution, expected.model_distribution, 'model_distribution');
  assert.deepEqual(stats.routes, expected.routes, 'routes');
  assert.deepEqual(Object.keys(stats.models).sort(), Object.keys(expected.models).sort(), 'models');
  for (const [name, model] of Object.entries(expected.models)) {
    const { latency_ms: latency, ...counts } = stats.models[name];
    assert.deepEqual(counts, model, `models.${name}`);
    assert.deepEqual(Object.keys(latency).sort(), ['avg', 'p50', 'p95', 'p99']);
  }
}

describe('GET /stats after a known sequence', () => {
  it('the sequence went as planned', () => {
    assert.deepEqual(calls.map((c) => [c.model, c.route, c.status]), [
      ['gpt-3.5-turbo', 'simple', 200], ['gpt-3.5-turbo', 'simple', 200], ['gpt-3.5-turbo', 'simple', 200],
      ['gpt-4o-mini', 'medium', 200], ['gpt-4o-mini', 'medium', 200],
      ['gpt-4o', 'explicit', 200],
      ['gpt-4.1-nano', 'explicit', 400],
      ['gpt-3.5-turbo', 'simple', 200], ['gpt-3.5-turbo', 'simple', 200],
      [UNPRICED_MODEL, 'explicit', 200],
      ['gpt-4o-mini', 'explicit', 200],
    ]);
    const cachedCall = calls.at(-1);
    assert.ok(cachedCall.usage.prompt_tokens_details?.cached_tokens > 0, 'the mock reported cached tokens');
    assert.equal(cachedCall.costUsd, femtoToNumber(usageCost(cachedCall.usage, PRICES['gpt-4o-mini'])), 'cached tokens priced at their own rate');
    assert.equal(calls.find((c) => c.model === UNPRICED_MODEL).costUsd, null);
  });

  it('totals, per-model figures, routes, baseline and savings are exact', async () => {
    assertStatsMatch(await gateway.stats(), calls);
  });

  it('recent_calls: the newest N, oldest first, each as the client saw it', async () => {
    const stats = await gateway.stats(`?recent=${calls.length}`);
    assert.equal(stats.recent_calls.length, calls.length);
    stats.recent_calls.forEach((recent, index) => {
      const c = calls[index];
      assert.equal(recent.id, c.id);
      assert.equal(recent.model, c.model);
      assert.equal(recent.route, c.route);
      assert.equal(recent.status, c.status);
      if (c.usage) {
        assert.equal(recent.prompt_tokens, c.usage.prompt_tokens, `${c.id} prompt_tokens`);
        assert.equal(recent.completion_tokens, c.usage.completion_tokens, `${c.id} completion_tokens`);
        const prices = PRICES[c.model];
        assert.equal(recent.cost_usd, prices ? femtoToNumber(usageCost(c.usage, prices)) : null, `${c.id} cost_usd`);
      }
      assert.equal(recent.tokens, recent.prompt_tokens + recent.completion_tokens, `${c.id} tokens`);
      assert.equal(typeof recent.latency_ms, 'number');
      assert.ok(Math.abs(recent.timestamp - Date.now() / 1000) < 300, `${c.id} timestamp in unix seconds`);
      assert.equal(recent.timestamp < batchBoundary, c.batch === 1, `${c.id} timestamp side of the boundary`);
    });
    const timestamps = stats.recent_calls.map((recent) => recent.timestamp);
    assert.deepEqual([...timestamps].sort((a, b) => a - b), timestamps, 'oldest first');

    const defaultRecent = await gateway.stats();
    assert.deepEqual(defaultRecent.recent_calls.map((r) => r.id), calls.slice(-10).map((c) => c.id), 'default recent=10: the newest ten');
    const three = await gateway.stats('?recent=3');
    assert.deepEqual(three.recent_calls.map((r) => r.id), calls.slice(-3).map((c) => c.id));
  });

  it('latency figures agree with the recorded calls', async () => {
    const stats = await gateway.stats(`?recent=${calls.length}`);
    const latencies = stats.recent_calls.map((r) => r.latency_ms);
    const tolerance = 0.002;  // per-call latencies are shown rounded to 3 decimals
    const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
    assert.ok(Math.abs(stats.avg_latency_ms - mean) <= tolerance, `avg_latency_ms ${stats.avg_latency_ms} vs mean ${mean}`);
    for (const name of Object.keys(stats.models)) {
      const own = stats.recent_calls.filter((r) => r.model === name).map((r) => r.latency_ms).sort((a, b) => a - b);
      const summary = stats.models[name].latency_ms;
      const ownMean = own.reduce((a, b) => a + b, 0) / own.length;
      assert.ok(Math.abs(summary.avg - ownMean) <= tolerance, `${name} avg ${summary.avg} vs ${ownMean}`);
      // Percentiles come from latency histograms: within the 4.4%-wide bucket of the exact value.
      for (const [field, percent] of [['p50', 50], ['p95', 95], ['p99', 99]]) {
        const exact = nearestRank(own, percent);
        assert.ok(Math.abs(summary[field] - exact) <= 0.045 * exact + tolerance,
          `${name} ${field} ${summary[field]} vs nearest-rank ${nearestRank(own, percent)} of ${own}`);
      }
    }
  });

  it('since (inclusive) and until (exclusive) narrow the window, unix seconds or RFC 3339', async () => {
    const batch1 = calls.filter((c) => c.batch === 1);
    const batch2 = calls.filter((c) => c.batch === 2);
    const rfc3339 = new Date(batchBoundary * 1000).toISOString().replace('.000Z', 'Z');
    assertStatsMatch(await gateway.stats(`?since=${batchBoundary}`), batch2);
    assertStatsMatch(await gateway.stats(`?until=${batchBoundary}`), batch1);
    assertStatsMatch(await gateway.stats(`?since=${encodeURIComponent(rfc3339)}`), batch2);
    assertStatsMatch(await gateway.stats(`?until=${encodeURIComponent(rfc3339)}`), batch1);
    // The same instant written with a +02:00 offset: local time two hours ahead.
    const shifted = `${new Date((batchBoundary + 7200) * 1000).toISOString().slice(0, 19)}+02:00`;
    assertStatsMatch(await gateway.stats(`?since=${encodeURIComponent(shifted)}`), batch2);
    const empty = await gateway.stats(`?since=${batchBoundary}&until=${batchBoundary}`);
    assert.equal(empty.total_calls, 0);
    assert.equal(empty.total_cost_usd, 0);
    assert.deepEqual(empty.recent_calls, []);
    const future = await gateway.stats(`?since=${batchBoundary + 3600}`);
    assert.equal(future.total_calls, 0);
  });

  it('/stats/series picks a default step that is a whole roll-up bucket, so a long window stays cheap', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const [window, step] of [[3600, 60], [86_400, 3600], [7 * 86_400, 3600], [30 * 86_400, 21_600], [400 * 86_400, 604_800]]) {
      const response = await gateway.request('GET', `/stats/series?since=${now - window}`);
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json.step, step, `window of ${window} s`);
      assert.equal(response.json.buckets.reduce((sum, bucket) => sum + bucket.total_calls, 0), calls.length,
        `window of ${window} s holds every call`);
    }
  });

  it('a bad since/until/recent is a 400 in the OpenAI shape', async () => {
    for (const query of ['?since=yesterday', '?until=2024-13-45T00:00:00Z', '?recent=-1', '?recent=abc']) {
      const response = await gateway.request('GET', `/stats${query}`);
      assert.equal(response.status, 400, `${query}: ${response.text}`);
      assert.ok(response.json?.error?.message, `${query}: OpenAI error shape`);
    }
  });

  it('survives a restart; `turnout stats --config` prints the same JSON', async () => {
    const before = await gateway.stats();
    const exit = await gateway.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, 'SIGTERM exits 0');

    const cli = await runTurnout(['stats', '--config', gateway.configFile], { cwd: gateway.dir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), before);

    gateway = await startGateway({ configFile: gateway.configFile, dir: gateway.dir });
    assert.deepEqual(await gateway.stats(), before);
    assertStatsMatch(await gateway.stats(), calls);
  });
});
