// No response before its record is durable, whatever the ledger database's state (issue
// 21, item 10), on a real PostgreSQL ledger (scripts/pg-test-cluster.sh; skipped only when
// the server binaries are not installed):
// - PostgreSQL stopped while a call waits for the upstream (mock latency 2 s): the call
//   gets its 200 once its record is in the local spool; the gateway is SIGKILLed; with
//   PostgreSQL back, the restarted gateway drains the spool: the call's row is there, once.
// - PostgreSQL away and the spool unwritable: the answer is withheld (503
//   ledger_unavailable), /health is 503, and new calls are refused before the upstream.
// Also (item 9): two instances sharing the ledger give a gateway key the same id, and it
// is not the key's bare SHA-256.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  REPO_ROOT, makeTempDir, runTurnout, sleep, startGateway, startMock, stopAll, withTimeout,
} from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts/pg-test-cluster.sh');
const NO_POSTGRES = 3;  // the script's status when the server binaries are missing

function cluster(command, dir) {
  return spawnSync(CLUSTER_SCRIPT, [command, dir], { encoding: 'utf8', timeout: 120_000 });
}

const clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnout-pg-spool-'));
const started = cluster('start', clusterDir);
const skip = started.status === NO_POSTGRES ? 'PostgreSQL server binaries are not installed' : false;
const ledgerUrl = started.status === 0 ? started.stdout.trim().split('\n')[0] : null;

function halt() {
  const halted = cluster('halt', clusterDir);
  assert.equal(halted.status, 0, `pg-test-cluster.sh halt: ${halted.stderr}`);
}
function resume() {
  const resumed = cluster('resume', clusterDir);
  assert.equal(resumed.status, 0, `pg-test-cluster.sh resume: ${resumed.stderr}`);
}

// Rows of a query against the ledger, through psql (tab-separated, no headers).
function sql(query) {
  const psql = spawnSync('psql', ['-X', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', query, ledgerUrl],
    { encoding: 'utf8', timeout: 30_000 });
  assert.equal(psql.status, 0, `psql failed: ${psql.stderr}`);
  return psql.stdout.trim().split('\n').filter(Boolean).map((line) => line.split('\t'));
}

async function health(gateway) {
  return gateway.request('GET', '/health', { timeoutMs: 5000 });
}

let mock;

describe('PostgreSQL away: the local spool', { skip }, () => {
  before(async () => {
    assert.equal(started.status, 0, `pg-test-cluster.sh start failed: ${started.stderr}`);
    mock = await startMock(['--latency-ms', '2000']);
  });
  after(async () => {
    await stopAll();
    cluster('stop', clusterDir);
  });

  it('a 200 given while PostgreSQL was away survives SIGKILL and is in the ledger once', { timeout: 120_000 }, async () => {
    const dir = makeTempDir();
    let gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      dir,
      configure: (config) => { config.ledger.url = ledgerUrl; },
    });
    const body = { model: 'auto', messages: promptWithTokens(12) };
    try {
      const inFlight = gateway.chat(body, { 'x-request-id': 'spooled-in-flight' });
      await sleep(500);
      halt();  // mid-call: the upstream answers 1.5 s from now
      const response = await inFlight;
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json.object, 'chat.completion');

      // The spool took the record: the gateway keeps serving, and says so.
      const degraded = await health(gateway);
      assert.equal(degraded.status, 200, degraded.text);
      assert.equal(degraded.json.spooled, 1, degraded.text);
      assert.match(degraded.json.ledger, /spool/);
      const second = await gateway.chat(body, { 'x-request-id': 'spooled-while-away' });
      assert.equal(second.status, 200, second.text);
      assert.ok(fs.existsSync(path.join(dir, 'turnout-spool.db')), 'the spool is beside the working directory');

      gateway.handle.child.kill('SIGKILL');
      assert.equal((await gateway.handle.waitExit()).signal, 'SIGKILL');
    } finally {
      resume();
    }
    assert.deepEqual(sql("SELECT count(*) FROM calls WHERE id LIKE 'spooled-%'"), [['0']], 'not in PostgreSQL yet');

    // The restart drains what the killed instance spooled.
    gateway = await startGateway({ configFile: gateway.configFile, dir });
    await withTimeout((async () => {
      while ((await health(gateway)).json.spooled !== 0) await sleep(100);
    })(), 20_000, 'the spool drained');
    const rows = sql("SELECT id, status FROM calls WHERE id LIKE 'spooled-%' ORDER BY id");
    assert.deepEqual(rows, [['spooled-in-flight', '200'], ['spooled-while-away', '200']], 'each call exactly once');
    const exported = await runTurnout(['ledger', 'export', '--format', 'jsonl', '--config', gateway.configFile], { cwd: dir });
    assert.equal(exported.code, 0, exported.stderr);
    const ids = exported.stdout.trim().split('\n').map((line) => JSON.parse(line).id).filter((id) => id.startsWith('spooled-'));
    assert.deepEqual(ids.sort(), ['spooled-in-flight', 'spooled-while-away']);
    await gateway.stop();
  });

  it('with the spool unwritable too, the answer is withheld and new calls are refused before the upstream', { timeout: 120_000 }, async () => {
    const dir = makeTempDir();
    const gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      dir,
      configure: (config) => {
        config.ledger.url = ledgerUrl;
        config.ledger.spool_path = path.join(dir, 'no-such-dir', 'spool.db');
      },
    });
    const body = { model: 'auto', messages: promptWithTokens(12) };
    try {
      const inFlight = gateway.chat(body, { 'x-request-id': 'not-durable' });
      await sleep(500);
      halt();
      const response = await inFlight;
      assert.equal(response.status, 503, response.text);
      assert.equal(response.json.error.code, 'ledger_unavailable');
      assert.ok(!response.text.includes('chat.completion'), 'the answer is not given without a durable record');

      const sick = await health(gateway);
      assert.equal(sick.status, 503, sick.text);
      await mock.clearRequests();
      const refused = await gateway.chat(body, { 'x-request-id': 'refused' });
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.json.error.code, 'ledger_unavailable');
      assert.deepEqual(await mock.chatRequests(), [], 'nothing reached the upstream');
    } finally {
      resume();
    }
    // The record kept in memory reaches PostgreSQL once it is back, and health recovers.
    await withTimeout((async () => {
      while ((await health(gateway)).status !== 200) await sleep(100);
    })(), 20_000, 'healthy again');
    await gateway.stop();
  });

  it('a gateway key has one id on every instance sharing the ledger, and not its bare SHA-256', async () => {
    const key = 'tk-shared-key-9f8e7d';
    const ids = [];
    for (let i = 0; i < 2; i += 1) {
      const gateway = await startGateway({
        upstreamUrl: mock.baseUrl,
        configure: (config) => {
          config.ledger.url = ledgerUrl;
          config.server.api_keys = [key];
        },
      });
      gateway.apiKey = key;
      const response = await gateway.chat({ model: 'auto', messages: promptWithTokens(12) }, { 'x-request-id': `key-id-${i}` });
      assert.equal(response.status, 200, response.text);
      await gateway.stop();
    }
    for (const [id, keyId] of sql("SELECT id, client_key_id FROM calls WHERE id LIKE 'key-id-%' ORDER BY id")) {
      assert.match(keyId, /^key_[0-9a-f]{12}$/, id);
      ids.push(keyId);
    }
    assert.equal(ids.length, 2);
    assert.equal(ids[0], ids[1], 'stable across instances and restarts');
    const bareHash = `key_${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
    assert.notEqual(ids[0], bareHash, 'an unsalted hash lets anyone confirm a guessed key offline');
  });
});
