// Budget periods against an injected clock, through the real binary (issue 17, tests:
// "a monthly budget in Europe/Berlin refuses at 23:59:59 on the last day and admits at
// 00:00:00; a DST change passes"). The gateway runs under Debian's libfaketime with the
// wall clock read from a file the test rewrites; the monotonic clock (timers, key cache)
// stays real. Nothing in the gateway knows it is being tested.
//
// Each case spends a budget that fits exactly one call: the budget equals that call's
// hold (input price × exact prompt tokens + output price × max_tokens), and the mock
// answers with max_tokens tokens, so after one call the period is spent to the pico-USD.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
  baseConfig, makeTempDir, openAIErrorProblems, PICO_PER_USD, picoPerToken, runTurnout, startGateway, startMock,
  startPgCluster, stopAll, TEST_MODELS, usdToPico, writeConfig,
} from './lib/harness.mjs';

const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';
const pg = startPgCluster('turnout-govper-pg-');

const MAX_TOKENS = 5;
const BODY = { model: 'gpt-4o', messages: [{ role: 'user', content: 'What time is it in Berlin?' }], max_tokens: MAX_TOKENS };

after(async () => {
  await stopAll();
  pg.stop();
});

function usdText(pico) {
  return `${pico / PICO_PER_USD}.${(pico % PICO_PER_USD).toString().padStart(12, '0')}`;
}

// The gateway's wall clock: an absolute UTC time, frozen until the file changes.
class InjectedClock {
  constructor(dir) { this.file = path.join(dir, 'clock'); }

  set(isoUtc) {
    const text = isoUtc.replace('T', ' ').replace(/Z$/, '');
    fs.writeFileSync(`${this.file}.next`, `${text}\n`);
    fs.renameSync(`${this.file}.next`, this.file);  // never a half-written time
  }

  env() {
    const asan = [process.env.ASAN_OPTIONS, 'verify_asan_link_order=0'].filter(Boolean).join(':');
    return {
      LD_PRELOAD: FAKETIME_LIB, FAKETIME_TIMESTAMP_FILE: this.file, FAKETIME_NO_CACHE: '1', DONT_FAKE_MONOTONIC: '1',
      TZ: 'UTC', ASAN_OPTIONS: asan,
    };
  }
}

for (const [engine, skip] of [['sqlite', false], ['postgresql', pg.skip]]) {
describe(`budget periods in Europe/Berlin with an injected clock on ${engine}`, { skip: skip || (!fs.existsSync(FAKETIME_LIB) && 'libfaketime is not installed') }, () => {
  let gateway;
  let clock;
  let configFile;
  let holdPico;

  before(async () => {
    const dir = makeTempDir('turnout-govper-');
    const mock = await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    if (engine === 'postgresql') {
      pg.assertStarted();
      config.ledger.url = pg.url;
    }
    config.governance = { key_cache_ttl_s: 0.2 };
    configFile = writeConfig(dir, config);
    clock = new InjectedClock(dir);
    clock.set('2026-10-31T12:00:00Z');
    gateway = await startGateway({ configFile, dir, env: clock.env() });

    // The hold of BODY, from the gateway's own exact count in gpt-4o's encoding.
    const route = await gateway.request('POST', '/route', { json: BODY });
    assert.equal(route.status, 200, route.text);
    const promptTokens = BigInt(route.json.model_prompt_tokens ?? route.json.prompt_tokens);
    const prices = TEST_MODELS['gpt-4o'];
    holdPico = picoPerToken(prices.input) * promptTokens + picoPerToken(prices.output) * BigInt(MAX_TOKENS);
  });

  async function createKey(period) {
    const run = await runTurnout(['keys', 'create', '--name', `berlin-${period}`, '--budget-usd', usdText(holdPico),
      '--budget-period', period, '--timezone', 'Europe/Berlin', '--config', configFile]);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout);
  }

  function chat(key) {
    return gateway.request('POST', '/v1/chat/completions', { json: BODY, headers: { authorization: `Bearer ${key}` } });
  }

  // The period as the gateway sees it now, once the call's hold has settled.
  async function settledUsage(key) {
    for (let attempt = 0; attempt < 100; attempt++) {
      const limits = await gateway.request('GET', '/v1/limits', { headers: { authorization: `Bearer ${key}` } });
      assert.equal(limits.status, 200, limits.text);
      if (Number(limits.json.usage.held_usd) === 0) return limits.json.usage;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.fail('the hold never settled');
  }

  // Spends the period with one call at `lastSecond`, is refused there with a retry-after of
  // one second, and is admitted again at `nextPeriodStart`.
  async function spendAndRoll(key, lastSecond, nextPeriodStart, periodStartOfLast) {
    clock.set(lastSecond);
    const first = await chat(key);
    assert.equal(first.status, 200, first.text);
    const usage = await settledUsage(key);
    assert.equal(Date.parse(usage.period_start), Date.parse(periodStartOfLast));
    // The mock answers max_tokens tokens, so the call cost exactly its hold: the budget.
    assert.equal(usdToPico(usage.spent_usd), holdPico, JSON.stringify(usage));

    const refused = await chat(key);
    assert.equal(refused.status, 429, refused.text);
    assert.deepEqual(openAIErrorProblems(refused.json), []);
    assert.equal(refused.json.error.code, 'insufficient_quota');
    assert.equal(refused.headers.get('x-should-retry'), 'false');
    // The period ends at the next local midnight, one second away, whatever the UTC offset.
    assert.equal(refused.headers.get('retry-after'), '1');

    clock.set(nextPeriodStart);
    const admitted = await chat(key);
    assert.equal(admitted.status, 200, admitted.text);
    const next = await settledUsage(key);
    assert.equal(Date.parse(next.period_start), Date.parse(nextPeriodStart));
  }

  it('a monthly budget refuses at 23:59:59 on the last day of the month and admits at 00:00:00', async () => {
    const key = await createKey('month');
    // Berlin is on CET (UTC+1) after the 2026-10-25 change: November starts at 23:00 UTC.
    await spendAndRoll(key.key, '2026-10-31T22:59:59Z', '2026-10-31T23:00:00Z', '2026-09-30T22:00:00Z');
  });

  it('a daily budget on the 23-hour day of the spring DST change ends at local midnight', async () => {
    const key = await createKey('day');
    // 2027-03-28 starts at 23:00 UTC the day before (CET) and ends at 22:00 UTC (CEST).
    await spendAndRoll(key.key, '2027-03-28T21:59:59Z', '2027-03-28T22:00:00Z', '2027-03-27T23:00:00Z');
  });

  it('a daily budget on the 25-hour day of the autumn DST change ends at local midnight', async () => {
    const key = await createKey('day');
    // 2026-10-25 starts at 22:00 UTC the day before (CEST) and ends at 23:00 UTC (CET).
    await spendAndRoll(key.key, '2026-10-25T22:59:59Z', '2026-10-25T23:00:00Z', '2026-10-24T22:00:00Z');
  });

  it('an ISO-week budget ends at Monday 00:00 local time', async () => {
    const key = await createKey('week');
    // Sunday 2027-01-03 23:59:59 CET ends ISO week 2026-W53; 2027-W01 starts Monday the 4th.
    await spendAndRoll(key.key, '2027-01-03T22:59:59Z', '2027-01-03T23:00:00Z', '2026-12-27T23:00:00Z');
  });
});
}
