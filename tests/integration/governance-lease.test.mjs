// Lease mode (issue 17, item 5; SPEC §8 `governance.mode: lease`), through the real binary:
// four `turnout serve` processes on one private PostgreSQL database, then two on one SQLite
// file, each replica spending slices of a hot key's budget in process.
//   - no overspend: a key capped at $0.010, concurrent calls (a third streaming) spread over
//     the replicas: the ledger's total is ≤ the cap exactly and, once the replicas gave
//     their idle slices back and the rest was spent, within one request's maximum of it;
//     spent = the ledger's total, nothing left held;
//   - crash safety: half the replicas SIGKILLed mid-stream leave their leases; until expiry
//     held = what those leases still reserve (each at most one slice), and after it they
//     are charged in full: spent = ledger + expired, held = 0, nothing negative.
// The crash scenario runs first and is checked last: a lease lives for its call's longest
// duration (timeout 4 s + the one-minute margin) plus lease_ttl_s, and the burst fills
// part of that wait.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import {
  baseConfig, chatWithKey as chat, governanceClient, ledgerSql, makeTempDir, openChatStream, picoPerToken, rawUsd,
  sleep, startGateway, startMock, startPgCluster, stopAll, TEST_MODELS, usdToPico, writeConfig,
} from './lib/harness.mjs';

const pg = startPgCluster('turnout-lease-pg-');

const CALL_TIMEOUT_S = 4;       // providers.openai.timeout_s
const HOLD_MARGIN_MS = 60_000;  // src/server/admit_call.cpp kHoldMargin
const LEASE_TTL_S = 1;          // governance.lease_ttl_s
const LEASE_IDLE_S = 0.5;       // governance.lease_idle_s
const SLICE_USD = '0.004';      // governance.lease_slice_usd
const SWEEP_INTERVAL_MS = 5_000;  // src/cli serve: kHoldSweepInterval

let dir;
let mock;
let configFile;
let turnoutJson;
let ledgerLines;
let ledgerTotal;
let gateways = [];
let engine;
// One query on the ledger database this suite's gateways share, its rows as `a|b` lines.
const sql = (query) => ledgerSql(engine === 'sqlite' ? path.join(dir, 'ledger.db') : pg.url, query);

// Long enough for every replica's keeper to give an idle slice back.
const afterIdleReturn = () => sleep(LEASE_IDLE_S * 1000 * 3);

for (const [engineName, replicas, concurrent, skip] of [['postgresql', 4, 400, pg.skip], ['sqlite', 2, 200, false]]) {
describe(`lease mode over ${replicas} replicas on ${engineName}`, { skip }, () => {
  before(async () => {
    engine = engineName;
    gateways = [];
    dir = makeTempDir('turnout-lease-');
    mock ??= await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    if (engine === 'postgresql') {
      pg.assertStarted();
      config.ledger.url = pg.url;
    }
    config.providers.openai.timeout_s = CALL_TIMEOUT_S;
    config.governance = {
      mode: 'lease', lease_slice_usd: SLICE_USD, lease_ttl_s: LEASE_TTL_S, lease_idle_s: LEASE_IDLE_S, key_cache_ttl_s: 1,
    };
    configFile = writeConfig(dir, config);
    ({ turnoutJson, ledgerLines, ledgerTotal } = governanceClient(configFile));
    for (let i = 0; i < replicas; i += 1) gateways.push(await startGateway({ configFile, dir }));
  });
  after(async () => {
    for (const gateway of gateways) await gateway.stop();
  });

  const crash = { key: null, strandedPico: 0n, leasedAt: 0 };

  it('crash: replicas SIGKILLed mid-stream leave only their leases, each at most one slice', async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'crash', '--budget-usd', '1',
      '--budget-period', 'lifetime']);
    crash.key = key;
    await mock.configure({ chunk_delay_ms: 100 });
    try {
      const perReplica = 2;
      const streams = [];
      for (let i = 0; i < perReplica * replicas; i += 1) streams.push(openChatStream(gateways[i % replicas], key.key));
      const opened = await Promise.all(streams);
      crash.leasedAt = Date.now();
      const survivors = replicas / 2;
      for (const gateway of gateways.slice(survivors)) await gateway.stop('SIGKILL');
      const endings = await Promise.all(opened.map((s) => s.ended));
      gateways = gateways.slice(0, survivors);
      for (let i = survivors; i < replicas; i += 1) gateways.push(await startGateway({ configFile, dir }));
      endings.forEach((ending, i) => assert.equal(ending, i % replicas < survivors ? 'complete' : 'cut', `stream ${i}`));
    } finally {
      await mock.configure({ chunk_delay_ms: 0 });
    }
    await afterIdleReturn();  // the survivors give back what their calls did not spend
    const scope = `key:${key.id}`;
    assert.equal(sql(`SELECT COUNT(*) FROM gov_holds WHERE key_scope = '${scope}'`), '0', 'lease mode takes no holds');
    const [count, reserved, largest, smallest] = sql(
      `SELECT COUNT(*), COALESCE(SUM(reserved_pico), 0), COALESCE(MAX(reserved_pico), 0), COALESCE(MIN(reserved_pico), 0)
       FROM gov_leases WHERE key_scope = '${scope}'`).split('|');
    assert.ok(Number(count) >= replicas, `every replica took a lease (${count})`);
    crash.strandedPico = BigInt(reserved);
    assert.ok(crash.strandedPico > 0n, 'the killed replicas left reserved slices');
    assert.ok(BigInt(largest) <= usdToPico(SLICE_USD), `a lease reserves at most one slice (${largest})`);
    assert.ok(BigInt(smallest) >= 0n, 'nothing negative');
    // spent = the ledger (the survivors' calls), held = exactly what the leases still reserve.
    const { raw } = await turnoutJson(['keys', 'show', key.id]);
    assert.equal(rawUsd(raw, 'held_usd'), crash.strandedPico, raw);
    assert.equal(rawUsd(raw, 'spent_usd'), ledgerTotal(await ledgerLines(key.id)), raw);
  });

  it(`no overspend: ${concurrent} concurrent calls (a third streaming) over ${replicas} replicas stay within $0.010`, async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'capped', '--budget-usd', '0.010']);
    // All in flight together: a slow upstream keeps every admitted call's worst case
    // outstanding in its lease while the rest arrive.
    await mock.configure({ latency_ms: 1500 });
    const calls = [];
    for (let i = 0; i < concurrent; i += 1) {
      const stream = i % 3 === 0;
      calls.push(chat(gateways[i % replicas], key.key, stream ? { stream: true, stream_options: { include_usage: true } } : {}));
    }
    const answers = await Promise.all(calls).finally(() => mock.configure({ latency_ms: 0 }));
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(admitted.length + refused.length, concurrent, answers.map((a) => a.status).join(','));
    assert.ok(admitted.length > 0 && refused.length > 0);
    for (const r of refused) {
      assert.equal(r.json.error.code, 'insufficient_quota', r.text);
      assert.equal(r.headers.get('x-should-retry'), 'false');
    }
    for (const a of admitted) assert.ok(a.headers.get('x-turnout-budget-remaining-usd') !== null);
    const scope = `key:${key.id}`;
    assert.equal(sql(`SELECT COUNT(*) FROM gov_holds WHERE key_scope = '${scope}'`), '0', 'admitted on leases only');
    assert.ok(Number(sql(`SELECT COUNT(*) FROM gov_leases WHERE key_scope = '${scope}'`)) > 0);

    // The replicas give their idle slices back; then one replica spends what is left, one
    // call at a time, until a call no longer fits.
    await afterIdleReturn();
    let drained = 0;
    for (;;) {
      const next = await chat(gateways[0], key.key);
      if (next.status === 429) {
        assert.equal(next.json.error.code, 'insufficient_quota', next.text);
        break;
      }
      assert.equal(next.status, 200, next.text);
      drained += 1;
      assert.ok(drained < 200, 'the budget never ran out');
    }
    await afterIdleReturn();
    const lines = await ledgerLines(key.id);
    assert.equal(lines.length, admitted.length + drained);
    const total = ledgerTotal(lines);
    const cap = usdToPico('0.010');
    assert.ok(total <= cap, `ledger total ${total} pico exceeds the cap`);
    const prompt = BigInt(JSON.parse(lines[0]).counted_prompt_tokens);
    const maxRequest = prompt * picoPerToken(TEST_MODELS['gpt-4o'].input) + 100n * picoPerToken(TEST_MODELS['gpt-4o'].output);
    assert.ok(cap - total < maxRequest, `ledger total ${total} pico is more than one request (${maxRequest}) below the cap`);
    const { raw } = await turnoutJson(['keys', 'show', key.id]);
    assert.equal(rawUsd(raw, 'spent_usd'), total, raw);
    assert.equal(rawUsd(raw, 'held_usd'), 0n, raw);
  });

  it('crash, after expiry: the stranded leases are charged in full, spent = ledger + expired, held = 0', async () => {
    const { key } = crash;
    assert.ok(key, 'the crash test ran');
    const scope = `key:${key.id}`;
    // Expiry: the call's longest duration (timeout × 1 attempt + the margin) + lease_ttl_s,
    // then the next sweep of any replica.
    const expiresAt = crash.leasedAt + CALL_TIMEOUT_S * 1000 + HOLD_MARGIN_MS + LEASE_TTL_S * 1000;
    await sleep(Math.max(0, expiresAt - Date.now()) + SWEEP_INTERVAL_MS);
    for (let waited = 0; sql(`SELECT COUNT(*) FROM gov_leases WHERE key_scope = '${scope}'`) !== '0'; waited += 500) {
      assert.ok(waited < 20_000, 'the expired leases were never swept');
      await sleep(500);
    }
    const [spent, held, expired] = sql(
      `SELECT spent_pico, held_pico, expired_pico FROM gov_budgets WHERE scope = '${scope}'`).split('|').map(BigInt);
    const ledger = ledgerTotal(await ledgerLines(key.id));
    assert.equal(held, 0n);
    assert.equal(expired, crash.strandedPico, 'charged exactly what the dead replicas still reserved');
    assert.equal(spent, ledger + expired);
    assert.ok(spent >= 0n && ledger >= 0n);
    const { raw } = await turnoutJson(['keys', 'show', key.id]);
    assert.equal(rawUsd(raw, 'spent_usd'), spent, raw);
  });
});
}

after(async () => {
  await stopAll();
  pg.stop();
});
