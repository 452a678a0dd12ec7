// The admin HTTP API through the real binary (issue 17; SPEC §8), on SQLite and on
// PostgreSQL: /admin/v1/keys and /admin/v1/teams behind governance.admin_key only (client
// and virtual keys refused), the whole key lifecycle (create, list, show with usage,
// update, revoke, rotate) as the chat path sees it, 400s naming the field, every write in
// the audit table as "admin", and no secret anywhere but the create/rotate answers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { REPO_ROOT, baseConfig, makeTempDir, openAIErrorProblems, runTurnout, startGateway, startMock, stopAll, writeConfig } from './lib/harness.mjs';

const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts/pg-test-cluster.sh');
const NO_POSTGRES = 3;  // the script's status when the server binaries are missing
const clusterDir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnout-admin-pg-'));
const pgStarted = spawnSync(CLUSTER_SCRIPT, ['start', clusterDir], { encoding: 'utf8', timeout: 120_000 });
const pgUrl = pgStarted.status === 0 ? pgStarted.stdout.trim().split('\n')[0] : null;
const pgSkip = pgStarted.status === NO_POSTGRES ? 'PostgreSQL server binaries are not installed' : false;

const ADMIN_KEY = 'adm-test-5b0e8c2f41d7a96e3c18';
const CLIENT_KEY = 'sk-gateway-test-0c4e9a';

let mock;

for (const [engine, skip] of [['sqlite', false], ['postgresql', pgSkip]]) {
describe(`admin API on ${engine}`, { skip }, () => {
  let dir;
  let configFile;
  let gateway;
  let noAdmin;  // a second gateway on the same ledger, without an admin key
  const shown = [];  // every whole virtual key the API answered with

  const admin = (method, urlPath, json, key = ADMIN_KEY) =>
    gateway.request(method, urlPath, { json, headers: key ? { authorization: `Bearer ${key}` } : {} });
  const chat = (key) => gateway.request('POST', '/v1/chat/completions', {
    json: { model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 20 },
    headers: { authorization: `Bearer ${key}` },
  });
  const created = async (response) => {
    assert.ok([200, 201].includes(response.status), response.text);
    if (response.json.key) shown.push(response.json.key);
    return response.json;
  };
  const auditRows = () => {
    const query = "SELECT actor || '|' || action || '|' || target || '|' || COALESCE(before_json, '') || '|' || "
      + "COALESCE(after_json, '') FROM gov_audit ORDER BY seq";
    const text = engine === 'sqlite'
      ? execFileSync('sqlite3', [path.join(dir, 'ledger.db'), query]).toString()
      : execFileSync('psql', ['-X', '-A', '-t', '-c', query, pgUrl]).toString();
    return text.split('\n').filter(Boolean);
  };

  before(async () => {
    dir = makeTempDir('turnout-admin-');
    mock ??= await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    if (engine === 'postgresql') {
      assert.equal(pgStarted.status, 0, `pg-test-cluster.sh start failed: ${pgStarted.stderr}`);
      config.ledger.url = pgUrl;
    }
    config.server.api_keys = [CLIENT_KEY];
    config.governance = { key_cache_ttl_s: 30, admin_key: ADMIN_KEY };  // a long TTL: revocation must evict
    configFile = writeConfig(dir, config);
    gateway = await startGateway({ configFile, dir });
    delete config.governance.admin_key;
    noAdmin = await startGateway({ configFile: writeConfig(dir, config, 'no-admin.yaml'), dir });
  });
  after(async () => {
    await gateway?.stop();
    await noAdmin?.stop();
  });

  it('refuses every credential but the admin key with 401 in the OpenAI shape', async () => {
    const virtual = await created(await admin('POST', '/admin/v1/keys', { name: 'not-an-admin' }));
    for (const key of [null, CLIENT_KEY, virtual.key, 'adm-wrong', `${ADMIN_KEY}x`, ADMIN_KEY.slice(0, -1)]) {
      for (const [method, url] of [['GET', '/admin/v1/keys'], ['POST', '/admin/v1/teams'], ['GET', `/admin/v1/keys/${virtual.id}`]]) {
        const refused = await admin(method, url, method === 'POST' ? { name: 'sneaky' } : undefined, key);
        assert.equal(refused.status, 401, `${method} ${url} with ${key}: ${refused.text}`);
        assert.deepEqual(openAIErrorProblems(refused.json), []);
        assert.equal(refused.json.error.code, 'invalid_api_key');
      }
    }
    const teams = await admin('GET', '/admin/v1/teams');
    assert.ok(!teams.json.some((t) => t.id === 'sneaky'), 'a refused write changed nothing');
  });

  it('is off (404 admin_api_disabled) without governance.admin_key, even with the key another replica has', async () => {
    const off = await noAdmin.request('GET', '/admin/v1/keys', { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(off.status, 404, off.text);
    assert.equal(off.json.error.code, 'admin_api_disabled');
  });

  it('runs the whole key lifecycle, as the chat path sees it', async () => {
    const team = await created(await admin('POST', '/admin/v1/teams', { name: 'payments', budget_usd: 100, rpm: 1000 }));
    assert.equal(team.id, 'payments');
    assert.equal(team.usage.remaining_usd, 100);

    const make = await admin('POST', '/admin/v1/keys', {
      name: 'checkout', team: 'payments', budget_usd: 0.01, budget_period: 'day', timezone: 'Europe/Berlin',
      models: ['gpt-4o'], expires_at: '2099-01-01T00:00:00Z',
    });
    assert.equal(make.status, 201, make.text);
    const key = await created(make);
    assert.match(key.key, /^tk-[0-9a-f]{16}-[0-9a-f]{64}$/);
    assert.ok(make.text.includes('"budget_usd":0.01'), `money stays exact: ${make.text}`);
    assert.equal(key.team, 'payments');
    assert.equal(key.expires_at, '2099-01-01T00:00:00Z');
    for (const field of ['period_start', 'spent_usd', 'held_usd', 'remaining_usd']) assert.ok(field in key.usage, field);

    assert.equal((await chat(key.key)).status, 200);
    const listed = await admin('GET', '/admin/v1/keys');
    assert.equal(listed.status, 200);
    assert.ok(listed.json.some((k) => k.id === key.id && k.key === undefined));
    const show = await admin('GET', `/admin/v1/keys/${key.id}`);
    assert.equal(show.status, 200, show.text);
    assert.equal(show.json.key, undefined);
    assert.ok(show.json.usage.spent_usd > 0, `the call was charged: ${show.text}`);
    assert.equal(show.json.usage.period_start.length > 0, true);

    const patched = await admin('PATCH', `/admin/v1/keys/${key.id}`, { rpm: 50, models: null, name: 'checkout-v2' });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.rpm, 50);
    assert.equal(patched.json.models, null);
    assert.equal(patched.json.name, 'checkout-v2');
    assert.equal(patched.json.budget_usd, 0.01, 'fields not given stay');

    const rotated = await created(await admin('POST', `/admin/v1/keys/${key.id}/rotate`));
    assert.equal(rotated.id, key.id);
    assert.notEqual(rotated.key, key.key);
    const old = await chat(key.key);
    assert.equal(old.status, 401, 'the old secret is refused at once');
    assert.equal(old.json.error.code, 'invalid_api_key');
    assert.equal((await chat(rotated.key)).status, 200, 'the new secret works');

    const revoked = await admin('POST', `/admin/v1/keys/${key.id}/revoke`);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.revoked, true);
    const refused = await chat(rotated.key);
    assert.equal(refused.status, 401, 'a revoked key is refused on the chat path');
    assert.equal(refused.json.error.code, 'invalid_api_key');

    const teamPatched = await admin('PATCH', '/admin/v1/teams/payments', { budget_usd: '250.5', rpm: null });
    assert.equal(teamPatched.status, 200, teamPatched.text);
    assert.equal(teamPatched.json.budget_usd, 250.5);
    assert.equal(teamPatched.json.rpm, null);
    const teamShown = await admin('GET', '/admin/v1/teams/payments');
    assert.equal(teamShown.json.usage.remaining_usd, 250.5 - teamShown.json.usage.spent_usd);
    assert.ok((await admin('GET', '/admin/v1/teams')).json.some((t) => t.id === 'payments'));

    const cli = await runTurnout(['keys', 'show', key.id, '--config', configFile]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).name, 'checkout-v2', 'the CLI sees what the API wrote');
  });

  it('answers bad input with 400 naming the field, and unknown ids with 404', async () => {
    for (const [method, url, body, param] of [
      ['POST', '/admin/v1/keys', { name: 'x', rpm: -1 }, 'rpm'],
      ['POST', '/admin/v1/keys', { name: 'x', rpm: 1.5 }, 'rpm'],
      ['POST', '/admin/v1/keys', { name: 'x', tpm: '10' }, 'tpm'],
      ['POST', '/admin/v1/keys', { name: 'x', budget_usd: 'lots' }, 'budget_usd'],
      ['POST', '/admin/v1/keys', { name: 'x', budget_usd: -2 }, 'budget_usd'],
      ['POST', '/admin/v1/keys', { name: 'x', budget_period: 'fortnight' }, 'budget_period'],
      ['POST', '/admin/v1/keys', { name: 'x', timezone: 'Mars/Olympus' }, 'timezone'],
      ['POST', '/admin/v1/keys', { name: 'x', team: 'nobody' }, 'team'],
      ['POST', '/admin/v1/keys', { name: 'x', models: 'gpt-4o' }, 'models'],
      ['POST', '/admin/v1/keys', { name: 'x', expires_at: 'tomorrow' }, 'expires_at'],
      ['POST', '/admin/v1/keys', { name: 'x', colour: 'red' }, 'colour'],
      ['POST', '/admin/v1/keys', { budget_usd: 1 }, 'name'],
      ['POST', '/admin/v1/teams', { name: 'bad team!' }, 'name'],
      ['POST', '/admin/v1/teams', { name: 'ok', team: 'nested' }, 'team'],
      ['PATCH', '/admin/v1/teams/payments', { max_parallel: 0 }, 'max_parallel'],
    ]) {
      const bad = await admin(method, url, body);
      assert.equal(bad.status, 400, `${JSON.stringify(body)}: ${bad.text}`);
      assert.deepEqual(openAIErrorProblems(bad.json), []);
      assert.equal(bad.json.error.param, param, `${JSON.stringify(body)}: ${bad.text}`);
    }
    const notJson = await gateway.request('POST', '/admin/v1/keys', {
      body: '{"name": "x"} trailing', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    });
    assert.equal(notJson.status, 400, notJson.text);
    assert.equal(notJson.json.error.code, 'invalid_json');
    for (const [method, url] of [['GET', '/admin/v1/keys/ffffffffffffffff'], ['POST', '/admin/v1/keys/ffffffffffffffff/revoke'],
      ['PATCH', '/admin/v1/teams/nobody'], ['GET', '/admin/v1/teams/nobody']]) {
      const missing = await admin(method, url, method === 'PATCH' ? { rpm: 5 } : undefined);
      assert.equal(missing.status, 404, `${method} ${url}: ${missing.text}`);
      assert.deepEqual(openAIErrorProblems(missing.json), []);
    }
    const taken = await admin('POST', '/admin/v1/teams', { name: 'payments' });
    assert.equal(taken.status, 409, taken.text);
    const wrongMethod = await admin('DELETE', '/admin/v1/keys/ffffffffffffffff');
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'GET, PATCH');
    assert.equal((await admin('GET', '/admin/v1/keys/a/b')).status, 404, '{id} takes one segment');
    assert.equal((await gateway.request('GET', '/health')).status, 200, 'the gateway stays healthy');
  });

  it('audits every admin write as "admin", never with a secret', async () => {
    const rows = auditRows().filter((row) => row.startsWith('admin|'));
    const actions = new Set(rows.map((row) => row.split('|')[1]));
    for (const action of ['team.create', 'team.update', 'key.create', 'key.update', 'key.rotate', 'key.revoke'])
      assert.ok(actions.has(action), `${action} audited: ${[...actions]}`);
    const update = rows.find((row) => row.split('|')[1] === 'key.update');
    assert.ok(update.includes('"rpm":null') && update.includes('"rpm":50'), `before and after: ${update}`);
    assert.ok(!rows.some((row) => row.includes('sneaky')), 'refused writes are not audited');
  });

  it('shows a secret only in the create and rotate answers', async () => {
    assert.ok(shown.length >= 3);
    const exported = await runTurnout(['ledger', 'export', '--format', 'jsonl', '--config', configFile]);
    assert.equal(exported.code, 0, exported.stderr);
    const haystacks = {
      ledger: exported.stdout,
      audit: auditRows().join('\n'),
      log: [gateway, noAdmin].map((g) => g.handle.stdoutLines.join('\n') + g.handle.stderr).join('\n'),
      list: (await admin('GET', '/admin/v1/keys')).text,
    };
    for (const whole of shown) {
      const secret = whole.split('-')[2];
      for (const [where, text] of Object.entries(haystacks)) assert.ok(!text.includes(secret), `a secret in the ${where}`);
    }
    for (const [where, text] of Object.entries(haystacks)) assert.ok(!text.includes(ADMIN_KEY), `the admin key in the ${where}`);
  });
});
}

after(async () => {
  await stopAll();
  spawnSync(CLUSTER_SCRIPT, ['stop', clusterDir], { encoding: 'utf8', timeout: 120_000 });
});
