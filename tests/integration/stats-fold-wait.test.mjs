// /stats waits for the ledger writer's fold without holding a blocking-pool thread
// (src/server/endpoints/fold_wait.*): governed admissions run on that pool (two threads),
// so a writer stuck on a locked database must not starve them. Through the real binary:
// an external sqlite3 process holds the SQLite ledger's write lock, a call's record keeps
// the writer waiting on it, more /stats requests than the pool has threads wait for a
// fold; a governed call (lease mode: admitted in process, no database round trip) must
// still reach the upstream while they wait, and once the lock lifts it completes and is
// in the ledger.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

import {
  baseConfig, chatWithKey, governanceClient, makeTempDir, sleep, startGateway, startMock, stopAll, writeConfig,
} from './lib/harness.mjs';

const BLOCKING_POOL_THREADS = 2;  // src/server/gateway.cpp
const PENDING_STATS = BLOCKING_POOL_THREADS * 2;
// The fold wait limit (src/server/endpoints/fold_wait.hpp kFoldWaitLimit) and the ledger
// writer's SQLite busy timeout (src/ledger/sqlite/backend.cpp kBusyTimeoutMs) are both 5 s:
// the lock is lifted at most REACH_LIMIT_MS after the writer is seen stuck, well before
// either answers the waits on its own.
const REACH_LIMIT_MS = 2_500;
const PROBE_ANSWER_MS = 400;   // a /stats not answered by then is waiting for the fold
const STUCK_WAIT_MS = 10_000;  // how long the record may take to reach the writer
const UPSTREAM_WAIT_MS = 10_000;

// An sqlite3 shell holding the database's write lock (BEGIN IMMEDIATE) until release().
async function holdWriteLock(database) {
  const shell = spawn('sqlite3', [database], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  shell.stdout.on('data', (chunk) => { output += chunk; });
  shell.stderr.on('data', (chunk) => { output += chunk; });
  const exited = new Promise((resolve) => shell.on('close', resolve));
  shell.stdin.write(".timeout 5000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n");
  for (let i = 0; i < 250 && !output.includes('locked'); i += 1) await sleep(20);
  assert.match(output, /locked/, `sqlite3 did not take the write lock: ${output}`);
  return {
    async release() {
      shell.stdin.end('ROLLBACK;\n.quit\n');
      await exited;
    },
  };
}

describe('/stats fold waits and governed admissions', () => {
  let dir;
  let mock;
  let gateway;
  let client;

  before(async () => {
    dir = makeTempDir('turnout-fold-wait-');
    mock = await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    // Lease mode with a long-lived lease and key cache: once the first call has taken the
    // lease, the key's calls are admitted without the (locked) database.
    config.governance = { mode: 'lease', lease_slice_usd: '0.5', lease_ttl_s: 120, lease_idle_s: 120, key_cache_ttl_s: 120 };
    const configFile = writeConfig(dir, config);
    client = governanceClient(configFile);
    gateway = await startGateway({ configFile, dir });
  });
  after(stopAll);

  // Polls the mock upstream until a chat call whose first message is `content` arrived.
  async function waitForUpstream(content, limitMs) {
    const until = Date.now() + limitMs;
    do {
      const seen = (await mock.chatRequests()).some((request) => request.json?.messages?.[0]?.content === content);
      if (seen) return true;
      await sleep(50);
    } while (Date.now() < until);
    return false;
  }

  it('admits a governed call while more /stats fold waits are pending than the pool has threads', async () => {
    const { value: key } = await client.turnoutJson(['keys', 'create', '--name', 'fold-wait', '--budget-usd', '5']);
    const warm = await chatWithKey(gateway, key.key);
    assert.equal(warm.status, 200, warm.text);  // the lease is taken, the key cached
    assert.equal((await gateway.request('GET', '/stats')).status, 200);

    const lock = await holdWriteLock(path.join(dir, 'ledger.db'));
    let released = false;
    try {
      // A call whose record the writer now waits to write: every fold waits behind it.
      // Synced on real conditions, not sleeps: the upstream has seen the call, then a
      // probe /stats that does not answer at once shows the writer stuck on the record
      // (before that, a fold with nothing new answers without the write lock).
      const blocked = chatWithKey(gateway, key.key, { messages: [{ role: 'user', content: 'blocked record' }] });
      assert.ok(await waitForUpstream('blocked record', UPSTREAM_WAIT_MS), 'the blocked call reached the upstream');

      const stats = [];
      const settled = [];
      const answers = [];
      const sendStats = () => {
        const i = stats.length;
        settled.push(false);
        answers.push(null);
        stats.push(gateway.request('GET', '/stats').then((response) => {
          settled[i] = true;
          answers[i] = `${response.status} ${response.text}`;
          return response;
        }));
        return stats[i];
      };
      const earlyAnswers = () => answers.filter(Boolean).join(' | ');

      // The writer's SQLite busy timeout and each fold wait run for 5 s from here at most.
      let stuckAt = null;
      const probeUntil = Date.now() + STUCK_WAIT_MS;
      while (stuckAt === null && Date.now() < probeUntil) {
        const probe = sendStats();
        const answered = await Promise.race([probe.then(() => true), sleep(PROBE_ANSWER_MS).then(() => false)]);
        if (!answered) stuckAt = Date.now() - PROBE_ANSWER_MS;
        else await sleep(50);
      }
      assert.ok(stuckAt !== null, `a /stats waits for the fold once the record is queued; answers: ${earlyAnswers()}`);
      const probes = stats.length;  // every probe but the last one answered
      for (let i = 0; i < PENDING_STATS; i += 1) sendStats();
      const waiting = () => settled.slice(probes - 1).every((done) => !done);
      await sleep(200);
      assert.ok(waiting(), `the /stats requests wait for the fold; answers: ${earlyAnswers()}`);

      const governed = chatWithKey(gateway, key.key, { messages: [{ role: 'user', content: 'admitted while folds wait' }] },
        { 'x-request-id': 'fold-wait-governed' });
      const reached = await waitForUpstream('admitted while folds wait', stuckAt + REACH_LIMIT_MS - Date.now());
      assert.ok(reached, 'the governed call reached the upstream: its admission did not wait behind the fold waits');
      assert.ok(waiting(), `the /stats requests were still waiting when it was admitted; answers: ${earlyAnswers()}`);

      await lock.release();
      released = true;
      const answer = await governed;
      assert.equal(answer.status, 200, answer.text);
      assert.equal((await blocked).status, 200);
      for (const response of await Promise.all(stats)) assert.equal(response.status, 200, response.text);

      let recorded = false;
      for (let i = 0; i < 50 && !recorded; i += 1) {
        recorded = (await client.ledgerLines(key.id)).some((line) => JSON.parse(line).id === 'fold-wait-governed');
        if (!recorded) await sleep(100);
      }
      assert.ok(recorded, 'the governed call is in the ledger');
    } finally {
      if (!released) await lock.release();
    }
  });
});
