// Governance guarantees across replicas (issue 17; SPEC §8), through the real binary: four
// `turnout serve` processes on one private PostgreSQL database (then two on one SQLite
// file), the mock as the provider.
//   - crash safety: half the replicas SIGKILLed mid-stream leave their holds; once the holds
//     expire they are charged in full, so spent = ledger + expired holds, held = live holds;
//   - a shared rpm of 60: 1,000 requests in one second over the replicas admit exactly 60;
//   - the official `openai` SDK retries an rpm refusal after `retry-after-ms`, once;
//   - a key revoked through the admin API on one replica is refused by the others within
//     `key_cache_ttl_s` (1 s);
//   - PostgreSQL away: limited keys fail closed (503 governance_unavailable), unlimited
//     keys keep flowing, and every replica admits again once the database is back;
//   - after all of it (keys created, rotated, revoked, the admin key used, refusals), no
//     secret appears in any log line, the ledger export, any governance row, /metrics,
//     /stats or an error body.
// The crash scenario runs first and is checked last: its holds live for the call's
// timeout (4 s) plus the gateway's one-minute margin, and the other tests fill that wait.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import OpenAI from 'openai';

import {
  baseConfig, chatWithKey, GOVERNANCE_CHAT as CHAT, governanceClient, ledgerSql, makeTempDir, openAIErrorProblems,
  openChatStream, picoPerToken, rawUsd, runTurnout, sleep, startGateway, startMock, startPgCluster, stopAll,
  TEST_MODELS, UPSTREAM_KEY, writeConfig,
} from './lib/harness.mjs';

const pg = startPgCluster('turnout-govrep-pg-');

const ADMIN_KEY = 'adm-replicas-test-93c5e07b1d2a48f6';
const STATIC_KEY = 'sk-static-replicas-test-4e71a0';
const CALL_TIMEOUT_S = 4;             // providers.openai.timeout_s: a hold lives this + 60 s
const HOLD_MARGIN_MS = 60_000;        // src/server/admit_call.cpp kHoldMargin
const KEY_CACHE_TTL_MS = 1_000;       // governance.key_cache_ttl_s: 1

const PICO = 10n ** 12n;

let dir;
let mock;
let configFile;
let gateways = [];
const everyGateway = [];       // killed ones too: their logs are searched for secrets
const secrets = new Set();     // whole virtual keys shown, and their secret parts
const errorBodies = [];        // every non-2xx body a client received
const retired = [];            // whole keys that no longer work (rotated away)

function remember(answer) {
  if (answer.status >= 300) errorBodies.push(answer.text);
  return answer;
}

function noteKey(whole) {
  secrets.add(whole);
  secrets.add(whole.split('-')[2]);
}

let turnoutJson;
let ledgerLines;
let ledgerTotal;

async function admin(gateway, method, urlPath, json, key = ADMIN_KEY) {
  const answer = remember(await gateway.request(method, urlPath, { json, headers: { authorization: `Bearer ${key}` } }));
  if (answer.json?.key) noteKey(answer.json.key);
  return answer;
}

async function chat(gateway, key, body = {}) {
  return remember(await chatWithKey(gateway, key, body));
}

// A burst client: node:http with the body serialised once, so 1,000 requests leave within
// a second even on a loaded machine (fetch's per-request set-up is several times slower).
const burstAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
function burstPost(gateway, urlPath, body, key) {
  return new Promise((resolve) => {
    const request = http.request({
      host: '127.0.0.1', port: gateway.port, path: urlPath, method: 'POST', agent: burstAgent,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        remember({ status: response.statusCode, text });
        resolve({ status: response.statusCode, headers: response.headers, text, json });
      });
    });
    request.setTimeout(30_000, () => request.destroy(new Error('burst request timed out')));
    request.on('error', (error) => resolve({ status: 0, headers: {}, text: String(error), json: null }));
    request.end(body);
  });
}

let engine;
// One query on the ledger database this suite's gateways share, its rows as `a|b` lines.
const sql = (query) => ledgerSql(engine === 'sqlite' ? path.join(dir, 'ledger.db') : pg.url, query);
let replicas;

// Returns once at least `needMs` ms are left in the current wall-clock minute (waiting
// for the next minute to start if fewer are).
async function atMinuteStartIfNeeded(needMs) {
  const intoMinute = Date.now() % 60_000;
  if (60_000 - intoMinute < needMs) await sleep(60_000 - intoMinute + 300);
}

// PostgreSQL: four gateways on one database. SQLite: two on one file (the SDK's retry does
// not depend on the engine and its minute-long wait runs once, on PostgreSQL).
for (const [engineName, replicaCount, skip] of [['postgresql', 4, pg.skip], ['sqlite', 2, false]]) {
describe(`governance across ${replicaCount} replicas on ${engineName}`, { skip }, () => {
  before(async () => {
    engine = engineName;
    replicas = replicaCount;
    gateways = [];
    everyGateway.length = 0;
    secrets.clear();
    errorBodies.length = 0;
    retired.length = 0;
    dir = makeTempDir('turnout-govrep-');
    mock ??= await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    if (engine === 'postgresql') {
      pg.assertStarted();
      config.ledger.url = pg.url;
    }
    config.server.api_keys = [STATIC_KEY];
    config.providers.openai.timeout_s = CALL_TIMEOUT_S;
    config.governance = { admin_key: ADMIN_KEY, key_cache_ttl_s: KEY_CACHE_TTL_MS / 1000 };
    configFile = writeConfig(dir, config);
    ({ turnoutJson, ledgerLines, ledgerTotal } = governanceClient(configFile, { onKey: noteKey }));
    for (let i = 0; i < replicas; i += 1) gateways.push(await startGateway({ configFile, dir }));
    everyGateway.push(...gateways);
  });
  after(async () => {
    for (const gateway of gateways) await gateway.stop();
  });

  // Set by the first test, checked by the one before last.
  const crash = { key: null, stranded: 0, holdPico: 0n, heldSince: 0 };

  it('crash: half the replicas SIGKILLed mid-stream leave exactly their holds, nothing settled twice', async () => {
    const created = await admin(gateways[0], 'POST', '/admin/v1/keys',
      { name: 'crash', budget_usd: '1', budget_period: 'lifetime' });
    assert.equal(created.status, 201, created.text);
    crash.key = created.json;
    // 8 chunks 100 ms apart: each stream stays open ~0.8 s, well inside the 4 s timeout
    // (a loaded CI machine or the ASan build must not cut the survivors' streams).
    await mock.configure({ chunk_delay_ms: 100 });
    try {
      const perReplica = 3;
      const streams = [];
      for (let i = 0; i < perReplica * replicas; i += 1) streams.push(openChatStream(gateways[i % replicas], crash.key.key));
      const opened = await Promise.all(streams);
      crash.heldSince = Date.now();
      const survivors = replicas / 2;
      const doomed = gateways.slice(survivors);
      for (const gateway of doomed) await gateway.stop('SIGKILL');
      const endings = await Promise.all(opened.map((s) => s.ended));
      // Two fresh replicas take the killed ones' places for the tests that follow (first,
      // so that a failure below does not take the later tests down with it).
      gateways = gateways.slice(0, survivors);
      for (let i = survivors; i < replicas; i += 1) gateways.push(await startGateway({ configFile, dir }));
      everyGateway.push(...gateways.slice(survivors));
      // Replicas 0 and 1 finished theirs; the killed ones' streams were cut.
      endings.forEach((ending, i) => assert.equal(ending, i % replicas < survivors ? 'complete' : 'cut', `stream ${i}`));
      crash.stranded = endings.filter((e) => e === 'cut').length;
      assert.equal(crash.stranded, perReplica * (replicas - survivors));

      // The hold of one such call: input price × counted prompt + output price × max_tokens.
      const prompt = BigInt(opened[0].headers.get('x-turnout-prompt-tokens'));
      crash.holdPico = prompt * picoPerToken(TEST_MODELS['gpt-4o'].input)
        + BigInt(CHAT.max_tokens) * picoPerToken(TEST_MODELS['gpt-4o'].output);

      // Before expiry: the stranded holds are live and counted as held; spent is the ledger.
      const lines = await ledgerLines(crash.key.id);
      assert.equal(lines.length, perReplica * survivors, 'only the surviving replicas recorded calls');
      const live = sql(`SELECT COUNT(*), COALESCE(SUM(amount_pico), 0) FROM gov_holds WHERE key_scope = 'key:${crash.key.id}'`);
      assert.equal(live, `${crash.stranded}|${BigInt(crash.stranded) * crash.holdPico}`);
      const { raw } = await turnoutJson(['keys', 'show', crash.key.id]);
      assert.equal(rawUsd(raw, 'held_usd'), BigInt(crash.stranded) * crash.holdPico, raw);
      assert.equal(rawUsd(raw, 'spent_usd'), ledgerTotal(lines), raw);
    } finally {
      await mock.configure({ chunk_delay_ms: 0 });
    }
  });

  it(`rpm 60: 1,000 requests within one second over ${replicaCount} replicas admit exactly 60`, async () => {
    const created = await admin(gateways[1], 'POST', '/admin/v1/keys', { name: 'rpm-sixty', rpm: 60 });
    const key = created.json;
    // rpm counts fixed wall-clock minutes: the whole burst must be answered inside one.
    await atMinuteStartIfNeeded(40_000);
    const minute = Math.floor(Date.now() / 60_000);
    const sending = Date.now();
    const body = JSON.stringify(CHAT);
    const answers = [];
    for (let i = 0; i < 1000; i += 1) answers.push(burstPost(gateways[i % replicas], '/v1/chat/completions', body, key.key));
    const sentWithinMs = Date.now() - sending;
    const settled = await Promise.all(answers);
    assert.equal(Math.floor(Date.now() / 60_000), minute, 'the burst straddled a minute boundary');
    assert.ok(sentWithinMs < 1000, `sending took ${sentWithinMs} ms`);
    const statuses = {};
    for (const answer of settled) statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
    assert.deepEqual(statuses, { 200: 60, 429: 940 });
    for (const refused of settled.filter((a) => a.status === 429)) {
      assert.equal(refused.json.error.code, 'rate_limit_exceeded');
      assert.match(refused.json.error.message, /Limit 60, Used 60, Requested 1/);
    }
    const remaining = settled.filter((a) => a.status === 200)
      .map((a) => Number(a.headers['x-ratelimit-remaining-requests'])).sort((a, b) => a - b);
    assert.deepEqual(remaining, Array.from({ length: 60 }, (_, i) => i), 'each admission counted once, in order');
    assert.equal((await ledgerLines(key.id)).length, 60, 'refused requests never reach the upstream or the ledger');
  });

  it('the official openai SDK waits retry-after-ms on an rpm refusal, then its one retry is admitted',
    { skip: engineName === 'sqlite' ? 'engine-independent: runs on PostgreSQL' : false }, async () => {
    const created = await admin(gateways.at(-1), 'POST', '/admin/v1/keys', { name: 'sdk-rpm', rpm: 1 });
    const key = created.json;
    const attempts = [];
    const countingFetch = async (url, init) => {
      const sentAt = Date.now();
      const response = await fetch(url, init);
      attempts.push({ sentAt, answeredAt: Date.now(), status: response.status,
        retryAfterMs: Number(response.headers.get('retry-after-ms')) });
      return response;
    };
    const client = new OpenAI({ apiKey: key.key, baseURL: gateways.at(-1).baseUrl, maxRetries: 2, timeout: 20_000, fetch: countingFetch });
    await client.chat.completions.create(CHAT);  // uses this minute's one request
    // Refused for the rest of this minute: the SDK must wait what retry-after-ms says.
    const completion = await client.chat.completions.create(CHAT);
    assert.equal(completion.object, 'chat.completion');
    assert.deepEqual(attempts.map((a) => a.status), [200, 429, 200], JSON.stringify(attempts));
    const [, refused, retried] = attempts;
    assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 60_000, `retry-after-ms ${refused.retryAfterMs}`);
    assert.ok(retried.sentAt - refused.answeredAt >= refused.retryAfterMs - 5,
      `retried after ${retried.sentAt - refused.answeredAt} ms, told ${refused.retryAfterMs} ms`);
    // The gateway saw exactly these three attempts on this key.
    await sleep(100);
    const seen = gateways.at(-1).handle.logEntries().filter((e) => e.key_id === key.id);
    assert.deepEqual(seen.map((e) => e.status), [200, 429, 200]);
  });

  it('a key revoked through the admin API on one replica is refused by the others within the 1 s TTL', async () => {
    const created = await admin(gateways[0], 'POST', '/admin/v1/keys', { name: 'revoked-fast', budget_usd: '1' });
    const key = created.json;
    // Every replica has the key cached (verified) just before the revocation.
    for (const gateway of gateways) assert.equal((await chat(gateway, key.key)).status, 200);
    const revoked = await admin(gateways[0], 'POST', `/admin/v1/keys/${key.id}/revoke`);
    assert.equal(revoked.status, 200, revoked.text);
    const revokedAt = Date.now();
    assert.equal((await chat(gateways[0], key.key)).status, 401, 'the revoking replica refuses at once');
    const refusedAfter = await Promise.all(gateways.slice(1).map(async (gateway) => {
      for (;;) {
        const answer = await chat(gateway, key.key);
        if (answer.status === 401) {
          assert.equal(answer.json.error.code, 'invalid_api_key');
          assert.match(answer.json.error.message, /revoked/);
          return Date.now() - revokedAt;
        }
        assert.equal(answer.status, 200, answer.text);
        if (Date.now() - revokedAt > 5 * KEY_CACHE_TTL_MS) return Infinity;
        await sleep(25);
      }
    }));
    // The TTL plus one request's time on a loaded (or sanitizer) build; a cache that
    // outlived its TTL shows up as seconds.
    for (const ms of refusedAfter) assert.ok(ms <= KEY_CACHE_TTL_MS + 500, `refused only after ${ms} ms`);
  });

  it('rotation through the admin API: the old secret stops, the new one works on every replica', async () => {
    const created = await admin(gateways[1], 'POST', '/admin/v1/keys', { name: 'rotated' });
    const oldKey = created.json.key;
    retired.push(oldKey);
    // Every replica has the old secret cached (verified) just before the rotation.
    for (const gateway of gateways) assert.equal((await chat(gateway, oldKey)).status, 200);
    const rotated = await admin(gateways[1], 'POST', `/admin/v1/keys/${created.json.id}/rotate`);
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.json.key, oldKey);
    await sleep(KEY_CACHE_TTL_MS + 100);
    for (const gateway of gateways) {
      const old = await chat(gateway, oldKey);
      assert.equal(old.status, 401, old.text);
      assert.deepEqual(openAIErrorProblems(old.json), []);
      assert.equal((await chat(gateway, rotated.json.key)).status, 200);
    }
    // Wrong credentials on the admin API, and a wrong secret on /v1: refused, not echoed.
    for (const wrong of [`${ADMIN_KEY}x`, rotated.json.key, STATIC_KEY]) {
      assert.equal((await admin(gateways.at(-1), 'GET', '/admin/v1/keys', undefined, wrong)).status, 401);
    }
  });

  it('crash: after expiry the stranded holds are charged in full — spent = ledger + expired, held = live', async () => {
    const expiresAt = crash.heldSince + CALL_TIMEOUT_S * 1000 + HOLD_MARGIN_MS;
    await sleep(Math.max(0, expiresAt - Date.now() + 1_000));
    // The next call on the key sweeps its expired holds (a periodic sweeper may have already).
    assert.equal((await chat(gateways.at(-1), crash.key.key)).status, 200);
    const lines = await ledgerLines(crash.key.id);
    const expired = BigInt(crash.stranded) * crash.holdPico;
    const { raw } = await turnoutJson(['keys', 'show', crash.key.id]);
    assert.equal(rawUsd(raw, 'held_usd'), 0n, raw);
    assert.equal(rawUsd(raw, 'spent_usd'), ledgerTotal(lines) + expired, raw);
    assert.equal(rawUsd(raw, 'remaining_usd'), PICO - ledgerTotal(lines) - expired, raw);
    assert.equal(sql(`SELECT COUNT(*) FROM gov_holds WHERE key_scope = 'key:${crash.key.id}'`), '0');
    const row = sql(`SELECT spent_pico, held_pico, expired_pico FROM gov_budgets WHERE scope = 'key:${crash.key.id}'`);
    assert.equal(row, `${ledgerTotal(lines) + expired}|0|${expired}`);
    const admin0 = await admin(gateways[0], 'GET', `/admin/v1/keys/${crash.key.id}`);
    assert.equal(rawUsd(admin0.text, 'spent_usd'), ledgerTotal(lines) + expired);
    assert.ok(sql('SELECT COUNT(*) FROM gov_budgets WHERE spent_pico < 0 OR held_pico < 0 OR expired_pico < 0') === '0');
  });

  it('PostgreSQL away: limited keys fail closed (503 governance_unavailable), unlimited keys keep flowing, and both recover',
    { skip: engineName === 'sqlite' ? 'PostgreSQL only: a SQLite file cannot go away' : false }, async () => {
    const { value: limited } = await turnoutJson(['keys', 'create', '--name', 'limited-outage', '--budget-usd', '1']);
    const { value: open } = await turnoutJson(['keys', 'create', '--name', 'open-outage']);
    for (const gateway of gateways) {
      assert.equal((await chat(gateway, limited.key)).status, 200);
      assert.equal((await chat(gateway, open.key)).status, 200);
    }
    const upstreamBefore = (await mock.chatRequests()).length;
    pg.command('halt');
    try {
      // Past the key cache TTL too: a stale entry still says which key is limited.
      for (const waitMs of [0, KEY_CACHE_TTL_MS + 200]) {
        await sleep(waitMs);
        for (const gateway of gateways) {
          const refused = await chat(gateway, limited.key);
          assert.equal(refused.status, 503, refused.text);
          assert.deepEqual(openAIErrorProblems(refused.json), []);
          assert.equal(refused.json.error.code, 'governance_unavailable');
          assert.ok(refused.json.error.message.includes(limited.id));
          const served = await chat(gateway, open.key);
          assert.equal(served.status, 200, `an unlimited key while the database is away: ${served.text}`);
        }
      }
      assert.equal((await mock.chatRequests()).length - upstreamBefore, 2 * gateways.length,
        'only the unlimited key reached the upstream');
    } finally {
      pg.command('resume');
    }
    // Back: every replica admits the limited key again (its governance connection reconnects).
    for (const gateway of gateways) {
      let answer;
      for (let attempt = 0; attempt < 50; attempt += 1) {
        answer = await chat(gateway, limited.key);
        if (answer.status === 200) break;
        await sleep(200);
      }
      assert.equal(answer.status, 200, `after the database came back: ${answer.text}`);
    }
  });

  it('no secret in any log line, ledger row, governance row, /metrics, /stats or error body', async () => {
    assert.ok(secrets.size >= 10, `only ${secrets.size} secrets seen`);
    // Refusals that carry a presented secret: a retired key and a forged one, on every replica.
    const forged = `tk-${crash.key.id}-${'5a'.repeat(32)}`;
    noteKey(forged);
    for (const gateway of gateways) {
      for (const key of [...retired, forged]) {
        // A replica whose database just came back may answer one 503 while reconnecting.
        let answer = await chat(gateway, key);
        for (let attempt = 0; answer.status === 503 && attempt < 25; attempt += 1) {
          await sleep(200);
          answer = await chat(gateway, key);
        }
        assert.equal(answer.status, 401, answer.text);
      }
    }
    const exports = await Promise.all(['jsonl', 'csv'].map((format) =>
      runTurnout(['ledger', 'export', '--format', format, '--config', configFile])));
    const tables = ['gov_keys', 'gov_teams', 'gov_audit', 'gov_budgets', 'gov_holds', 'gov_rates'];
    const governance = tables.map((table) => sql(`SELECT * FROM ${table}`)).join('\n');
    assert.ok(/key\.create/.test(governance) && /key\.rotate/.test(governance) && /key\.revoke/.test(governance),
      'the admin writes are audited');
    const served = [];
    for (const gateway of gateways) {
      for (const urlPath of ['/metrics', '/stats']) {
        const answer = await gateway.request('GET', urlPath, { headers: { authorization: `Bearer ${STATIC_KEY}` } });
        assert.equal(answer.status, 200, `${urlPath}: ${answer.text}`);
        served.push(answer.text);
      }
    }
    assert.ok(errorBodies.length > 900, 'the refusals above were collected');
    const haystacks = {
      logs: everyGateway.map((g) => `${g.handle.stdoutLines.join('\n')}\n${g.handle.stderr}`).join('\n'),
      ledger: exports.map((run) => run.stdout).join('\n'),
      governance,
      'metrics and stats': served.join('\n'),
      'error bodies': errorBodies.join('\n'),
    };
    const forbidden = [...secrets, ADMIN_KEY, STATIC_KEY, UPSTREAM_KEY];
    for (const [where, text] of Object.entries(haystacks)) {
      assert.ok(text.length > 0, `${where} is empty`);
      for (const secret of forbidden) assert.ok(!text.includes(secret), `a secret appears in the ${where}`);
    }
  });
});
}

after(async () => {
  burstAgent.destroy();
  await stopAll();
  pg.stop();
});
