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
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  REPO_ROOT, TEST_MODELS, baseConfig, makeTempDir, runTurnout, sleep, startGateway, startMock, stopAll, writeConfig,
} from './lib/harness.mjs';

const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts/pg-test-cluster.sh');
const NO_POSTGRES = 3;  // the script's status when the server binaries are missing
const clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnout-lease-pg-'));
const pgStarted = spawnSync(CLUSTER_SCRIPT, ['start', clusterDir], { encoding: 'utf8', timeout: 120_000 });
const pgUrl = pgStarted.status === 0 ? pgStarted.stdout.trim().split('\n')[0] : null;
const pgSkip = pgStarted.status === NO_POSTGRES ? 'PostgreSQL server binaries are not installed' : false;

const CALL_TIMEOUT_S = 4;       // providers.openai.timeout_s
const HOLD_MARGIN_MS = 60_000;  // src/server/admit_call.cpp kHoldMargin
const LEASE_TTL_S = 1;          // governance.lease_ttl_s
const LEASE_IDLE_S = 0.5;       // governance.lease_idle_s
const SLICE_USD = '0.004';      // governance.lease_slice_usd
const SWEEP_INTERVAL_MS = 5_000;  // src/cli serve: kHoldSweepInterval

const PICO = 10n ** 12n;
// A USD decimal as printed (ledger, CLI, headers) as integer pico-dollars.
function usdToPico(text) {
  const [whole, fraction = ''] = String(text).split('.');
  assert.match(`${whole}.${fraction}`, /^\d+\.\d*$/, `not a plain decimal: ${text}`);
  return BigInt(whole) * PICO + BigInt((fraction + '0'.repeat(12)).slice(0, 12));
}
// The first `"field":<decimal>` of a JSON text, read from its digits (never a double).
function rawUsd(text, field) {
  const found = new RegExp(`"${field}":"?(-?[0-9.]+)`).exec(text);
  assert.ok(found, `no ${field} in ${text}`);
  assert.ok(!found[1].startsWith('-'), `${field} is negative: ${found[1]}`);
  return usdToPico(found[1]);
}
const perToken = (per1k) => usdToPico(per1k) / 1000n;

const CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 100 };

let dir;
let mock;
let configFile;
let gateways = [];
let engine;

function chat(gateway, key, body = {}) {
  return gateway.request('POST', '/v1/chat/completions',
    { json: { ...CHAT, ...body }, headers: { authorization: `Bearer ${key}` } });
}

async function turnoutJson(args) {
  const run = await runTurnout([...args, '--config', configFile]);
  assert.equal(run.code, 0, `turnout ${args.join(' ')}: ${run.stderr}`);
  return { value: JSON.parse(run.stdout), raw: run.stdout };
}

async function ledgerLines(keyId) {
  const run = await runTurnout(['ledger', 'export', '--format', 'jsonl', '--config', configFile]);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.split('\n').filter((line) => line && JSON.parse(line).client_key_id === keyId);
}
const ledgerTotal = (lines) => lines.reduce((sum, line) => sum + rawUsd(line, 'cost_usd'), 0n);

// One query on the ledger database, its rows as `a|b` lines.
function sql(query) {
  if (engine === 'sqlite') return execFileSync('sqlite3', ['-separator', '|', path.join(dir, 'ledger.db'), query]).toString().trim();
  return execFileSync('psql', ['-X', '-A', '-t', '-F', '|', '-c', query, pgUrl]).toString().trim();
}

// A streamed chat call held open: resolves once its first bytes arrived, with a promise of
// how the stream ended ('complete' or 'cut').
async function openStream(gateway, key) {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...CHAT, stream: true, stream_options: { include_usage: true } }),
  });
  assert.equal(response.status, 200, await (response.status === 200 ? '' : response.text()));
  const reader = response.body.getReader();
  const first = await reader.read();
  assert.ok(!first.done, 'the stream ended before its first bytes');
  let text = Buffer.from(first.value).toString('utf8');
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return text.includes('data: [DONE]') ? 'complete' : 'cut';
        text += Buffer.from(value).toString('utf8');
      }
    } catch {
      return 'cut';
    }
  })();
  return { headers: response.headers, ended };
}

// Long enough for every replica's keeper to give an idle slice back.
const afterIdleReturn = () => sleep(LEASE_IDLE_S * 1000 * 3);

for (const [engineName, replicas, concurrent, skip] of [['postgresql', 4, 400, pgSkip], ['sqlite', 2, 200, false]]) {
describe(`lease mode over ${replicas} replicas on ${engineName}`, { skip }, () => {
  before(async () => {
    engine = engineName;
    gateways = [];
    dir = makeTempDir('turnout-lease-');
    mock ??= await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    if (engine === 'postgresql') {
      assert.equal(pgStarted.status, 0, `pg-test-cluster.sh start failed: ${pgStarted.stderr}`);
      config.ledger.url = pgUrl;
    }
    config.providers.openai.timeout_s = CALL_TIMEOUT_S;
    config.governance = {
      mode: 'lease', lease_slice_usd: SLICE_USD, lease_ttl_s: LEASE_TTL_S, lease_idle_s: LEASE_IDLE_S, key_cache_ttl_s: 1,
    };
    configFile = writeConfig(dir, config);
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
      for (let i = 0; i < perReplica * replicas; i += 1) streams.push(openStream(gateways[i % replicas], key.key));
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
    const maxRequest = prompt * perToken(TEST_MODELS['gpt-4o'].input) + 100n * perToken(TEST_MODELS['gpt-4o'].output);
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
  spawnSync(CLUSTER_SCRIPT, ['stop', clusterDir], { encoding: 'utf8', timeout: 120_000 });
});
