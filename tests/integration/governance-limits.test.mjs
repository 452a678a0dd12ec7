// Tokens per minute and concurrent requests through the real binary (issue 17, item 5;
// SPEC §8), on SQLite (two gateways on one file) and on PostgreSQL (two gateways on one
// database): tokens reserved from the exact prompt count + max_tokens and settled to the
// actual use, the -tokens headers, the 429 with "Limit L, Used U, Requested R"; slots
// that admit exactly max_parallel slow streams and that a client disconnecting frees.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  baseConfig, chatWithKey as chat, governanceClient, makeTempDir, openAIErrorProblems, runTurnout, sleep,
  startGateway, startMock, startPgCluster, stopAll, writeConfig,
} from './lib/harness.mjs';

const pg = startPgCluster('turnout-govlim-pg-');

let mock;
let gateways = [];

after(async () => {
  await stopAll();
  pg.stop();
});

let cli;
const createKey = async (args) => (await cli.turnoutJson(['keys', 'create', '--name', 'limited', ...args])).value;
const showKey = async (id) => (await cli.turnoutJson(['keys', 'show', id])).value;

// A streaming call whose body is read by the caller: resolves once the headers are in.
async function openStream(gateway, key) {
  const controller = new AbortController();
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    signal: controller.signal,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 100, stream: true }),
  });
  return { response, controller };
}

// Keeps a burst inside one fixed minute window.
async function awayFromMinuteEnd() {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) await sleep(60_500 - intoMinute);
}

for (const [name, skip] of [['sqlite', false], ['postgresql', pg.skip]]) {
describe(`tpm and max_parallel on ${name} (2 replicas)`, { skip }, () => {
  before(async () => {
    gateways = [];
    const dir = makeTempDir('turnout-govlim-');
    mock ??= await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    if (name === 'postgresql') {
      pg.assertStarted();
      config.ledger.url = pg.url;
    }
    config.governance = { key_cache_ttl_s: 0.3 };
    const configFile = writeConfig(dir, config);
    cli = governanceClient(configFile);
    for (let i = 0; i < 2; i += 1) gateways.push(await startGateway({ configFile, dir }));
  });
  after(async () => {
    for (const gateway of gateways) await gateway.stop();
    await mock.reset();
  });

  it('tpm: reserves prompt + max_tokens, refuses what does not fit, settles to the actual use', async () => {
    const key = await createKey(['--tpm', '300']);
    await awayFromMinuteEnd();
    // Slow answers: every call of the burst is still running while the others are admitted.
    await mock.configure({ latency_ms: 800 });
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => chat(gateways[i % 2], key.key)));
    await mock.reset();
    const admitted = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    // Each call reserves its exact prompt count (about 10) + 100: two fit in 300, not three.
    assert.equal(admitted.length, 2, answers.map((a) => `${a.status} ${a.text.slice(0, 200)}`).join('\n'));
    assert.equal(refused.length, 4);
    const remaining = admitted.map((a) => Number(a.headers.get('x-ratelimit-remaining-tokens'))).sort((x, y) => y - x);
    const reserved = 300 - remaining[0];
    assert.ok(reserved > 100 && reserved < 120, `reserved ${reserved}`);
    assert.deepEqual(remaining, [300 - reserved, 300 - 2 * reserved]);
    for (const a of admitted) {
      assert.equal(a.headers.get('x-ratelimit-limit-tokens'), '300');
      assert.match(a.headers.get('x-ratelimit-reset-tokens'), /^(\d+ms|\d+(\.\d+)?s)$/);
    }
    for (const r of refused) {
      assert.deepEqual(openAIErrorProblems(r.json), []);
      assert.equal(r.json.error.code, 'rate_limit_exceeded');
      assert.equal(r.json.error.type, 'tokens');
      assert.ok(r.json.error.message.includes(`Limit 300, Used ${2 * reserved}, Requested ${reserved}`), r.json.error.message);
      assert.ok(!r.text.includes(key.key.split('-')[2]), 'the secret is not echoed');
      const waitMs = Number(r.headers.get('retry-after-ms'));
      assert.ok(waitMs > 0 && waitMs <= 60_000, `retry-after-ms ${waitMs}`);
      assert.equal(Number(r.headers.get('retry-after')), Math.ceil(waitMs / 1000));
      assert.equal(r.headers.get('x-ratelimit-remaining-tokens'), String(300 - 2 * reserved));
    }
    // The two calls are recorded and settled to what they used (far below 100 out each):
    // what they did not use is free again within the same minute.
    const used = admitted.reduce((sum, a) => sum + a.json.usage.prompt_tokens + a.json.usage.completion_tokens, 0);
    assert.ok(used < reserved, `used ${used}`);
    let shown;
    for (let i = 0; i < 50; i += 1) {
      shown = await showKey(key.id);
      if (shown.usage.tokens_this_minute === used) break;
      await sleep(100);
    }
    assert.equal(shown.usage.tokens_this_minute, used);
    assert.equal((await chat(gateways[1], key.key)).status, 200, 'settled tokens make room again');
  });

  it('max_parallel: exactly the limit of slow streams is admitted; a client that disconnects frees its slot', async () => {
    const key = await createKey(['--max-parallel', '2']);
    await mock.configure({ chunks: 20, chunk_delay_ms: 150 });  // each stream lasts ~3 s
    try {
      const opened = await Promise.all(Array.from({ length: 5 }, (_, i) => openStream(gateways[i % 2], key.key)));
      const streaming = opened.filter((o) => o.response.status === 200);
      const refused = opened.filter((o) => o.response.status === 429);
      assert.equal(streaming.length, 2, opened.map((o) => o.response.status).join(','));
      assert.equal(refused.length, 3);
      for (const r of refused) {
        const body = await r.response.json();
        assert.equal(body.error.code, 'rate_limit_exceeded');
        assert.match(body.error.message, /concurrent requests.*Limit 2, Used 2, Requested 1/);
        assert.equal(r.response.headers.get('retry-after-ms'), '1000');
      }
      // A third call is refused while both streams run...
      assert.equal((await chat(gateways[0], key.key)).status, 429);
      // /metrics and /stats show the key's live holds (database-wide) and refusals (per replica).
      const sample = (text, name, labels) => {
        const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
        return line === undefined ? undefined : Number(line.split(' ').pop());
      };
      let refusedCount = 0;
      for (const gateway of gateways) {
        const metrics = await gateway.request('GET', '/metrics');
        assert.equal(metrics.status, 200);
        assert.ok(!metrics.text.includes(key.key.split('-')[2]), 'no secret in /metrics');
        assert.equal(sample(metrics.text, 'turnout_governance_live_holds', `scope="key",id="${key.id}"`), 2);
        refusedCount += sample(metrics.text, 'turnout_governance_refusals_total', `key="${key.id}",team="",reason="max_parallel"`) ?? 0;
        const stats = await gateway.stats();
        const scope = stats.governance.scopes.find((s) => s.scope === 'key' && s.id === key.id);
        assert.equal(scope.live_holds, 2);
      }
      assert.equal(refusedCount, 4);
      // ...until one client goes away mid-stream: its call is recorded (499) and its slot freed.
      const [gone, kept] = streaming;
      const reader = gone.response.body.getReader();
      await reader.read();
      gone.controller.abort();
      let freed = null;
      for (let i = 0; i < 40 && !freed; i += 1) {
        await sleep(100);
        const attempt = await chat(gateways[1], key.key, { max_tokens: 5 });
        if (attempt.status === 200) freed = attempt;
        else assert.equal(attempt.status, 429, attempt.text);
      }
      assert.ok(freed, 'the disconnected stream released its slot');
      await kept.response.text();  // the other stream runs to its end
    } finally {
      await mock.reset();
    }
    // Nothing stays taken: every slot settled with its record, so two calls fit at once again.
    await sleep(300);
    const both = await Promise.all([chat(gateways[0], key.key), chat(gateways[1], key.key)]);
    assert.deepEqual(both.map((a) => a.status), [200, 200]);
  });
});
}

describe('revocation reaches every replica through LISTEN/NOTIFY (postgresql)', { skip: pg.skip }, () => {
  const adminKey = 'admin-notify-test-0123456789abcdef';
  let pair = [];
  before(async () => {
    pg.assertStarted();
    const dir = makeTempDir('turnout-govnotify-');
    mock ??= await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    config.ledger.url = pg.url;
    // A cache TTL of a minute: only NOTIFY can explain a refusal within 100 ms.
    config.governance = { key_cache_ttl_s: 60, admin_key: adminKey };
    const file = writeConfig(dir, config);
    for (let i = 0; i < 2; i += 1) pair.push(await startGateway({ configFile: file, dir }));
  });
  after(async () => {
    for (const gateway of pair) await gateway.stop();
  });

  const admin = (gateway, method, urlPath, json) =>
    gateway.request(method, urlPath, { json, headers: { authorization: `Bearer ${adminKey}` } });
  const models = (gateway, key) => gateway.request('GET', '/v1/models', { headers: { authorization: `Bearer ${key}` } });

  // Polls `gateway` until the key is refused; the milliseconds it took.
  async function refusedWithin(gateway, key, limitMs) {
    const start = performance.now();
    for (;;) {
      const answer = await models(gateway, key);
      if (answer.status === 401) return performance.now() - start;
      assert.equal(answer.status, 200, answer.text);
      if (performance.now() - start > limitMs) return performance.now() - start;
      await sleep(5);
    }
  }

  it('a key revoked on one replica is refused by the other within 100 ms', async () => {
    const created = await admin(pair[0], 'POST', '/admin/v1/keys', { name: 'notify-me' });
    assert.equal(created.status, 201, created.text);
    const { id, key } = created.json;
    for (const gateway of pair) assert.equal((await models(gateway, key)).status, 200);  // cached on both
    const revoked = await admin(pair[0], 'POST', `/admin/v1/keys/${id}/revoke`);
    assert.equal(revoked.status, 200, revoked.text);
    const tookMs = await refusedWithin(pair[1], key, 100);
    assert.ok(tookMs <= 100, `refused by the other replica only after ${tookMs.toFixed(1)} ms`);
  });

  it('the CLI on the database notifies too, and a team update evicts its keys', async () => {
    const team = await admin(pair[0], 'POST', '/admin/v1/teams', { name: 'notify-team' });
    assert.equal(team.status, 201, team.text);
    const created = await admin(pair[0], 'POST', '/admin/v1/keys', { name: 'member', team: 'notify-team' });
    assert.equal(created.status, 201, created.text);
    const { key } = created.json;
    for (const gateway of pair) assert.equal((await models(gateway, key)).status, 200);
    // The team expires: both replicas must reload the key's team at once.
    const run = await runTurnout(['teams', 'update', 'notify-team', '--expires', '2020-01-01T00:00:00Z', '--config', pair[0].configFile]);
    assert.equal(run.code, 0, run.stderr);
    for (const gateway of pair) {
      const tookMs = await refusedWithin(gateway, key, 100);
      assert.ok(tookMs <= 100, `a team change reached a replica only after ${tookMs.toFixed(1)} ms`);
    }
  });
});
