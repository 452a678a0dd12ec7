// GET /metrics read by a real Prometheus text-format parser (parse-prometheus-text-format,
// a port of Prometheus' prom2json parser) after known traffic: several models and routes,
// a stream, an upstream error, rejected requests and one slow call. The exposition must
// parse, declare every family once with HELP and the right TYPE and label names, follow
// the naming conventions, and hold the values the traffic implies: request counts, tokens
// equal to the usage the gateway returned, cost equal to the returned cost_usd values
// (exact decimals, never floats), consistent histograms, an in-flight gauge that follows
// the load, and label values with quotes, backslashes and newlines escaped.
import { before, after, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import parsePrometheusTextFormat from 'parse-prometheus-text-format';

import { modelEntry, sleep, startGateway, startMock, stopAll } from './lib/harness.mjs';
import { parseDecimal, promptWithTokens } from './lib/reference.mjs';

// Names the exposition must escape: they come from the config, verbatim.
const QUOTED_MODEL = 'we"ird\\model';
const QUOTED_ROUTE = 'sim"ple\\tier';
// Never called (a newline in a response header would break HTTP), but every configured
// model is listed in the cooldown families, which is where its escaping shows.
const NEWLINE_MODEL = 'line\nbreak';

// The slow call sits above the old 2.5 s top bucket, as real LLM calls do.
const SLOW_CALL_MS = 2600;

// Every family /metrics may expose: type and label names (histograms: besides `le`).
const FAMILIES = {
  turnout_requests_total: { type: 'COUNTER', labels: ['model', 'route', 'status'] },
  turnout_rejected_requests_total: { type: 'COUNTER', labels: ['reason', 'status'] },
  turnout_request_duration_seconds: { type: 'HISTOGRAM', labels: [] },
  turnout_upstream_duration_seconds: { type: 'HISTOGRAM', labels: [] },
  turnout_overhead_seconds: { type: 'HISTOGRAM', labels: [] },
  turnout_tokens_total: { type: 'COUNTER', labels: ['model', 'kind'] },
  turnout_cost_usd_total: { type: 'COUNTER', labels: ['model'] },
  turnout_endpoint_requests_total: { type: 'COUNTER', labels: ['endpoint', 'status'] },
  turnout_endpoint_cost_usd_total: { type: 'COUNTER', labels: ['endpoint'] },
  turnout_upstream_retries_total: { type: 'COUNTER', labels: [] },
  turnout_fallbacks_total: { type: 'COUNTER', labels: [] },
  turnout_inflight_requests: { type: 'GAUGE', labels: [] },
  turnout_model_failures_total: { type: 'COUNTER', labels: ['model'] },
  turnout_model_cooldown: { type: 'GAUGE', labels: ['model'] },
  turnout_config_reloads_total: { type: 'COUNTER', labels: ['result'] },
  turnout_config_last_reload_timestamp_seconds: { type: 'GAUGE', labels: ['result'] },
  turnout_config_last_reload_successful: { type: 'GAUGE', labels: [] },
  turnout_access_log_dropped_lines_total: { type: 'COUNTER', labels: [] },
  turnout_ledger_journals_off: { type: 'GAUGE', labels: [] },
  turnout_ledger_journal_write_failures_total: { type: 'COUNTER', labels: [] },
  turnout_governance_live_holds: { type: 'GAUGE', labels: ['scope', 'id'] },
  turnout_governance_held_usd: { type: 'GAUGE', labels: ['scope', 'id'] },
  turnout_governance_expired_holds_total: { type: 'COUNTER', labels: ['scope', 'id'] },
  turnout_governance_expired_usd_total: { type: 'COUNTER', labels: ['scope', 'id'] },
  turnout_governance_overruns_total: { type: 'COUNTER', labels: ['scope', 'id'] },
  turnout_governance_overrun_usd_total: { type: 'COUNTER', labels: ['scope', 'id'] },
  turnout_governance_refusals_total: { type: 'COUNTER', labels: ['key', 'team', 'reason'] },
};

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// A sample value as Prometheus reads it (Go float syntax, decimal forms).
const SAMPLE_VALUE = /^(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN)$/;
// Money as exact decimals (the gateway prints pico-dollars, 12 decimals at most).
const MONEY_DIGITS = 15;

let mock;
let gateway;
const calls = [];       // every chat call: {model, route, status, promptTokens, completionTokens, costUsd}
const rejections = [];  // every request rejected before routing: {reason, status}
let inflightIdle;
let inflightDuringSlowCall;
let metricsResponse;
let families;           // the parser's output, by family name

before(async () => {
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => {
      const mini = { input: '0.001', output: '0.002', context_window: 128000 };
      config.models[QUOTED_MODEL] = { ...modelEntry(mini), upstream_name: 'gpt-4o-mini' };
      config.models[NEWLINE_MODEL] = { ...modelEntry(mini), upstream_name: 'gpt-4o-mini' };
      config.routing.tiers[0].name = QUOTED_ROUTE;
    },
  });
  await driveTraffic();
  metricsResponse = await gateway.request('GET', '/metrics');
  families = new Map(parsePrometheusTextFormat(metricsResponse.text).map((family) => [family.name, family]));
});
after(stopAll);

// ---------------------------------------------------------------------------------------
// Traffic, recorded as the client saw it.

async function driveTraffic() {
  const short = promptWithTokens(12);
  for (let i = 0; i < 3; i += 1) await chat({ model: 'auto', messages: short }, 'gpt-3.5-turbo', QUOTED_ROUTE);
  for (let i = 0; i < 2; i += 1) await chat({ model: QUOTED_MODEL, messages: short }, QUOTED_MODEL, 'explicit');
  await chat({ model: 'gpt-4o-mini', messages: promptWithTokens(30) }, 'gpt-4o-mini', 'explicit');
  await chatStream({ model: 'gpt-4o-mini', messages: short }, 'gpt-4o-mini', 'explicit');

  await mock.configure({ fail_status: 503, fail_first: 1 });
  await chat({ model: 'gpt-4o', messages: short }, 'gpt-4o', 'explicit');
  await mock.reset();

  await reject('POST', '/v1/chat/completions', { model: 'auto', messages: [] });
  await reject('POST', '/v1/chat/completions', { model: 'auto' });
  await reject('GET', '/no-such-endpoint');

  inflightIdle = await scrapeInflight();
  await mock.configure({ latency_ms: SLOW_CALL_MS });
  const slowCall = chat({ model: 'auto', messages: short }, 'gpt-3.5-turbo', QUOTED_ROUTE);
  inflightDuringSlowCall = await waitForInflightAbove(inflightIdle, SLOW_CALL_MS - 600);
  await slowCall;
  await mock.reset();
}

async function chat(body, model, route) {
  const response = await gateway.chat(body);
  calls.push({
    model, route, status: response.status,
    promptTokens: response.json?.usage?.prompt_tokens ?? 0,
    completionTokens: response.json?.usage?.completion_tokens ?? 0,
    costUsd: response.headers.get('x-turnout-cost-usd'),  // exact text; "0" for a failed call
  });
}

// A stream's usage and cost arrive in its usage chunk (the client asks for it).
async function chatStream(body, model, route) {
  const response = await gateway.chat({ ...body, stream: true, stream_options: { include_usage: true } });
  const events = response.text.split('\n\n').map((event) => event.replace(/^data: /, ''));
  const usageEvent = events.find((event) => event.startsWith('{') && JSON.parse(event).usage);
  assert.ok(usageEvent, `a usage chunk in the stream: ${response.text}`);
  calls.push({
    model, route, status: response.status,
    promptTokens: JSON.parse(usageEvent).usage.prompt_tokens,
    completionTokens: JSON.parse(usageEvent).usage.completion_tokens,
    costUsd: /"cost_usd":([0-9.]+)/.exec(usageEvent)?.[1] ?? null,  // the exact text, not a float
  });
}

async function reject(method, urlPath, json) {
  const response = await gateway.request(method, urlPath, { json });
  assert.ok(response.status >= 400, `${method} ${urlPath} is rejected: ${response.status}`);
  rejections.push({ reason: response.json.error.code, status: String(response.status) });
}

async function scrapeInflight() {
  const response = await gateway.request('GET', '/metrics');
  const sample = /^turnout_inflight_requests (\S+)$/m.exec(response.text);
  assert.ok(sample, 'turnout_inflight_requests sample');
  return Number(sample[1]);
}

// The highest in-flight value seen before `deadlineMs`, polling until it exceeds `baseline`.
async function waitForInflightAbove(baseline, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  let seen = baseline;
  while (seen <= baseline && Date.now() < deadline) {
    seen = Math.max(seen, await scrapeInflight());
    if (seen <= baseline) await sleep(50);
  }
  return seen;
}

// ---------------------------------------------------------------------------------------
// Reading the parsed exposition.

function family(name) {
  const found = families.get(name);
  assert.ok(found, `family ${name} in /metrics`);
  return found;
}

// The samples of a counter or gauge whose labels include `match`.
function samplesWhere(name, match = {}) {
  return family(name).metrics.filter((sample) =>
    Object.entries(match).every(([key, value]) => sample.labels?.[key] === value));
}

// The one value of the series `name{labels}` exactly, as a string.
function seriesValue(name, labels) {
  const found = family(name).metrics.filter((sample) =>
    JSON.stringify(Object.entries(sample.labels ?? {}).sort()) === JSON.stringify(Object.entries(labels).sort()));
  assert.equal(found.length, 1, `one series ${name}${JSON.stringify(labels)}`);
  return found[0].value;
}

// An unlabelled histogram: its buckets ascending by bound as [le, count], sum and count.
function histogram(name) {
  const { metrics } = family(name);
  assert.equal(metrics.length, 1, `${name} has one unlabelled series`);
  const { buckets, sum, count } = metrics[0];
  assert.ok(buckets && sum !== undefined && count !== undefined, `${name} has buckets, _sum and _count`);
  const bound = (le) => (le === '+Inf' ? Infinity : Number(le));
  const sorted = Object.entries(buckets).sort(([a], [b]) => bound(a) - bound(b));
  return { buckets: sorted.map(([le, n]) => [le, BigInt(n)]), sum, count: BigInt(count) };
}

function countWhere(list, predicate) {
  return BigInt(list.filter(predicate).length);
}

// ---------------------------------------------------------------------------------------

describe('GET /metrics exposition format', () => {
  it('is served as text exposition 0.0.4', () => {
    assert.equal(metricsResponse.status, 200);
    assert.match(metricsResponse.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.ok(metricsResponse.text.endsWith('\n'), 'every line, the last included, ends with a newline');
  });

  it('parses, every sample line accounted for, each family once with HELP and TYPE', () => {
    const parsed = parsePrometheusTextFormat(metricsResponse.text);
    const names = parsed.map((f) => f.name);
    assert.deepEqual(names, [...new Set(names)], 'no family appears twice');
    let parsedSamples = 0;
    for (const { name, help, type, metrics } of parsed) {
      assert.match(name, METRIC_NAME);
      assert.ok(help.length > 0, `${name} has HELP`);
      assert.notEqual(type, 'UNTYPED', `${name} has TYPE`);
      for (const sample of metrics) {
        for (const label of Object.keys(sample.labels ?? {})) assert.match(label, LABEL_NAME, `${name} label`);
        if (type === 'HISTOGRAM') {
          const buckets = Object.values(sample.buckets ?? {});
          for (const value of [...buckets, sample.sum, sample.count]) assert.match(value, SAMPLE_VALUE, name);
          parsedSamples += buckets.length + 2;
        } else {
          assert.match(sample.value, SAMPLE_VALUE, `${name} value`);
          parsedSamples += 1;
        }
      }
    }
    // The parser merges repeated series silently; equal counts mean none was repeated.
    const sampleLines = metricsResponse.text.split('\n').filter((line) => line && !line.startsWith('#'));
    assert.equal(parsedSamples, sampleLines.length, 'every sample line is one parsed sample');
  });

  it('declares exactly the known families, each with its type and label names', () => {
    assert.deepEqual([...families.keys()].sort(), Object.keys(FAMILIES).sort());
    for (const [name, { type, labels }] of Object.entries(FAMILIES)) {
      assert.equal(family(name).type, type, `TYPE of ${name}`);
      if (type === 'HISTOGRAM') continue;  // label names checked by histogram()
      for (const sample of family(name).metrics) {
        assert.deepEqual(Object.keys(sample.labels ?? {}).sort(), [...labels].sort(), `labels of ${name}`);
      }
    }
    for (const name of ['turnout_request_duration_seconds', 'turnout_upstream_duration_seconds', 'turnout_overhead_seconds']) {
      histogram(name);
    }
  });

  it('follows the naming conventions: turnout_ prefix, _total for counters only, base units', () => {
    for (const { name, type } of families.values()) {
      assert.ok(name.startsWith('turnout_'), name);
      assert.equal(name.endsWith('_total'), type === 'COUNTER', `${name}: _total if and only if a counter`);
      if (/duration|latency|overhead/.test(name)) assert.ok(name.endsWith('_seconds'), `${name} in seconds`);
    }
  });

  it('escapes quotes, backslashes and newlines in label values', () => {
    const lines = metricsResponse.text.split('\n').filter((line) => line.length > 0);
    for (const line of lines) assert.match(line, /^(# (HELP|TYPE) )?turnout_/, `no line split by a label value: ${line}`);
    assert.ok(lines.includes('turnout_model_cooldown{model="line\\nbreak"} 0'), 'newline as \\n');
    assert.ok(lines.some((line) => line.startsWith('turnout_cost_usd_total{model="we\\"ird\\\\model"} ')),
      'quote as \\" and backslash as \\\\');
    assert.ok(lines.some((line) => line.includes('route="sim\\"ple\\\\tier"')), 'route escaped the same way');
    // And the parser reads the original names back.
    assert.equal(samplesWhere('turnout_model_cooldown', { model: NEWLINE_MODEL }).length, 1);
    assert.equal(samplesWhere('turnout_requests_total', { model: QUOTED_MODEL, route: 'explicit' }).length, 1);
    assert.equal(samplesWhere('turnout_requests_total', { route: QUOTED_ROUTE }).length, 1);
  });
});

describe('GET /metrics values follow the traffic', () => {
  it('counts chat requests by routed model, route and status', () => {
    const expected = new Map();
    for (const { model, route, status } of calls) {
      const key = JSON.stringify({ model, route, status: String(status) });
      expected.set(key, (expected.get(key) ?? 0n) + 1n);
    }
    const actual = new Map(family('turnout_requests_total').metrics.map((sample) =>
      [JSON.stringify({ model: sample.labels.model, route: sample.labels.route, status: sample.labels.status }), BigInt(sample.value)]));
    assert.deepEqual(actual, expected);
    assert.ok([...actual.keys()].some((key) => JSON.parse(key).status === '503'), 'the upstream error is counted with its status');
  });

  it('counts the same calls by endpoint: all of them chat here', () => {
    const expected = new Map();
    for (const { status } of calls) expected.set(`chat ${status}`, (expected.get(`chat ${status}`) ?? 0n) + 1n);
    const actual = new Map(family('turnout_endpoint_requests_total').metrics.map((sample) =>
      [`${sample.labels.endpoint} ${sample.labels.status}`, BigInt(sample.value)]));
    assert.deepEqual(actual, expected);
  });

  it('counts rejected requests by reason and status, apart from chat requests', () => {
    const expected = new Map();
    for (const { reason, status } of rejections) {
      const key = `${reason} ${status}`;
      expected.set(key, (expected.get(key) ?? 0n) + 1n);
    }
    const actual = new Map(family('turnout_rejected_requests_total').metrics.map((sample) =>
      [`${sample.labels.reason} ${sample.labels.status}`, BigInt(sample.value)]));
    assert.deepEqual(actual, expected);
  });

  it('counts tokens as the usage the gateway returned, per model', () => {
    const answered = calls.filter((call) => call.status === 200);
    for (const model of new Set(answered.map((call) => call.model))) {
      const ofModel = calls.filter((call) => call.model === model);
      const sum = (field) => String(ofModel.reduce((total, call) => total + call[field], 0));
      assert.equal(seriesValue('turnout_tokens_total', { model, kind: 'prompt' }), sum('promptTokens'), `${model} prompt`);
      assert.equal(seriesValue('turnout_tokens_total', { model, kind: 'completion' }), sum('completionTokens'), `${model} completion`);
    }
  });

  it('counts no tokens for a call the upstream failed (the ledger bills none)', () => {
    const failed = calls.filter((call) => call.status === 503);
    assert.equal(failed.length, 1);
    assert.equal(failed[0].promptTokens, 0, 'the client got no usage');
    assert.equal(seriesValue('turnout_tokens_total', { model: failed[0].model, kind: 'prompt' }), '0');
    assert.equal(seriesValue('turnout_tokens_total', { model: failed[0].model, kind: 'completion' }), '0');
  });

  it('sums cost exactly as the cost_usd values the gateway returned, per model', () => {
    const priced = calls.filter((call) => call.costUsd !== null);
    assert.equal(priced.length, calls.length, 'every call, stream and failure included, returned a cost');
    const expected = new Map();
    for (const { model, costUsd } of priced) {
      expected.set(model, (expected.get(model) ?? 0n) + parseDecimal(costUsd, MONEY_DIGITS));
    }
    const actual = new Map(family('turnout_cost_usd_total').metrics.map((sample) =>
      [sample.labels.model, parseDecimal(sample.value, MONEY_DIGITS)]));
    assert.deepEqual(actual, expected);
    assert.ok([...actual.values()].some((cost) => cost > 0n), 'some cost was counted');
  });

  it('counts no retries or fallbacks when none were configured', () => {
    assert.equal(seriesValue('turnout_upstream_retries_total', {}), '0');
    assert.equal(seriesValue('turnout_fallbacks_total', {}), '0');
  });

  it('counts the retryable upstream failure against its model', () => {
    const failedModel = calls.find((call) => call.status === 503).model;
    for (const sample of family('turnout_model_failures_total').metrics) {
      assert.equal(sample.value, sample.labels.model === failedModel ? '1' : '0', sample.labels.model);
    }
  });
});

describe('GET /metrics histograms', () => {
  const chatCount = () => BigInt(calls.length);

  for (const name of ['turnout_request_duration_seconds', 'turnout_upstream_duration_seconds', 'turnout_overhead_seconds']) {
    it(`${name}: cumulative buckets ending in +Inf == _count == chat calls, _sum > 0`, () => {
      const { buckets, sum, count } = histogram(name);
      assert.equal(buckets.at(-1)[0], '+Inf', 'a +Inf bucket');
      for (let i = 1; i < buckets.length; i += 1) {
        assert.ok(buckets[i][1] >= buckets[i - 1][1], `cumulative at le=${buckets[i][0]}`);
      }
      assert.equal(buckets.at(-1)[1], count, '+Inf bucket equals _count');
      assert.equal(count, chatCount(), 'one observation per chat call (every one reached the upstream)');
      assert.ok(Number(sum) > 0, `${name}_sum > 0`);
    });
  }

  it('resolves a multi-second call in the request and upstream histograms', () => {
    for (const name of ['turnout_request_duration_seconds', 'turnout_upstream_duration_seconds']) {
      const { buckets } = histogram(name);
      const at = (le) => buckets.find(([bound]) => bound === le)?.[1];
      assert.ok(at('2.5') !== undefined && at('5') !== undefined, `${name} has buckets at 2.5 and 5 s`);
      assert.equal(at('5') - at('2.5'), 1n, `${name}: the ${SLOW_CALL_MS} ms call lies in (2.5, 5]`);
      assert.ok(Number(histogram(name).sum) >= SLOW_CALL_MS / 1000, `${name}_sum includes the slow call`);
    }
  });
});

describe('turnout_inflight_requests', () => {
  it('rises by one while a chat call is in progress', () => {
    assert.equal(inflightDuringSlowCall - inflightIdle, 1);
  });

  it('is 0 when the gateway is idle (a scrape does not count itself)', () => {
    assert.equal(inflightIdle, 0);
    assert.equal(seriesValue('turnout_inflight_requests', {}), '0');
  });
});
