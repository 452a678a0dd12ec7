// Two gateway instances sharing one PostgreSQL ledger (docs/REFERENCE.md §5, §6): a
// private PostgreSQL cluster (scripts/pg-test-cluster.sh) holds the ledger of two
// `turnout serve` processes on the same mock upstream. Calls go to both, some of them
// concurrently; each instance's GET /stats must report the calls of both, and the stored
// records must carry the instance id of the gateway that served them. Skipped only when
// the PostgreSQL server binaries are not installed (`make test` installs them).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { REPO_ROOT, startGateway, startMock, stopAll } from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts/pg-test-cluster.sh');
const NO_POSTGRES = 3;  // the script's status when the server binaries are missing

function cluster(command, dir) {
  return spawnSync(CLUSTER_SCRIPT, [command, dir], { encoding: 'utf8', timeout: 120_000 });
}

// Started at load time, so the whole suite can be skipped when PostgreSQL is absent.
const clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnout-pg-it-'));
const started = cluster('start', clusterDir);
const skip = started.status === NO_POSTGRES ? 'PostgreSQL server binaries are not installed' : false;
const ledgerUrl = started.status === 0 ? started.stdout.trim().split('\n')[0] : null;

// Rows of a query against the shared ledger, through psql (tab-separated, no headers).
function sql(query) {
  const psql = spawnSync('psql', ['-X', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', query, ledgerUrl],
    { encoding: 'utf8', timeout: 30_000 });
  assert.equal(psql.status, 0, `psql failed: ${psql.stderr}`);
  return psql.stdout.trim().split('\n').filter(Boolean).map((line) => line.split('\t'));
}

let mock;
const gateways = [];
const served = [];  // {gateway: 0|1, id, model, status}

async function call(index, id, body) {
  const response = await gateways[index].chat(body, { 'x-request-id': id });
  served.push({ gateway: index, id, model: response.headers.get('x-turnout-model'), status: response.status });
  return response;
}

function expectedDistribution() {
  const distribution = {};
  for (const { model } of served) distribution[model] = (distribution[model] ?? 0) + 1;
  return distribution;
}

describe('two instances on one PostgreSQL ledger', { skip }, () => {
  before(async () => {
    assert.equal(started.status, 0, `pg-test-cluster.sh start failed: ${started.stderr}`);
    mock = await startMock();
    for (let i = 0; i < 2; i += 1) {
      gateways.push(await startGateway({
        upstreamUrl: mock.baseUrl,
        configure: (config) => { config.ledger.url = ledgerUrl; },
      }));
    }
  });

  after(async () => {
    await stopAll();
    cluster('stop', clusterDir);
  });

  it('both instances serve calls into the shared ledger', async () => {
    const short = promptWithTokens(15);
    const medium = promptWithTokens(1500);
    for (let i = 0; i < 3; i += 1) await call(0, `pg-a-simple-${i}`, { model: 'auto', messages: short });
    await call(0, 'pg-a-explicit', { model: 'gpt-4o', messages: short });
    for (let i = 0; i < 2; i += 1) await call(1, `pg-b-medium-${i}`, { model: 'auto', messages: medium });
    await call(1, 'pg-b-explicit', { model: 'gpt-4o', messages: short, max_tokens: 20 });
    // Then both at once: concurrent writers on the same tables.
    await Promise.all(Array.from({ length: 40 }, (_, i) =>
      call(i % 2, `pg-burst-${i}`, { model: 'auto', messages: i % 4 < 2 ? short : medium })));
    assert.deepEqual(served.filter((c) => c.status !== 200), [], 'every call succeeded');
  });

  it("each instance's /stats reports the calls of both", async () => {
    const distribution = expectedDistribution();
    for (const gateway of gateways) {
      const stats = await gateway.stats('?recent=100');
      assert.equal(stats.total_calls, served.length);
      assert.deepEqual(stats.model_distribution, distribution);
      assert.equal(stats.errors, 0);
      const recentIds = stats.recent_calls.map((c) => c.id).sort();
      assert.deepEqual(recentIds, served.map((c) => c.id).sort(), 'recent_calls lists the calls of both instances');
    }
    const [first, second] = await Promise.all(gateways.map((gateway) => gateway.stats()));
    assert.deepEqual(first, second, 'both instances give the same answer');
  });

  it('records carry the id of the instance that served them', async () => {
    const instanceIds = [];
    for (const gateway of gateways) {
      const health = await gateway.request('GET', '/health');
      assert.equal(health.status, 200, health.text);
      instanceIds.push(health.json.instance_id);
    }
    assert.notEqual(instanceIds[0], instanceIds[1], 'instances have distinct ids');
    const stored = new Map(sql('SELECT id, instance_id FROM calls'));
    assert.equal(stored.size, served.length, 'one record per call, none duplicated');
    for (const { gateway, id } of served) {
      assert.equal(stored.get(id), instanceIds[gateway], `record ${id}`);
    }
  });

  it('the schema version is recorded once', () => {
    const versions = sql('SELECT version FROM schema_version ORDER BY version').map(([version]) => Number(version));
    assert.deepEqual(versions, versions.map((_, i) => i + 1));
  });
});

after(() => {
  // Also when the suite was skipped or its before() failed: no cluster outlives the file.
  if (fs.existsSync(clusterDir)) cluster('stop', clusterDir);
  fs.rmSync(clusterDir, { recursive: true, force: true });
});
