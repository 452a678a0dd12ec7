// A fleet on one machine (issue 20, item 3): a private PostgreSQL, three `turnout serve`
// replicas sharing its ledger, the mock upstream, and a real HAProxy in front with health
// checks on /health. Load goes through the balancer with the official `openai` SDK (no
// SDK retries, so each call a client saw complete is exactly one gateway call):
//   - every replica serves, and every replica's /stats gives the same answer;
//   - SIGKILL one replica under load: each completed call is in the ledger exactly once,
//     the balancer routes around the dead replica, the restarted replica rejoins;
//   - SIGTERM one replica under load (a rolling restart): it drains and exits 0, no call
//     fails;
//   - stop PostgreSQL for a few seconds under load: every replica reports 503 on /health,
//     the balancer takes them out, no acknowledged call is missing from the ledger, and
//     the replicas recover without a restart.
// Skipped only when haproxy or the PostgreSQL server binaries are not installed
// (`scripts/install-deps.sh --test` installs both).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { parseJsonOrNull, sleep } from '../integration/lib/harness.mjs';
import { exportLedger, missingTools, startFleet, stopFleet, waitFor } from './lib/fleet.mjs';

const CONCURRENCY = 6;

// Checks that fail because of a gateway bug: skipped with the bug named, until the fix
// lands. TURNOUT_FLEET_KNOWN_BUGS=1 runs them anyway (to verify a fix).
const knownBug = (text) => (process.env.TURNOUT_FLEET_KNOWN_BUGS === '1' ? false : `gateway bug: ${text}`);
const BUG_IDLE_HEALTH = knownBug('GET /health reflects only the outcome of the last ledger write, so an idle replica ' +
  'reports 200 throughout a database outage (readiness keeps it in rotation, and its first calls are then answered ' +
  '200 without a durable record)');
const BUG_LOG_LINE_NOT_JSON = knownBug('the ledger_error access-log line puts the database error message into JSON ' +
  'unescaped (it contains double quotes), so the line is not JSON');
const missing = missingTools();
let fleet;
let skip = missing ?? false;

// Every call any client made: {id, phase, ok, status, startedAt, endedAt}.
const calls = [];

// Runs CONCURRENCY workers that each call the balancer in a loop until stop() is called;
// returns {stop} whose promise resolves when every worker finished its last call.
function startLoad(phase) {
  const client = new OpenAI({ baseURL: `${fleet.balancer.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
  let running = true;
  let sequence = 0;
  const worker = async (w) => {
    while (running) {
      const id = `fleet-${phase}-${w}-${sequence += 1}`;
      const call = { id, phase, ok: false, status: null, startedAt: Date.now(), endedAt: null };
      calls.push(call);
      try {
        const reply = await client.chat.completions.create(
          { model: 'auto', messages: [{ role: 'user', content: `call ${id}: say something short` }] },
          { headers: { 'x-request-id': id } });
        call.ok = typeof reply.choices?.[0]?.message?.content === 'string';
        call.status = 200;
      } catch (error) {
        call.status = error.status ?? 'connection';
      }
      call.endedAt = Date.now();
      if (!call.ok) await sleep(50);  // a failing balancer answers at once; do not spin
    }
  };
  const done = Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  return { stop: async () => { running = false; await done; } };
}

// The ledger's records by id (the request id each call sent).
function ledgerById() {
  const byId = new Map();
  for (const record of exportLedger(fleet.replicas[0].configFile)) {
    byId.set(record.id, [...(byId.get(record.id) ?? []), record]);
  }
  return byId;
}

function assertAcknowledgedExactlyOnce(phase) {
  const byId = ledgerById();
  const acknowledged = calls.filter((c) => c.ok && (!phase || c.phase === phase));
  assert.ok(acknowledged.length > 0, 'some calls completed');
  const missingIds = acknowledged.filter((c) => !byId.has(c.id)).map((c) => c.id);
  const duplicated = acknowledged.filter((c) => (byId.get(c.id)?.length ?? 0) > 1).map((c) => c.id);
  assert.deepEqual(missingIds, [], 'every completed call is in the ledger');
  assert.deepEqual(duplicated, [], 'no completed call is in the ledger twice');
  const sent = new Set(calls.map((c) => c.id));
  const strangers = [...byId.keys()].filter((id) => !sent.has(id));
  assert.deepEqual(strangers, [], 'the ledger holds no call nobody made');
  return byId;
}

async function assertStatsAgree() {
  const live = fleet.replicas.filter((r) => r.running);
  const answers = await Promise.all(live.map((r) => r.stats('?recent=5')));
  for (let i = 1; i < answers.length; i += 1) {
    assert.deepEqual(answers[i], answers[0], `replica ${live[i].index}'s /stats equals replica ${live[0].index}'s`);
  }
  return answers[0];
}

describe('a fleet of three replicas on one PostgreSQL behind HAProxy', { skip }, () => {
  before(async () => {
    // 40 ms upstream latency keeps calls in flight when a replica is killed.
    const started = await startFleet({ replicas: 3, mockArgs: ['--latency-ms', '40'] });
    if (started.skip) { skip = started.skip; return; }
    fleet = started;
    await fleet.balancer.waitStates('all replicas UP', (s) => Object.values(s).every((v) => v === 'UP') && Object.keys(s).length === 3);
  });

  after(async () => { await stopFleet(fleet); });

  it('spreads load over every replica, and every replica\'s /stats agrees', async (t) => {
    if (!fleet) return t.skip(skip);
    const load = startLoad('steady');
    await sleep(3_000);
    await load.stop();
    const steady = calls.filter((c) => c.phase === 'steady');
    assert.deepEqual(steady.filter((c) => !c.ok).map((c) => `${c.id}: ${c.status}`), [], 'every call succeeded');
    const byId = assertAcknowledgedExactlyOnce('steady');
    const instances = new Set(steady.map((c) => byId.get(c.id)[0].instance_id));
    const healthIds = await Promise.all(fleet.replicas.map(async (r) => (await r.health()).json.instance_id));
    assert.deepEqual([...instances].sort(), [...healthIds].sort(), 'each replica served calls');
    const stats = await assertStatsAgree();
    assert.equal(stats.total_calls, steady.length, '/stats counts every call of the fleet');
    assert.equal(stats.errors, 0);
  });

  it('SIGKILL of one replica under load: completed calls recorded once, routed around, the replica rejoins', async (t) => {
    if (!fleet) return t.skip(skip);
    const victim = fleet.replicas[1];
    const oldInstance = (await victim.health()).json.instance_id;
    const load = startLoad('kill');
    await sleep(1_000);
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    const deadAt = Date.now();  // the signal is delivered and the process reaped in between
    const down = await fleet.balancer.waitStates('r1 DOWN', (s) => s.r1.startsWith('DOWN'));
    const downAt = Date.now();
    assert.equal(down.r0, 'UP');
    assert.equal(down.r2, 'UP');
    await sleep(1_500);  // traffic while r1 is out of rotation
    await victim.start();
    await fleet.balancer.waitStates('r1 UP again', (s) => s.r1 === 'UP');
    const rejoinedAt = Date.now();
    await sleep(1_500);
    await load.stop();

    const phase = calls.filter((c) => c.phase === 'kill');
    const failed = phase.filter((c) => !c.ok);
    t.diagnostic(`kill phase: ${phase.length} calls, ${failed.length} failed (${failed.map((c) => c.status).join(', ')})`);
    // Only calls the killed replica held can fail: at most one per client, all in flight
    // when it died (HAProxy redispatches connections it refused later).
    assert.ok(failed.length <= CONCURRENCY, `at most ${CONCURRENCY} calls fail, got ${failed.length}`);
    for (const c of failed) {
      assert.ok(c.startedAt <= deadAt && c.endedAt >= killedAt, `${c.id} (${c.status}) failed though it was not in flight at the kill`);
    }
    const afterDown = phase.filter((c) => c.startedAt > downAt);
    assert.ok(afterDown.length > 0 && afterDown.every((c) => c.ok), 'every call after the balancer saw r1 down succeeded');

    const byId = assertAcknowledgedExactlyOnce('kill');
    const newInstance = (await victim.health()).json.instance_id;
    assert.notEqual(newInstance, oldInstance, 'the restarted replica is a new instance');
    const servedByNew = phase.filter((c) => c.ok && c.startedAt > rejoinedAt && byId.get(c.id)[0].instance_id === newInstance);
    assert.ok(servedByNew.length > 0, 'the restarted replica serves calls after it rejoined');
    const servedByOldAfterKill = phase.filter((c) => c.ok && c.startedAt > deadAt && byId.get(c.id)[0].instance_id === oldInstance);
    assert.deepEqual(servedByOldAfterKill.map((c) => c.id), [], 'nothing was served by the dead process');

    const stats = await assertStatsAgree();
    assert.equal(stats.total_calls, byId.size, '/stats counts exactly the ledger\'s records');
  });

  it('SIGTERM of one replica under load (a rolling restart): it drains, exits 0, and no call it read fails', async (t) => {
    if (!fleet) return t.skip(skip);
    const victim = fleet.replicas[2];
    const load = startLoad('term');
    await sleep(1_000);
    const exit = await victim.kill('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, 'exit 0 after draining');
    await fleet.balancer.waitStates('r2 DOWN', (s) => s.r2.startsWith('DOWN'));
    await victim.start();
    await fleet.balancer.waitStates('r2 UP again', (s) => s.r2 === 'UP');
    await sleep(1_000);
    await load.stop();
    const phase = calls.filter((c) => c.phase === 'term');
    t.diagnostic(`rolling restart: ${phase.length} calls`);
    // HTTP/1.1's keep-alive tear-down race (RFC 9112 §9.6): a request the balancer wrote on
    // an idle pooled connection just as the drained replica closed it was never read, so it
    // fails at the connection level and must not be in any ledger. The balancer does not
    // resend it (a request that reached a replica is never sent twice), so at most one such
    // call per balancer connection can fail; everything else — every HTTP answer — succeeds.
    const failed = phase.filter((c) => !c.ok);
    const byId = assertAcknowledgedExactlyOnce('term');
    const notConnectionLevel = failed.filter((c) => c.status !== 'connection' && c.status !== 502);
    assert.deepEqual(notConnectionLevel.map((c) => `${c.id}: ${c.status}`), [], 'no call failed with an answer');
    assert.deepEqual(failed.filter((c) => byId.has(c.id)).map((c) => c.id), [], 'a failed call was never read');
    assert.ok(failed.length <= 2, `at most the tear-down race failed: ${failed.map((c) => c.id)}`);
    await assertStatsAgree();
  });

  it('PostgreSQL stopped under load: replicas turn unhealthy, lose no acknowledged call, recover without restart', async (t) => {
    if (!fleet) return t.skip(skip);
    const pids = fleet.replicas.map((r) => r.process.child.pid);
    const load = startLoad('outage');
    await sleep(800);
    fleet.postgres.halt();
    const haltedAt = Date.now();
    let resumedAt;
    let unhealthyAt;
    try {
      // Each replica notices on its next ledger write; the balancer then stops sending to it.
      await waitFor('every replica answering 503 on /health', async () =>
        (await Promise.all(fleet.replicas.map((r) => r.health()))).every((h) => h.status === 503), { timeoutMs: 15_000 });
      unhealthyAt = Date.now();
      const health = await fleet.replicas[0].health();
      assert.equal(health.json.status, 'unhealthy');
      assert.match(health.json.reason, /ledger/);
      await fleet.balancer.waitStates('every replica DOWN in HAProxy', (s) => Object.values(s).every((v) => v.startsWith('DOWN')));
      await sleep(Math.max(0, 3_000 - (Date.now() - haltedAt)));  // a few seconds of outage
    } finally {
      fleet.postgres.resume();
      resumedAt = Date.now();
    }
    await waitFor('every replica healthy again', async () =>
      (await Promise.all(fleet.replicas.map((r) => r.health()))).every((h) => h.status === 200), { timeoutMs: 30_000 });
    await fleet.balancer.waitStates('every replica UP again', (s) => Object.values(s).every((v) => v === 'UP'), 20_000);
    const recoveredAt = Date.now();
    await sleep(1_500);
    await load.stop();

    assert.deepEqual(fleet.replicas.map((r) => r.process.child.pid), pids, 'no replica was restarted');
    assert.ok(fleet.replicas.every((r) => r.running));
    const phase = calls.filter((c) => c.phase === 'outage');
    t.diagnostic(`outage phase: ${phase.length} calls, ${phase.filter((c) => c.ok).length} completed, ` +
      `${phase.filter((c) => !c.ok && c.startedAt > haltedAt && c.startedAt < resumedAt).length} refused during the outage, ` +
      `unhealthy after ${unhealthyAt - haltedAt} ms, healthy ${recoveredAt - resumedAt} ms after PostgreSQL came back`);
    assert.ok(phase.some((c) => c.ok && c.endedAt < haltedAt), 'calls completed before the outage');
    assert.ok(phase.some((c) => !c.ok && c.startedAt > haltedAt && c.startedAt < resumedAt), 'calls were refused during the outage');
    assert.ok(phase.some((c) => c.ok && c.startedAt > recoveredAt), 'calls complete again after recovery');
    // Records written from the backlog after recovery land within a retry interval.
    await waitFor('the ledger holds every acknowledged call', () => {
      const byId = ledgerById();
      return phase.every((c) => !c.ok || byId.has(c.id));
    }, { timeoutMs: 10_000, everyMs: 500 }).catch(() => {});
    assertAcknowledgedExactlyOnce('outage');
    await assertStatsAgree();
  });

  it('an idle replica also reports the outage on /health', { skip: BUG_IDLE_HEALTH }, async (t) => {
    if (!fleet) return t.skip(skip);
    await waitFor('every replica healthy', async () =>
      (await Promise.all(fleet.replicas.map((r) => r.health()))).every((h) => h.status === 200), { timeoutMs: 15_000 });
    fleet.postgres.halt();
    try {
      // No calls: readiness must not wait for traffic to notice the database is gone.
      await waitFor('every idle replica answering 503 on /health', async () =>
        (await Promise.all(fleet.replicas.map((r) => r.health()))).every((h) => h.status === 503), { timeoutMs: 5_000 });
    } finally {
      fleet.postgres.resume();
    }
    await waitFor('every replica healthy again', async () =>
      (await Promise.all(fleet.replicas.map((r) => r.health()))).every((h) => h.status === 200), { timeoutMs: 30_000 });
  });

  it('no call is acknowledged before its record is durable, even during the outage', async (t) => {
    if (!fleet) return t.skip(skip);
    // docs/REFERENCE.md §6 (SPEC section 6): "A call whose complete response a client received is in the ledger,
    // even if the gateway is killed right after." The gateway logs a ledger_error line for
    // each record whose commit failed; none of those calls may have reached a client as a
    // completed call, or a SIGKILL before the database came back would have lost it.
    // (Read with a pattern: the line is not always valid JSON, see the next test.)
    const failedCommits = new Set(fleet.replicas.flatMap((r) =>
      [...r.stdout().matchAll(/\{"event":"ledger_error","request_id":"([^"]+)"/g)].map((m) => m[1])));
    const acknowledgedUndurable = calls.filter((c) => c.ok && failedCommits.has(c.id)).map((c) => c.id);
    t.diagnostic(`${failedCommits.size} ledger commits failed during the outage; ${acknowledgedUndurable.length} of those calls were answered 200`);
    assert.deepEqual(acknowledgedUndurable, [], 'calls answered 200 although their ledger commit had failed');
  });

  it('every access-log line a replica wrote is one JSON object', { skip: BUG_LOG_LINE_NOT_JSON }, (t) => {
    if (!fleet) return t.skip(skip);
    const broken = fleet.replicas.flatMap((r) => r.stdout().split('\n').filter((line) => line && !parseJsonOrNull(line)));
    assert.deepEqual(broken.slice(0, 3), [], `${broken.length} stdout lines are not JSON`);
  });
});
