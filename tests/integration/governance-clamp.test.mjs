// governance.on_insufficient: clamp (issue 17, item 3; SPEC §8) through the real binary,
// on SQLite and on PostgreSQL (two gateways on one database): a nearly exhausted key gets
// its call held at the largest maximum output that fits, forwarded with that
// max_completion_tokens (the mock records what it received), named in
// x-turnout-clamped-max-completion-tokens; calls go on being clamped until not one output
// token fits, then 429 insufficient_quota; the ledger's total never exceeds the cap and
// equals what the key spent.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  TEST_MODELS, baseConfig, chatWithKey as chat, governanceClient, makeTempDir, picoPerToken, rawUsd, startGateway,
  startMock, startPgCluster, stopAll, usdToPico, writeConfig,
} from './lib/harness.mjs';

const pg = startPgCluster('turnout-govclamp-pg-');

let mock;
let cli;
let gateways = [];

after(async () => {
  await stopAll();
  pg.stop();
});

const INPUT = picoPerToken(TEST_MODELS['gpt-4o'].input);
const OUTPUT = picoPerToken(TEST_MODELS['gpt-4o'].output);

for (const [name, skip] of [['sqlite', false], ['postgresql', pg.skip]]) {
describe(`on_insufficient: clamp on ${name}`, { skip }, () => {
  before(async () => {
    gateways = [];
    const dir = makeTempDir('turnout-govclamp-');
    mock ??= await startMock();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    if (name === 'postgresql') {
      pg.assertStarted();
      config.ledger.url = pg.url;
    }
    config.governance = { on_insufficient: 'clamp' };
    const configFile = writeConfig(dir, config);
    cli = governanceClient(configFile);
    for (let i = 0; i < 2; i += 1) gateways.push(await startGateway({ configFile, dir }));
  });
  after(async () => {
    for (const gateway of gateways) await gateway.stop();
    await mock.reset();
  });

  for (const stream of [false, true]) it(`holds what fits, forwards that max_completion_tokens, and never spends past the cap${stream ? ' (streaming)' : ''}`, async () => {
    // A full call (max_tokens 100) holds about $0.001; the key has half of that.
    const key = (await cli.turnoutJson(['keys', 'create', '--name', 'nearly-spent', '--budget-usd', '0.0005'])).value;
    const cap = usdToPico('0.0005');
    await mock.configure({ completion_words: 400 });  // every call uses all the output it may
    await mock.clearRequests();

    const first = await chat(gateways[0], key.key, { stream });
    assert.equal(first.status, 200, first.text);
    const clamped = Number(first.headers.get('x-turnout-clamped-max-completion-tokens'));
    // The count the hold was priced at: the model's own when it differs from the route's.
    const prompt = BigInt(first.headers.get('x-turnout-model-prompt-tokens') ?? first.headers.get('x-turnout-prompt-tokens'));
    // The largest output whose hold fits the room, exactly: input × prompt + output × m ≤ cap.
    assert.ok(INPUT * prompt + OUTPUT * BigInt(clamped) <= cap, `clamped to ${clamped}`);
    assert.ok(INPUT * prompt + OUTPUT * BigInt(clamped + 1) > cap, `clamped to ${clamped}, one more would fit`);
    assert.ok(clamped > 0 && clamped < 100);
    const forwarded = (await mock.chatRequests()).at(-1).json;
    assert.equal(forwarded.max_completion_tokens, clamped, JSON.stringify(forwarded));
    assert.equal(forwarded.max_tokens, undefined, 'the client limit is replaced, not sent beside it');
    if (!stream) assert.equal(first.json.usage.completion_tokens, clamped);

    // Spend the rest, one call at a time, until not one output token fits (the first call
    // used all it was allowed, so at most a call or two more).
    let calls = 1;
    for (;;) {
      const next = await chat(gateways[calls % 2], key.key, { stream });
      if (next.status === 429) {
        assert.equal(next.json.error.code, 'insufficient_quota', next.text);
        break;
      }
      assert.equal(next.status, 200, next.text);
      const limit = Number(next.headers.get('x-turnout-clamped-max-completion-tokens'));
      assert.ok(limit >= 1 && limit < clamped + 1, `clamped to ${limit}`);
      assert.equal((await mock.chatRequests()).at(-1).json.max_completion_tokens, limit);
      calls += 1;
      assert.ok(calls < 100, 'the budget never ran out');
    }

    const lines = await cli.ledgerLines(key.id);
    assert.equal(lines.length, calls);
    const total = cli.ledgerTotal(lines);
    assert.ok(total <= cap, `ledger total ${total} pico exceeds the cap ${cap}`);
    // Refused only when not even one output token fits what is left.
    assert.ok(cap - total < INPUT * prompt + OUTPUT, `${cap - total} pico left unspent`);
    const shown = (await cli.turnoutJson(['keys', 'show', key.id])).raw;
    assert.equal(rawUsd(shown, 'spent_usd'), total, shown);
    assert.match(shown, /"held_usd":0[,}]/);
  });

  it('a call that fits as asked is forwarded untouched', async () => {
    const key = (await cli.turnoutJson(['keys', 'create', '--name', 'roomy', '--budget-usd', '1'])).value;
    await mock.clearRequests();
    const answer = await chat(gateways[1], key.key);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers.get('x-turnout-clamped-max-completion-tokens'), null);
    const forwarded = (await mock.chatRequests()).at(-1).json;
    assert.equal(forwarded.max_tokens, 100);
    assert.equal(forwarded.max_completion_tokens, undefined);
  });
});
}
