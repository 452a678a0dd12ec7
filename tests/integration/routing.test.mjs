// Routing through the real gateway and mock (docs/REFERENCE.md §2, §4): tiers on the
// exact token count at their boundaries, aliases, explicit models, context fit, unknown
// models, and the x-turnout-* / x-request-id headers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';

import { startGateway, startMock, stopAll, TEST_MODELS, modelEntry, openAIErrorProblems } from './lib/harness.mjs';
import { chatPromptTokens, countTokens, femtoToNumber, promptWithTokens, usageCost } from './lib/reference.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(stopAll);

// Asserts a 200 chat response was routed as expected and carries every x-turnout header.
function assertRouted(response, { model, route, promptTokens }) {
  assert.equal(response.status, 200, response.text);
  const header = (name) => response.headers.get(name);
  assert.equal(header('x-turnout-model'), model);
  assert.equal(header('x-turnout-route'), route);
  if (promptTokens !== undefined) assert.equal(header('x-turnout-prompt-tokens'), String(promptTokens));
  assert.equal(header('x-turnout-attempts'), '1');
  assert.match(header('x-turnout-overhead-us') ?? '', /^\d+$/, 'x-turnout-overhead-us is whole microseconds');
  assert.ok(header('x-request-id'), 'x-request-id is set');
  const prices = TEST_MODELS[model];
  if (prices) {
    const expectedCost = femtoToNumber(usageCost(response.json.usage, prices));
    assert.equal(Number(header('x-turnout-cost-usd')), expectedCost, 'x-turnout-cost-usd');
    assert.equal(response.json.cost_usd, expectedCost, 'body cost_usd');
  }
}

describe('tier routing at exact boundaries', () => {
  // Small `below` values so prompts land exactly below and at each boundary.
  const SMALL_BELOW = 30;
  const MEDIUM_BELOW = 40;
  let gateway;

  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.routing.aliases = ['auto', 'cheapest'];
        config.routing.tiers = [
          { name: 'small', below: SMALL_BELOW, model: 'gpt-3.5-turbo' },
          { name: 'medium', below: MEDIUM_BELOW, model: 'gpt-4o-mini' },
          { name: 'large', model: 'gpt-4o' },
        ];
      },
    });
  });

  const cases = [
    { tokens: SMALL_BELOW - 1, model: 'gpt-3.5-turbo', route: 'small' },
    { tokens: SMALL_BELOW, model: 'gpt-4o-mini', route: 'medium' },
    { tokens: MEDIUM_BELOW - 1, model: 'gpt-4o-mini', route: 'medium' },
    { tokens: MEDIUM_BELOW, model: 'gpt-4o', route: 'large' },
  ];
  const modelFields = [
    ['absent', {}],
    ['empty', { model: '' }],
    ['"auto"', { model: 'auto' }],
    ['custom alias "cheapest"', { model: 'cheapest' }],
  ];

  for (const { tokens, model, route } of cases) {
    for (const [label, modelField] of modelFields) {
      it(`a ${tokens}-token prompt with model ${label} goes to ${route} (${model})`, async () => {
        const messages = promptWithTokens(tokens);
        assert.equal(chatPromptTokens(messages), tokens);
        await mock.clearRequests();
        const response = await gateway.chat({ ...modelField, messages });
        assertRouted(response, { model, route, promptTokens: tokens });
        const forwarded = await mock.chatRequests();
        assert.equal(forwarded.length, 1);
        assert.equal(forwarded[0].json.model, model, 'the upstream is asked for the routed model');
      });
    }
  }

  it('echoes the client x-request-id and generates distinct ids otherwise', async () => {
    const messages = promptWithTokens(12);
    const echoed = await gateway.chat({ model: 'auto', messages }, { 'x-request-id': 'it-routing-req-0001' });
    assert.equal(echoed.status, 200);
    assert.equal(echoed.headers.get('x-request-id'), 'it-routing-req-0001');
    const startMs = Date.now();
    const first = await gateway.chat({ model: 'auto', messages });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = await gateway.chat({ model: 'auto', messages });
    const endMs = Date.now();
    const [a, b] = [first.headers.get('x-request-id'), second.headers.get('x-request-id')];
    assert.notEqual(a, b);
    // req_ + 12 hex digits of unix milliseconds + 12 random: generated ids sort by time,
    // which keeps the ledger's id index appending (issue 16).
    for (const id of [a, b]) {
      assert.match(id, /^req_[0-9a-f]{24}$/);
      const ms = parseInt(id.slice(4, 16), 16);
      assert.ok(ms >= startMs - 1000 && ms <= endMs + 1000, `${id} leads with the time it was made`);
    }
    assert.ok(a < b, `${a} sorts before the later ${b}`);
  });

  it('an explicit configured model is used as asked (route explicit), whatever the count', async () => {
    const messages = promptWithTokens(12);
    await mock.clearRequests();
    const response = await gateway.chat({ model: 'gpt-4o', messages });
    assertRouted(response, { model: 'gpt-4o', route: 'explicit', promptTokens: 12 });
    assert.equal((await mock.chatRequests())[0].json.model, 'gpt-4o');
  });

  it('an explicit unknown model goes to the default provider and is priced as unknown, not $0', async () => {
    await mock.clearRequests();
    const response = await gateway.chat({ model: 'acme-unpriced-llm', messages: promptWithTokens(12) });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model'), 'acme-unpriced-llm');
    assert.equal(response.headers.get('x-turnout-route'), 'explicit');
    assert.equal((await mock.chatRequests())[0].json.model, 'acme-unpriced-llm');
    assert.equal(response.json.cost_usd, null, 'an unpriced call has cost_usd null');
    assert.notEqual(Number(response.headers.get('x-turnout-cost-usd') ?? 'NaN'), 0, 'no $0 cost header for an unpriced call');
  });
});

describe('routing.encoding', () => {
  // Hindi text: far fewer tokens in o200k_base than in cl100k_base.
  const messages = [{ role: 'user', content: 'नमस्ते दुनिया, आप कैसे हैं? मैं ठीक हूँ।' }];
  let gateway;
  let boundary;

  before(async () => {
    boundary = chatPromptTokens(messages, 'o200k_base') + 1;
    assert.ok(chatPromptTokens(messages, 'cl100k_base') >= boundary, 'the two encodings straddle the boundary');
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.routing.encoding = 'o200k_base';
        config.routing.tiers = [
          { name: 'small', below: boundary, model: 'gpt-4o-mini' },
          { name: 'large', model: 'gpt-4o' },
        ];
      },
    });
  });

  it('tiers compare the o200k_base count when configured', async () => {
    const response = await gateway.chat({ model: 'auto', messages });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-route'), 'small');
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-4o-mini');
    const decision = await gateway.request('POST', '/route', { json: { model: 'auto', messages } });
    assert.equal(decision.json.encoding, 'o200k_base');
    assert.equal(decision.json.prompt_tokens, boundary - 1);
  });
});

describe('the routing explanation shows the number that decided', () => {
  // Hindi text counts very differently in the two encodings: a tier decision made on the
  // cl100k_base count must be explainable even though gpt-4o counts in o200k_base.
  const messages = [{ role: 'user', content: 'नमस्ते दुनिया, आप कैसे हैं? मैं ठीक हूँ। '.repeat(4) }];
  let gateway;
  let routingCount;
  let modelCount;

  before(async () => {
    routingCount = chatPromptTokens(messages, 'cl100k_base');
    modelCount = chatPromptTokens(messages, 'o200k_base');
    assert.ok(modelCount < routingCount, 'the encodings differ on this prompt');
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.routing.encoding = 'cl100k_base';
        // The model's own count would fit the first tier; the routing count does not.
        config.routing.tiers = [
          { name: 'small', below: modelCount + 1, model: 'gpt-3.5-turbo' },
          { name: 'large', model: 'gpt-4o' },
        ];
      },
    });
  });

  it('POST /route gives the routing count and, separately, the model\'s own', async () => {
    const decision = await gateway.request('POST', '/route', { json: { model: 'auto', messages } });
    assert.equal(decision.status, 200, decision.text);
    assert.equal(decision.json.route, 'large');
    assert.equal(decision.json.prompt_tokens, routingCount);
    assert.equal(decision.json.encoding, 'cl100k_base');
    assert.equal(decision.json.model_prompt_tokens, modelCount);
    assert.equal(decision.json.model_encoding, 'o200k_base');

    const response = await gateway.chat({ model: 'auto', messages });
    assertRouted(response, { model: 'gpt-4o', route: 'large', promptTokens: routingCount });
    // gpt-4o's window fits the prompt's byte bound, so its own count is not taken for a
    // call that reports usage (§4.6; count-once.test.mjs covers when it is).
    assert.equal(response.headers.get('x-turnout-model-prompt-tokens'), null);
  });

  it('a model that counts in the routing encoding gets no second count', async () => {
    const short = [{ role: 'user', content: 'hi' }];
    const decision = await gateway.request('POST', '/route', { json: { model: 'auto', messages: short } });
    assert.equal(decision.json.route, 'small');
    assert.equal(decision.json.model_prompt_tokens, undefined);
    const response = await gateway.chat({ model: 'auto', messages: short });
    assert.equal(response.headers.get('x-turnout-model-prompt-tokens'), null);
  });
});

describe('context fit', () => {
  // gpt-3.5-turbo fits 64 tokens, gpt-4o-mini 100; a 20-token prompt is in the first tier.
  const PROMPT_TOKENS = 20;
  const SMALL_WINDOW = 64;
  const MEDIUM_WINDOW = 100;
  const messages = promptWithTokens(PROMPT_TOKENS);
  let gateway;

  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => {
        config.models['gpt-3.5-turbo'] = modelEntry({ ...TEST_MODELS['gpt-3.5-turbo'], context_window: SMALL_WINDOW });
        config.models['gpt-4o-mini'] = modelEntry({ ...TEST_MODELS['gpt-4o-mini'], context_window: MEDIUM_WINDOW });
      },
    });
  });

  const fitCases = [
    { label: 'prompt + max_tokens equal to the window fits', extra: { max_tokens: SMALL_WINDOW - PROMPT_TOKENS }, model: 'gpt-3.5-turbo', route: 'simple' },
    { label: 'one token over the window moves to the next tier that fits', extra: { max_tokens: SMALL_WINDOW - PROMPT_TOKENS + 1 }, model: 'gpt-4o-mini', route: 'context-fit' },
    { label: 'max_completion_tokens wins over max_tokens (fits)', extra: { max_completion_tokens: SMALL_WINDOW - PROMPT_TOKENS, max_tokens: 5000 }, model: 'gpt-3.5-turbo', route: 'simple' },
    { label: 'max_completion_tokens wins over max_tokens (too long)', extra: { max_completion_tokens: SMALL_WINDOW - PROMPT_TOKENS + 1, max_tokens: 1 }, model: 'gpt-4o-mini', route: 'context-fit' },
    { label: 'a tier model that does not fit either is skipped', extra: { max_tokens: MEDIUM_WINDOW - PROMPT_TOKENS + 1 }, model: 'gpt-4o', route: 'context-fit' },
  ];
  for (const { label, extra, model, route } of fitCases) {
    it(label, async () => {
      await mock.clearRequests();
      const response = await gateway.chat({ model: 'auto', messages, ...extra });
      assertRouted(response, { model, route, promptTokens: PROMPT_TOKENS });
      const forwarded = await mock.chatRequests();
      assert.equal(forwarded.length, 1);
      assert.equal(forwarded[0].json.model, model);
    });
  }

  const rejectCases = [
    { label: 'no model fits: 400 context_length_exceeded', body: { model: 'auto', messages, max_tokens: 200_000 } },
    { label: 'an explicit model that does not fit: 400 context_length_exceeded', body: { model: 'gpt-3.5-turbo', messages, max_tokens: SMALL_WINDOW - PROMPT_TOKENS + 1 } },
  ];
  for (const { label, body } of rejectCases) {
    it(`${label}, nothing sent upstream`, async () => {
      await mock.clearRequests();
      const response = await gateway.chat(body);
      assert.equal(response.status, 400, response.text);
      assert.deepEqual(openAIErrorProblems(response.json), []);
      assert.equal(response.json.error.code, 'context_length_exceeded');
      assert.equal(response.json.error.type, 'invalid_request_error');
      assert.ok(response.headers.get('x-request-id'));
      assert.deepEqual(await mock.chatRequests(), []);
    });
  }
});

describe('allow_unknown_models: false', () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => { config.routing.allow_unknown_models = false; },
    });
  });

  it('an unknown model is 404 model_not_found and never reaches the upstream', async () => {
    await mock.clearRequests();
    const response = await gateway.chat({ model: 'gpt-nonexistent-9', messages: promptWithTokens(12) });
    assert.equal(response.status, 404, response.text);
    assert.deepEqual(openAIErrorProblems(response.json), []);
    assert.equal(response.json.error.code, 'model_not_found');
    assert.match(response.json.error.message, /gpt-nonexistent-9/);
    assert.deepEqual(await mock.chatRequests(), []);
  });

  it('configured models and aliases still work', async () => {
    const explicit = await gateway.chat({ model: 'gpt-4o-mini', messages: promptWithTokens(12) });
    assertRouted(explicit, { model: 'gpt-4o-mini', route: 'explicit', promptTokens: 12 });
    const routed = await gateway.chat({ model: 'auto', messages: promptWithTokens(12) });
    assertRouted(routed, { model: 'gpt-3.5-turbo', route: 'simple', promptTokens: 12 });
  });
});

describe('image parts (docs/REFERENCE.md §4.5: tile formula)', () => {
  // A real PNG of 2048x1024 (all black) as a data: URL.
  function crc32(bytes) {
    let crc = 0xffffffff;
    for (const byte of bytes) {
      crc ^= byte;
      for (let bit = 0; bit < 8; bit += 1) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
    }
    return (crc ^ 0xffffffff) >>> 0;
  }
  function pngChunk(type, data) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typeAndData));
    return Buffer.concat([length, typeAndData, crc]);
  }
  function pngDataUrl(width, height) {
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(height, 4);
    header.set([8, 0, 0, 0, 0], 8);  // 8-bit greyscale
    const rows = Buffer.alloc((width + 1) * height);  // filter byte 0 + one byte per pixel
    const png = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      pngChunk('IHDR', header), pngChunk('IDAT', zlib.deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0)),
    ]);
    return `data:image/png;base64,${png.toString('base64')}`;
  }

  // gpt-4o: 85 base + 170 per 512-px tile after fitting in 2048x2048 and scaling the
  // shortest side to 768. 2048x1024 -> 1536x768 -> 3x2 tiles -> 85 + 6 * 170 = 1105.
  const imageCases = [
    { label: 'a 2048x1024 PNG, detail high', url: pngDataUrl(2048, 1024), detail: 'high', tokens: 85 + 6 * 170 },
    { label: 'a 2048x1024 PNG, detail low', url: pngDataUrl(2048, 1024), detail: 'low', tokens: 85 },
    { label: 'an image of unknown size', url: 'https://example.invalid/cat.png', detail: 'high', tokens: 765 },
    { label: 'an image of unknown size, detail low', url: 'https://example.invalid/cat.png', detail: 'low', tokens: 85 },
  ];
  let gateway;
  before(async () => { gateway = await startGateway({ upstreamUrl: mock.baseUrl }); });

  for (const { label, url, detail, tokens } of imageCases) {
    it(`${label}: ${tokens} tokens`, async () => {
      const text = 'What is in this picture?';
      const messages = [{ role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url, detail } }] }];
      const decision = await gateway.request('POST', '/route', { json: { model: 'gpt-4o', messages } });
      assert.equal(decision.status, 200, decision.text);
      assert.equal(decision.json.encoding, 'o200k_base', "gpt-4o's encoding");
      const expected = 3 + 3 + countTokens('user', 'o200k_base') + countTokens(text, 'o200k_base') + tokens;
      assert.equal(decision.json.prompt_tokens, expected);
    });
  }
});
