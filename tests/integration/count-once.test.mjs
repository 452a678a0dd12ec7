// Count once (issue 16, docs/REFERENCE.md §4.6): an auto-routed chat call counts its
// prompt in routing.encoding (always, exactly) and in the served model's own encoding only
// when something needs that number. Checked through the real gateway and mock: the header
// and the ledger say "not counted" (absent / null) rather than approximate; a context fit
// the byte bound cannot prove is decided by the exact count; a stream without usage is
// billed on the exact model count, taken after the call; a virtual key's budget hold
// prices the exact model count; POST /route still reports it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { runTurnout, startGateway, startMock, stopAll, recordOf } from './lib/harness.mjs';
import { chatPromptTokens } from './lib/reference.mjs';

// Accents and dashes: cl100k_base and o200k_base count this text differently.
const messages = [{ role: 'user', content: 'Ünïcödé résumé, naïve café — déjà vu. '.repeat(40) }];
const CONTEXT_WINDOW = 128000;  // gpt-4o's in the test config
const IN_PICO_PER_TOKEN = 2_500_000n;  // gpt-4o: $0.0025 per 1k
const OUT_PICO_PER_TOKEN = 10_000_000n;  // $0.01 per 1k

let mock;
let gateway;
let routingCount;
let modelCount;

function usdToPico(text) {
  const [whole, fraction = ''] = String(text).split('.');
  return BigInt(whole) * 10n ** 12n + BigInt((fraction + '0'.repeat(12)).slice(0, 12));
}

before(async () => {
  routingCount = chatPromptTokens(messages, 'cl100k_base');
  modelCount = chatPromptTokens(messages, 'o200k_base');
  assert.notEqual(routingCount, modelCount, 'the encodings differ on this prompt');
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => {
      config.routing.encoding = 'cl100k_base';
      config.routing.tiers = [{ name: 'all', model: 'gpt-4o' }];  // o200k_base
      config.governance = { key_cache_ttl_s: 0.3 };
    },
  });
});
after(stopAll);

async function turnoutJson(args) {
  const run = await runTurnout([...args, '--config', gateway.configFile], { cwd: gateway.dir });
  assert.equal(run.code, 0, `turnout ${args.join(' ')}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

describe('the served model counted only when needed', () => {
  it('a context fit the byte bound proves leaves the model uncounted: no header, null in the ledger and /stats', async () => {
    const response = await gateway.chat({ model: 'auto', messages }, { 'x-request-id': 'count-once-lean' });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-4o');
    assert.equal(response.headers.get('x-turnout-prompt-tokens'), String(routingCount));
    assert.equal(response.headers.get('x-turnout-model-prompt-tokens'), null);
    const record = await recordOf(gateway, 'count-once-lean');
    assert.equal(record.counted_prompt_tokens, null);
    assert.equal(record.usage_reported, true);
    const stats = await gateway.stats('?recent=50');
    const recent = stats.recent_calls.find((call) => call.id === 'count-once-lean');
    assert.ok(recent, 'the call is in recent_calls');
    assert.equal(recent.counted_prompt_tokens, null);
  });

  it('POST /route still gives the model\'s own count', async () => {
    const decision = await gateway.request('POST', '/route', { json: { model: 'auto', messages } });
    assert.equal(decision.status, 200, decision.text);
    assert.equal(decision.json.prompt_tokens, routingCount);
    assert.equal(decision.json.model_prompt_tokens, modelCount);
  });

  it('a fit the bound cannot prove is decided by the exact count, which is then reported', async () => {
    // Prompt bytes + output exceed the window; the exact count + output fills it exactly.
    const maxTokens = CONTEXT_WINDOW - modelCount;
    const response = await gateway.chat({ model: 'auto', messages, max_tokens: maxTokens }, { 'x-request-id': 'count-once-tight' });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model-prompt-tokens'), String(modelCount));
    const record = await recordOf(gateway, 'count-once-tight');
    assert.equal(record.counted_prompt_tokens, modelCount);

    const over = await gateway.chat({ model: 'auto', messages, max_tokens: maxTokens + 1 });
    assert.equal(over.status, 400, over.text);
    assert.equal(over.json.error.code, 'context_length_exceeded');
    assert.ok(over.json.error.message.includes(`(${modelCount} in the messages`), over.json.error.message);
  });

  it('a stream without usage is billed on the exact model count, taken after the call', async () => {
    await mock.configure({ no_usage: true });  // the upstream's stream carries no usage chunk
    const response = await gateway.chat({ model: 'auto', messages, stream: true }, { 'x-request-id': 'count-once-stream' })
      .finally(() => mock.reset());
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model-prompt-tokens'), null, 'not counted before the head was sent');
    const record = await recordOf(gateway, 'count-once-stream');
    assert.equal(record.usage_reported, false);
    assert.equal(record.prompt_tokens, modelCount);
    assert.equal(record.counted_prompt_tokens, modelCount);
    const expected = BigInt(modelCount) * IN_PICO_PER_TOKEN + BigInt(record.completion_tokens) * OUT_PICO_PER_TOKEN;
    assert.equal(usdToPico(record.cost_usd), expected);
  });

  it('a virtual key\'s budget hold prices the exact model count', async () => {
    const poor = await turnoutJson(['keys', 'create', '--name', 'poor', '--budget-usd', '0.000001']);
    const refused = await gateway.chat({ model: 'auto', messages, max_tokens: 10 }, { authorization: `Bearer ${poor.key}` });
    assert.equal(refused.status, 429, refused.text);
    const held = /may cost up to \$([0-9.]+)/.exec(refused.json.error.message);
    assert.ok(held, refused.json.error.message);
    assert.equal(usdToPico(held[1]), BigInt(modelCount) * IN_PICO_PER_TOKEN + 10n * OUT_PICO_PER_TOKEN);

    const rich = await turnoutJson(['keys', 'create', '--name', 'rich', '--budget-usd', '10']);
    const served = await gateway.chat({ model: 'auto', messages, max_tokens: 10 },
      { authorization: `Bearer ${rich.key}`, 'x-request-id': 'count-once-keyed' });
    assert.equal(served.status, 200, served.text);
    assert.equal(served.headers.get('x-turnout-model-prompt-tokens'), String(modelCount));
    assert.equal((await recordOf(gateway, 'count-once-keyed')).counted_prompt_tokens, modelCount);
  });
});
