// Governance through the real binary (issue 17; SPEC §8), on SQLite (two gateways on one
// file) and on PostgreSQL (four gateways on one database): `turnout keys` / `turnout
// teams` on the ledger database, virtual keys on /v1/*, allow-lists, revocation, and the
// budget that cannot be overshot — concurrent calls (a third streaming) spread over the
// replicas never spend more than the cap, and spent equals the ledger's total exactly.
// No secret in logs, ledger, audit rows or error bodies.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';

import {
  baseConfig, chatWithKey as chat, governanceClient, makeTempDir, openAIErrorProblems, picoPerToken, runTurnout,
  startGateway, startMock, startPgCluster, stopAll, TEST_MODELS, usdToPico, writeConfig,
} from './lib/harness.mjs';

const pg = startPgCluster('turnout-gov-pg-');

let dir;
let mock;
let configFile;
let gateways = [];
let engine;
const secrets = [];  // every whole virtual key printed during the run
let turnoutJson;
let ledgerLines;

// The governance tables, as text (audit rows and keys), for the secret check.
function governanceRows() {
  const query = 'SELECT * FROM gov_audit; SELECT * FROM gov_keys;';
  if (engine === 'sqlite') return execFileSync('sqlite3', [path.join(dir, 'ledger.db'), query]).toString();
  return execFileSync('psql', ['-X', '-A', '-t', '-c', query, pg.url]).toString();
}

for (const [name, replicas, concurrent, skip] of [['sqlite', 2, 60, false], ['postgresql', 4, 400, pg.skip]]) {
describe(`governance on ${name} (${replicas} replicas)`, { skip }, () => {
before(async () => {
  engine = name;
  gateways = [];
  dir = makeTempDir('turnout-governance-');
  mock ??= await startMock();
  const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
  if (name === 'postgresql') {
    pg.assertStarted();
    config.ledger.url = pg.url;
  }
  config.governance = { key_cache_ttl_s: 0.3 };
  configFile = writeConfig(dir, config);
  ({ turnoutJson, ledgerLines } = governanceClient(configFile, { onKey: (key) => secrets.push(key) }));
  for (let i = 0; i < replicas; i += 1) gateways.push(await startGateway({ configFile, dir }));
});
after(async () => {
  for (const gateway of gateways) await gateway.stop();
});

describe('turnout keys / teams (on the ledger database)', () => {
  it('creates a key shown once, lists and shows it without the secret', async () => {
    const { value: created } = await turnoutJson(['keys', 'create', '--name', 'cli-app', '--budget-usd', '2.5',
      '--budget-period', 'week', '--timezone', 'Europe/Berlin', '--models', 'gpt-4o,gpt-4o-mini']);
    assert.match(created.key, /^tk-[0-9a-f]{16}-[0-9a-f]{64}$/);
    assert.equal(created.key.split('-')[1], created.id);
    assert.equal(created.budget_usd, 2.5);
    assert.equal(created.budget_period, 'week');
    assert.deepEqual(created.models, ['gpt-4o', 'gpt-4o-mini']);
    assert.equal(created.usage.spent_usd, 0);
    const { raw: listed } = await turnoutJson(['keys', 'list']);
    assert.ok(listed.includes(created.id));
    const { value: shown, raw } = await turnoutJson(['keys', 'show', created.id]);
    assert.equal(shown.key, undefined);
    assert.ok(!raw.includes(created.key.split('-')[2]), 'the secret is never shown again');
    assert.equal(shown.usage.remaining_usd, 2.5);
  });

  it('teams: create, update, show; a key joins one', async () => {
    const { value: team } = await turnoutJson(['teams', 'create', '--name', 'research', '--budget-usd', '100']);
    assert.equal(team.id, 'research');
    const { value: updated } = await turnoutJson(['teams', 'update', 'research', '--budget-usd', '50', '--rpm', '600']);
    assert.equal(updated.budget_usd, 50);
    assert.equal(updated.rpm, 600);
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'member', '--team', 'research']);
    assert.equal(key.team, 'research');
    const { value: cleared } = await turnoutJson(['keys', 'update', key.id, '--team', 'none']);
    assert.equal(cleared.team, null);
  });

  it('refuses bad flags with exit 2 and the flag named', async () => {
    for (const [args, named] of [
      [['keys', 'create', '--name', 'x', '--timezone', 'Mars/Base'], 'timezone'],
      [['keys', 'create', '--name', 'x', '--budget-usd', '-1'], '--budget-usd'],
      [['keys', 'create', '--name', 'x', '--budget-period', 'fortnight'], '--budget-period'],
      [['keys', 'create', '--name', 'x', '--team', 'nobody'], 'team'],
      [['keys', 'show', 'ffffffffffffffff'], 'no key'],
    ]) {
      const run = await runTurnout([...args, '--config', configFile]);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.ok(run.stderr.includes(named), run.stderr);
    }
  });
});

describe('virtual keys on /v1/*', () => {
  it('admits a valid key, records its public id, and refuses unknown ones with 401', async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'plain']);
    const ok = await chat(gateways[0], key.key, {});
    assert.equal(ok.status, 200, ok.text);
    const lines = await ledgerLines(key.id);
    assert.equal(lines.length, 1);
    const wrong = `tk-${key.id}-${'0'.repeat(64)}`;
    const refused = await chat(gateways[1], wrong, {});
    assert.equal(refused.status, 401);
    assert.deepEqual(openAIErrorProblems(refused.json), []);
    assert.equal(refused.json.error.code, 'invalid_api_key');
    assert.ok(refused.text.includes(key.id));
    assert.ok(!refused.text.includes('0'.repeat(64)), 'the presented secret is not echoed');
  });

  it('403 model_not_allowed outside the allow-list; nothing reaches the upstream', async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'mini-only', '--models', 'gpt-4o-mini']);
    const before = (await mock.chatRequests()).length;
    const refused = await chat(gateways[0], key.key, { model: 'gpt-4o' });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json.error.code, 'model_not_allowed');
    assert.equal((await mock.chatRequests()).length, before);
    assert.equal((await chat(gateways[0], key.key, { model: 'gpt-4o-mini' })).status, 200);
  });

  it('GET /v1/limits answers a key about itself, with its team', async () => {
    await turnoutJson(['teams', 'create', '--name', 'limits-team', '--budget-usd', '7']);
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'asker', '--team', 'limits-team',
      '--budget-usd', '1.5', '--budget-period', 'day']);
    const answer = await gateways[0].request('GET', '/v1/limits', { headers: { authorization: `Bearer ${key.key}` } });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.id, key.id);
    assert.equal(answer.json.budget_usd, 1.5);
    assert.equal(answer.json.usage.remaining_usd, 1.5);
    assert.equal(answer.json.team_limits.id, 'limits-team');
    assert.equal(answer.json.team_limits.usage.remaining_usd, 7);
    assert.ok(!answer.text.includes(key.key.split('-')[2]));
    const anonymous = await gateways[0].request('GET', '/v1/limits');
    assert.equal(anonymous.status, 401);
  });

  it('a key revoked with the CLI is refused by every replica within the cache TTL', async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'doomed']);
    for (const gateway of gateways) assert.equal((await chat(gateway, key.key, {})).status, 200);
    await turnoutJson(['keys', 'revoke', key.id]);
    await new Promise((resolve) => setTimeout(resolve, 400));  // key_cache_ttl_s: 0.3
    for (const gateway of gateways) {
      const refused = await chat(gateway, key.key, {});
      assert.equal(refused.status, 401, refused.text);
      assert.match(refused.json.error.message, /revoked/);
    }
  });
});

describe('requests per minute', () => {
  it(`a key with rpm 5 admits exactly 5 of a burst of 16 spread over ${replicas} replicas`, async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'rpm-five', '--rpm', '5']);
    // The count is per fixed minute: keep the burst inside one.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 55_000) await new Promise((resolve) => setTimeout(resolve, 60_500 - intoMinute));
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => chat(gateways[i % gateways.length], key.key, {})));
    const admitted = answers.filter((a) => a.status === 200);
    const limited = answers.filter((a) => a.status === 429);
    assert.equal(admitted.length, 5, answers.map((a) => a.status).join(','));
    assert.equal(limited.length, 11);
    for (const ok of admitted) {
      assert.equal(ok.headers.get('x-ratelimit-limit-requests'), '5');
      assert.match(ok.headers.get('x-ratelimit-remaining-requests'), /^[0-4]$/);
      assert.match(ok.headers.get('x-ratelimit-reset-requests'), /^(\d+ms|\d+(\.\d+)?s)$/);
    }
    assert.deepEqual(admitted.map((a) => a.headers.get('x-ratelimit-remaining-requests')).sort(), ['0', '1', '2', '3', '4']);
    for (const refused of limited) {
      assert.deepEqual(openAIErrorProblems(refused.json), []);
      assert.equal(refused.json.error.code, 'rate_limit_exceeded');
      assert.equal(refused.json.error.type, 'requests');
      assert.match(refused.json.error.message, /Limit 5, Used 5, Requested 1/);
      assert.ok(!refused.text.includes(key.key.split('-')[2]), 'the secret is not echoed');
      const waitMs = Number(refused.headers.get('retry-after-ms'));
      assert.ok(waitMs > 0 && waitMs <= 60_000, `retry-after-ms ${waitMs}`);
      assert.equal(Number(refused.headers.get('retry-after')), Math.ceil(waitMs / 1000));
      assert.equal(refused.headers.get('x-ratelimit-remaining-requests'), '0');
    }
    assert.equal((await ledgerLines(key.id)).length, 5, 'refused requests never reach the upstream or the ledger');
    const { value: shown } = await turnoutJson(['keys', 'show', key.id]);
    if (Date.now() % 60_000 > 1_000) assert.equal(shown.usage.requests_this_minute, 5);
  });
});

describe('budgets', () => {
  it(`no overspend: ${concurrent} concurrent calls (a third streaming) over ${replicas} replicas stay within $0.010`, async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'capped', '--budget-usd', '0.010']);
    // All the calls must be in flight together: each settles to ~$0.00008, so calls that
    // finish one after another fit the cap and would all (rightly) be admitted. A slow
    // upstream keeps every admitted call's ~$0.001 hold outstanding while the rest arrive.
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
      assert.equal(r.json.error.code, 'insufficient_quota');
      assert.equal(r.headers.get('x-should-retry'), 'false');
      assert.ok(r.json.error.message.includes(key.id));
    }
    for (const a of admitted) assert.ok(a.headers.get('x-turnout-budget-remaining-usd') !== null);
    // The burst's refusals came while its admitted calls were still held; now that they
    // are settled, spend what is left, one call at a time, until a call no longer fits.
    let drained = 0;
    for (;;) {
      const next = await chat(gateways[drained % replicas], key.key, {});
      if (next.status === 429) {
        assert.equal(next.json.error.code, 'insufficient_quota', next.text);
        break;
      }
      assert.equal(next.status, 200, next.text);
      drained += 1;
      assert.ok(drained < 200, 'the budget never ran out');
    }
    const lines = await ledgerLines(key.id);
    assert.equal(lines.length, admitted.length + drained);
    const total = lines.reduce((sum, line) => sum + usdToPico(line.match(/"cost_usd":([0-9.]+)/)[1]), 0n);
    const cap = usdToPico('0.010');
    assert.ok(total <= cap, `ledger total ${total} pico exceeds the cap`);
    // With nothing held, the last refusal means what is left is less than one request's
    // maximum: input price × prompt tokens + output price × max_tokens.
    const prompt = BigInt(JSON.parse(lines[0]).counted_prompt_tokens);
    const maxRequest = prompt * picoPerToken(TEST_MODELS['gpt-4o'].input) + 100n * picoPerToken(TEST_MODELS['gpt-4o'].output);
    assert.ok(cap - total < maxRequest, `ledger total ${total} pico is more than one request (${maxRequest}) below the cap`);
    // Settled exactly: spent is the ledger's total (read from the printed digits, never a
    // double), nothing is left held.
    const { raw } = await turnoutJson(['keys', 'show', key.id]);
    assert.equal(usdToPico(raw.match(/"spent_usd":([0-9.]+)/)[1]), total, raw);
    assert.match(raw, /"held_usd":0[,}]/);
  });

  it('Responses and embeddings calls are held and settled under the same budget', async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'surface', '--budget-usd', '0.0015']);
    const auth = { authorization: `Bearer ${key.key}` };
    const responses = (body) => gateways[0].request('POST', '/v1/responses',
      { json: { model: 'gpt-4o', input: 'Say hello', max_output_tokens: 100, ...body }, headers: auth });
    assert.equal((await responses({})).status, 200);
    const streamed = await responses({ stream: true });
    assert.equal(streamed.status, 200, streamed.text);
    const embedded = await gateways[1].request('POST', '/v1/embeddings',
      { json: { model: 'text-embedding-3-small', input: 'hello' }, headers: auth });
    assert.equal(embedded.status, 200, embedded.text);
    // ~$0.001 held for 100 output tokens of gpt-4o: 150 more no longer fit what is left.
    const refused = await responses({ max_output_tokens: 150 });
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.json.error.code, 'insufficient_quota');
    const lines = await ledgerLines(key.id);
    assert.deepEqual(lines.map((line) => JSON.parse(line).endpoint).sort(), ['embeddings', 'responses', 'responses']);
    const total = lines.reduce((sum, line) => sum + usdToPico(line.match(/"cost_usd":([0-9.]+)/)[1]), 0n);
    const { value: shown } = await turnoutJson(['keys', 'show', key.id]);
    assert.equal(usdToPico(shown.usage.spent_usd), total);
    assert.equal(shown.usage.held_usd, 0);
  });

  it('a team budget caps its keys together', async () => {
    await turnoutJson(['teams', 'create', '--name', 'tiny', '--budget-usd', '0.0025']);
    const { value: a } = await turnoutJson(['keys', 'create', '--name', 'a', '--team', 'tiny']);
    const { value: b } = await turnoutJson(['keys', 'create', '--name', 'b', '--team', 'tiny']);
    // Each call holds ~$0.001 (100 output tokens of gpt-4o) and settles to far less; a third
    // asking for 250 output tokens (~$0.0025) no longer fits the team's remaining budget.
    assert.equal((await chat(gateways[0], a.key, {})).status, 200);
    assert.equal((await chat(gateways[1], b.key, {})).status, 200);
    const third = await chat(gateways[0], a.key, { max_tokens: 250 });
    assert.equal(third.status, 429, third.text);
    assert.match(third.json.error.message, /team 'tiny'/);
  });

  it('the official openai SDK makes exactly one attempt on a budget refusal', async () => {
    const { value: key } = await turnoutJson(['keys', 'create', '--name', 'sdk', '--budget-usd', '0.0001']);
    const before = gateways[0].handle.logEntries().length;
    const client = new OpenAI({ apiKey: key.key, baseURL: gateways[0].baseUrl, maxRetries: 3, timeout: 20_000 });
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 }),
      (error) => error.status === 429 && error.code === 'insufficient_quota');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const attempts = gateways[0].handle.logEntries().slice(before).filter((e) => e.key_id === key.id);
    assert.equal(attempts.length, 1, JSON.stringify(attempts));
  });
});

describe('secrets', () => {
  it('no virtual key secret in logs, ledger rows or audit rows', async () => {
    assert.ok(secrets.length > 5);
    const run = await runTurnout(['ledger', 'export', '--format', 'jsonl', '--config', configFile]);
    const audit = governanceRows();
    assert.ok(audit.includes('key.create') && audit.includes('key.revoke'), 'admin writes are audited');
    const haystacks = [run.stdout, audit, ...gateways.map((g) => g.handle.stdoutLines.join('\n') + g.handle.stderr)];
    for (const key of secrets) {
      const secret = key.split('-')[2];
      for (const text of haystacks) assert.ok(!text.includes(secret), 'a secret leaked');
    }
  });
});
});
}

after(async () => {
  await stopAll();
  pg.stop();
});
