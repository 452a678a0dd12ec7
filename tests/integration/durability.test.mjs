// docs/REFERENCE.md §6.1: "A call whose complete response a client received is in the
// ledger, even if the gateway is killed right after." First: concurrent calls, SIGKILL
// the moment the last response is read, restart on the same SQLite file, and find every
// call. Then the stronger form: SIGKILL at a random moment of a sustained mixed
// streaming/non-streaming load, several kill/restart cycles on one ledger (SQLite, and
// PostgreSQL when its server binaries are installed); after each restart every call that
// got a complete response is in the ledger exactly once, and nothing else is. The kill
// moments come from a seeded PRNG whose seed is printed (TURNOUT_DURABILITY_SEED=<seed>
// replays them).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import path from 'node:path';

import {
  REPO_ROOT, REQUEST_TIMEOUT_MS, makeTempDir, runTurnout, sleep, startGateway, startMock, stopAll,
} from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

const CALLS_PER_ROUND = 40;
const CONCURRENCY = 4;

let mock;
let dir;
let configFile;

before(async () => {
  mock = await startMock();
  dir = makeTempDir();
});
after(stopAll);

// Sends `count` calls, `CONCURRENCY` at a time; SIGKILLs the gateway as soon as the last
// complete response is in. Returns the request ids.
async function callsThenSigkill(gateway, prefix, count) {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      const response = await gateway.chat({ model: 'auto', messages: promptWithTokens(12 + (next % 5)) }, { 'x-request-id': id });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.headers.get('x-request-id'), id);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  gateway.handle.child.kill('SIGKILL');
  const exit = await gateway.handle.waitExit();
  assert.equal(exit.signal, 'SIGKILL');
  return ids;
}

describe('SIGKILL right after the responses', () => {
  const allIds = [];

  it('round 1: every answered call is in the ledger after SIGKILL', async () => {
    const gateway = await startGateway({ upstreamUrl: mock.baseUrl, dir });
    configFile = gateway.configFile;
    allIds.push(...await callsThenSigkill(gateway, 'kill-r1', CALLS_PER_ROUND));

    const cli = await runTurnout(['stats', '--config', configFile], { cwd: dir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).total_calls, allIds.length);

    const restarted = await startGateway({ configFile, dir });
    const stats = await restarted.stats(`?recent=${allIds.length}`);
    assert.equal(stats.total_calls, allIds.length);
    assert.deepEqual(stats.recent_calls.map((call) => call.id).sort(), [...allIds].sort());
    assert.equal(stats.errors, 0);

    // Round 2 on the restarted gateway: the recovered database keeps taking records.
    allIds.push(...await callsThenSigkill(restarted, 'kill-r2', CALLS_PER_ROUND));
  });

  it('round 2: a second SIGKILL loses nothing either', async () => {
    const cli = await runTurnout(['stats', '--config', configFile], { cwd: dir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).total_calls, allIds.length);

    const restarted = await startGateway({ configFile, dir });
    const stats = await restarted.stats(`?recent=${allIds.length}`);
    assert.equal(stats.total_calls, allIds.length);
    assert.deepEqual(stats.recent_calls.map((call) => call.id).sort(), [...allIds].sort());
    await restarted.stop();
  });
});

// ---------------------------------------------------------------------------------------
// SIGKILL at a random moment of a sustained load.

const KILL_CYCLES = 4;
const LOAD_CLIENTS = 24;
const KILL_AFTER_MS = { min: 300, max: 1500 };
const STREAM_SHARE = 0.5;
// /stats?recent= accepts at most 10000; every cycle re-reads all ids sent so far, so the
// ids of all cycles together must fit. The mock's latency floor keeps a cycle below its cap:
// 24 clients at >= 15 ms a call send at most 2400 calls in the longest cycle (1.5 s).
const MAX_RECENT = 10_000;
const MAX_CALLS_PER_CYCLE = Math.floor(MAX_RECENT / KILL_CYCLES);
// Per-call latency, so that the 24 clients always have calls in flight (some waiting for
// the upstream, some mid-stream) when the kill lands, and the call count stays bounded.
const MOCK_LOAD_ARGS = ['--latency-ms', '15', '--latency-jitter-ms', '20', '--chunk-delay-ms', '1'];
const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts/pg-test-cluster.sh');
const NO_POSTGRES = 3;  // pg-test-cluster.sh's status when the server binaries are missing

// mulberry32: a small seeded PRNG, uniform in [0, 1).
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function loadSeed() {
  const fromEnv = process.env.TURNOUT_DURABILITY_SEED;
  return fromEnv ? Number(fromEnv) >>> 0 : randomInt(0, 2 ** 32);
}

const LOAD_PROMPTS = [12, 17, 25, 40].map((tokens) => promptWithTokens(tokens));

// Everything random about one cycle, drawn up front so that a seed replays the same kill
// moment and gives call i the same shape whatever order the clients take them in.
function cyclePlan(random, prefix) {
  const killAfterMs = Math.round(KILL_AFTER_MS.min + random() * (KILL_AFTER_MS.max - KILL_AFTER_MS.min));
  const calls = Array.from({ length: MAX_CALLS_PER_CYCLE }, (_, i) => {
    const stream = random() < STREAM_SHARE;
    const body = { model: 'auto', messages: LOAD_PROMPTS[Math.floor(random() * LOAD_PROMPTS.length)] };
    if (stream) {
      body.stream = true;
      if (random() < 0.5) body.stream_options = { include_usage: true };
    }
    return { id: `${prefix}-${String(i).padStart(4, '0')}`, stream, body };
  });
  return { killAfterMs, calls };
}

function postChat(gateway, call) {
  return fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: gateway.authHeaders({ 'content-type': 'application/json', 'x-request-id': call.id }),
    body: JSON.stringify(call.body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
}

// The data of each complete SSE event (one followed by its blank line) in `text`.
function completeSseEvents(text) {
  const events = text.split(/\r\n\r\n|\n\n|\r\r/);
  events.pop();  // the text after the last blank line: an event still incomplete, or ''
  return events.map((event) => event.split(/\r\n|\n|\r/).filter((line) => line.startsWith('data:'))
    .map((line) => line.slice(5).replace(/^ /, '')).join('\n'));
}

// One call's outcome: {kind: 'complete'}; {kind: 'unknown'} when the connection broke
// before the response was complete (the gateway may or may not have recorded it); or
// {kind: 'unexpected', problem} for a complete response that is not a success, which the
// kill cannot explain (a dead gateway sends nothing).
async function oneCall(gateway, call) {
  let response;
  let text = '';
  let broken = false;
  try {
    response = await postChat(gateway, call);
    if (call.stream && response.status === 200) {
      // Read piece by piece: what arrived before a break still counts (a [DONE] read is a
      // complete stream even if the terminating chunk was lost to the kill).
      const decoder = new TextDecoder();
      for await (const bytes of response.body) text += decoder.decode(bytes, { stream: true });
    } else {
      text = await response.text();
    }
  } catch {
    broken = true;
  }
  const complete = call.stream ? completeSseEvents(text).includes('[DONE]') : !broken;
  if (!complete) return { kind: 'unknown' };
  if (response.status !== 200) return { kind: 'unexpected', problem: `status ${response.status}: ${text.slice(0, 200)}` };
  if (response.headers.get('x-request-id') !== call.id) {
    return { kind: 'unexpected', problem: `x-request-id ${response.headers.get('x-request-id')}` };
  }
  if (!call.stream && JSON.parse(text).object !== 'chat.completion') {
    return { kind: 'unexpected', problem: `body ${text.slice(0, 200)}` };
  }
  return { kind: 'complete' };
}

// Runs LOAD_CLIENTS clients, each sending the plan's calls one after the other, and
// SIGKILLs the gateway `plan.killAfterMs` into the load. Waits for every call to settle.
async function loadThenSigkill(gateway, plan) {
  const outcome = { sent: [], completed: [], unknown: [], unexpected: [], completedAfterKill: 0, exhausted: false };
  let killed = false;
  let next = 0;
  const client = async () => {
    while (!killed && next < plan.calls.length) {
      const call = plan.calls[next++];
      outcome.sent.push(call.id);
      const result = await oneCall(gateway, call);
      if (result.kind === 'complete') {
        outcome.completed.push(call.id);
        if (killed) outcome.completedAfterKill += 1;  // its bytes were written before the death
      } else if (result.kind === 'unknown') {
        outcome.unknown.push(call.id);
      } else {
        outcome.unexpected.push(`${call.id} (${call.stream ? 'stream' : 'plain'}): ${result.problem}`);
      }
    }
  };
  const load = Promise.all(Array.from({ length: LOAD_CLIENTS }, client));
  await sleep(plan.killAfterMs);
  outcome.exhausted = next >= plan.calls.length;
  killed = true;
  gateway.handle.child.kill('SIGKILL');
  const exit = await gateway.handle.waitExit();
  assert.equal(exit.signal, 'SIGKILL');
  await load;
  return outcome;
}

// What the ledger holds against what was sent and completed: every list empty and the
// total equal to the distinct ids when the guarantee holds.
async function ledgerDiscrepancies(gateway, sentIds, completedIds) {
  const stats = await gateway.stats(`?recent=${Math.min(MAX_RECENT, 2 * sentIds.size)}`);
  const recordsPerId = new Map();
  const statusPerId = new Map();
  for (const call of stats.recent_calls) {
    recordsPerId.set(call.id, (recordsPerId.get(call.id) ?? 0) + 1);
    statusPerId.set(call.id, call.status);
  }
  return {
    missing: [...completedIds].filter((id) => !recordsPerId.has(id)),
    duplicated: [...recordsPerId].filter(([, count]) => count > 1).map(([id, count]) => `${id} x${count}`),
    neverSent: [...recordsPerId.keys()].filter((id) => !sentIds.has(id)),
    // The client saw 200, so the record must say so (docs/REFERENCE.md §6.2: status as
    // the client saw it).
    completedNot200: [...completedIds].filter((id) => recordsPerId.has(id) && statusPerId.get(id) !== 200)
      .map((id) => `${id}: ${statusPerId.get(id)}`),
    totalCallsMinusDistinctIds: stats.total_calls - recordsPerId.size,
  };
}

const NO_DISCREPANCIES = { missing: [], duplicated: [], neverSent: [], completedNot200: [], totalCallsMinusDistinctIds: 0 };

// KILL_CYCLES times: load, SIGKILL at a random moment, restart on the same ledger, check.
// `firstGateway` starts the first instance; restarts reuse its config file.
async function killCycles(t, firstGateway, label) {
  const seed = loadSeed();
  const replay = `${label}, seed ${seed} (replay: TURNOUT_DURABILITY_SEED=${seed})`;
  t.diagnostic(replay);
  const random = seededRandom(seed);
  const sentIds = new Set();
  const completedIds = new Set();
  let unknownTotal = 0;
  let gateway = firstGateway;
  for (let cycle = 1; cycle <= KILL_CYCLES; cycle += 1) {
    const plan = cyclePlan(random, `sustained-c${cycle}`);
    const outcome = await loadThenSigkill(gateway, plan);
    outcome.sent.forEach((id) => sentIds.add(id));
    outcome.completed.forEach((id) => completedIds.add(id));
    unknownTotal += outcome.unknown.length;
    t.diagnostic(`cycle ${cycle}: kill at ${plan.killAfterMs} ms; sent ${outcome.sent.length}, complete `
      + `${outcome.completed.length} (${outcome.completedAfterKill} read after the kill), unknown ${outcome.unknown.length}`);
    assert.deepEqual(outcome.unexpected, [], `cycle ${cycle}: complete responses that are not successes; ${replay}`);
    assert.equal(outcome.exhausted, false, `cycle ${cycle}: the load ran out of calls before the kill; ${replay}`);

    gateway = await startGateway({ configFile: gateway.configFile, dir: gateway.dir });
    const found = await ledgerDiscrepancies(gateway, sentIds, completedIds);
    assert.deepEqual(found, NO_DISCREPANCIES, `cycle ${cycle}: ledger after restart; ${replay}`);
  }
  await gateway.stop();
  // The test means something only if calls completed and the kills caught calls in flight.
  assert.ok(completedIds.size > 0, `no call completed in any cycle; ${replay}`);
  assert.ok(unknownTotal > 0, `no kill caught a call in flight; ${replay}`);
}

describe('SIGKILL at a random moment during sustained load', () => {
  let loadMock;
  const clusterDir = makeTempDir('turnout-pg-durability-');

  before(async () => {
    loadMock = await startMock(MOCK_LOAD_ARGS);
  });
  after(() => {
    // pg-test-cluster.sh stop is harmless when no cluster was started in the directory.
    spawnSync(CLUSTER_SCRIPT, ['stop', clusterDir], { encoding: 'utf8', timeout: 60_000 });
  });

  it('SQLite: every completed call is in the ledger once after each restart', { timeout: 120_000 }, async (t) => {
    const ledgerDir = makeTempDir();
    const gateway = await startGateway({ upstreamUrl: loadMock.baseUrl, dir: ledgerDir });
    await killCycles(t, gateway, 'SQLite');
  });

  it('PostgreSQL: every completed call is in the ledger once after each restart', { timeout: 120_000 }, async (t) => {
    const started = spawnSync(CLUSTER_SCRIPT, ['start', clusterDir], { encoding: 'utf8', timeout: 120_000 });
    if (started.status === NO_POSTGRES) {
      t.skip('PostgreSQL server binaries are not installed');
      return;
    }
    assert.equal(started.status, 0, `pg-test-cluster.sh start failed: ${started.stderr}`);
    const ledgerUrl = started.stdout.trim().split('\n')[0];
    const gateway = await startGateway({
      upstreamUrl: loadMock.baseUrl,
      dir: makeTempDir(),
      configure: (config) => { config.ledger.url = ledgerUrl; },
    });
    await killCycles(t, gateway, 'PostgreSQL');
  });
});
