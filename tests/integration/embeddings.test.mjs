// POST /v1/embeddings (docs/REFERENCE.md §2.10) through the official `openai` SDK and the Vercel AI SDK: every
// input shape, base64 and dimensions, the exact count (tiktoken cl100k_base) and cost
// (built-in prices per 1,000 input tokens), one ledger record per call with endpoint
// "embeddings", retries and fallbacks before the answer, and bad input refused with a
// 400 naming the field before anything reaches the upstream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { createOpenAI } from '@ai-sdk/openai';
import { embed, embedMany } from 'ai';
import OpenAI from 'openai';

import { exportedRecords as exportedRecordsOf, startForwardingSuite, stopAll } from './lib/harness.mjs';
import { countTokens, femtoToDecimal, tokenCost } from './lib/reference.mjs';

// OpenAI's prices per 1,000 input tokens (the gateway's built-in table).
const PRICE_PER_1K = {
  'text-embedding-3-small': '0.00002',
  'text-embedding-3-large': '0.00013',
  'text-embedding-ada-002': '0.0001',
};

let mock;
let gateway;
let client;

before(async () => {
  ({ mock, gateway } = await startForwardingSuite({
    configure: (config) => {
      config.models['text-embedding-3-small'] = { provider: 'openai' };
      config.models['text-embedding-ada-002'] = { provider: 'openai' };
      config.routing.fallbacks = { 'text-embedding-3-small': ['text-embedding-ada-002'] };
      config.routing.embedding_aliases = { embed: 'text-embedding-3-large' };
    },
  }));
  client = new OpenAI({ apiKey: 'unused-no-gateway-keys', baseURL: gateway.baseUrl, maxRetries: 0, timeout: 20_000 });
});
after(stopAll);

const embeddingCalls = () => mock.requestsTo('/v1/embeddings');
const exportedRecords = () => exportedRecordsOf(gateway);

function decodeFloat32(base64) {
  const bytes = Buffer.from(base64, 'base64');
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
}

describe('embeddings through the openai SDK', () => {
  it('a string: one vector of 1536 floats, usage and cost exact', async () => {
    await mock.reset();
    const text = 'The quick brown fox jumps over the lazy dog.';
    const { data: result, response } = await client.embeddings
      .create({ model: 'text-embedding-3-small', input: text, encoding_format: 'float' }, { headers: { 'x-request-id': 'emb-string' } })
      .withResponse();
    assert.equal(result.object, 'list');
    assert.equal(result.data.length, 1);
    assert.equal(result.data[0].embedding.length, 1536);
    const tokens = countTokens(text);
    assert.equal(result.usage.prompt_tokens, tokens);
    assert.equal(response.headers.get('x-turnout-prompt-tokens'), String(tokens), 'the gateway counted it exactly');
    assert.equal(response.headers.get('x-turnout-model'), 'text-embedding-3-small');
    assert.equal(response.headers.get('x-turnout-route'), 'explicit');
    const expectedCost = femtoToDecimal(tokenCost(tokens, PRICE_PER_1K['text-embedding-3-small']));
    assert.equal(response.headers.get('x-turnout-cost-usd'), expectedCost);
    assert.equal(result.cost_usd, Number(expectedCost));

    const [upstream] = await embeddingCalls();
    assert.equal(upstream.target, '/v1/embeddings');
    assert.equal(JSON.parse(upstream.body).input, text, 'the body reaches the provider unchanged');

    const record = (await exportedRecords()).find((r) => r.id === 'emb-string');
    assert.ok(record, 'one ledger record for the call');
    assert.equal(record.endpoint, 'embeddings');
    assert.equal(record.prompt_tokens, tokens);
    assert.equal(record.completion_tokens, 0);
    assert.equal(record.counted_prompt_tokens, tokens);
    assert.equal(String(record.cost_usd), String(Number(expectedCost)));
  });

  it('an alias of routing.embedding_aliases sends the call to the model it names', async () => {
    await mock.reset();
    const text = 'aliased embeddings';
    const { data: result, response } = await client.embeddings
      .create({ model: 'embed', input: text, encoding_format: 'float' }, { headers: { 'x-request-id': 'emb-alias' } })
      .withResponse();
    assert.equal(result.data[0].embedding.length, 3072, 'text-embedding-3-large answered');
    assert.equal(response.headers.get('x-turnout-model'), 'text-embedding-3-large');
    assert.equal(response.headers.get('x-turnout-route'), 'alias:embed');
    const tokens = countTokens(text);
    assert.equal(response.headers.get('x-turnout-cost-usd'), femtoToDecimal(tokenCost(tokens, PRICE_PER_1K['text-embedding-3-large'])));
    const [upstream] = await embeddingCalls();
    assert.equal(JSON.parse(upstream.body).model, 'text-embedding-3-large');
    const record = (await exportedRecords()).find((r) => r.id === 'emb-alias');
    assert.equal(record.requested_model, 'embed');
    assert.equal(record.model, 'text-embedding-3-large');
    assert.equal(record.route, 'alias:embed');
  });

  it('a batch of strings: one vector per input, in order, usage the sum', async () => {
    const inputs = ['first input', 'a second, longer input with more words in it', 'third'];
    const result = await client.embeddings.create({ model: 'text-embedding-3-small', input: inputs, encoding_format: 'float' });
    assert.deepEqual(result.data.map((d) => d.index), [0, 1, 2]);
    const tokens = inputs.reduce((sum, text) => sum + countTokens(text), 0);
    assert.equal(result.usage.prompt_tokens, tokens);
    assert.equal(result.cost_usd, Number(femtoToDecimal(tokenCost(tokens, PRICE_PER_1K['text-embedding-3-small']))));
  });

  it('token arrays count their length; the SDK default (base64) decodes to the same floats', async () => {
    const result = await client.embeddings.create({ model: 'text-embedding-3-small', input: [[9906, 1917], [40, 1097, 264]] });
    assert.equal(result.usage.prompt_tokens, 5);
    assert.equal(result.data[0].embedding.length, 1536);

    const floats = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'same text', encoding_format: 'float' });
    const encoded = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'same text', encoding_format: 'base64' });
    assert.equal(typeof encoded.data[0].embedding, 'string', 'explicit base64 stays a string');
    const decoded = decodeFloat32(encoded.data[0].embedding);
    assert.equal(decoded.length, 1536);
    assert.deepEqual(decoded, floats.data[0].embedding.map((v) => Math.fround(v)));
  });

  it('dimensions shortens the vector; -3-large is 3072 wide and priced as such', async () => {
    const full = await client.embeddings.create({ model: 'text-embedding-3-large', input: 'hello', encoding_format: 'float' });
    assert.equal(full.data[0].embedding.length, 3072);
    assert.equal(full.cost_usd, Number(femtoToDecimal(tokenCost(1, PRICE_PER_1K['text-embedding-3-large']))));
    const short = await client.embeddings.create({ model: 'text-embedding-3-large', input: 'hello', dimensions: 256, encoding_format: 'float' });
    assert.equal(short.data[0].embedding.length, 256);
  });

  it('GET /v1/models lists the embedding models', async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    for (const name of Object.keys(PRICE_PER_1K)) assert.ok(ids.includes(name), `${name} in ${ids}`);
  });
});

describe('embeddings through the Vercel AI SDK', () => {
  it('embed and embedMany: vectors of the model width, usage the exact count', async () => {
    const provider = createOpenAI({ baseURL: gateway.baseUrl, apiKey: 'unused-no-gateway-keys' });
    const model = provider.embedding('text-embedding-3-small');
    const one = await embed({ model, value: 'sunny day at the beach', maxRetries: 0 });
    assert.equal(one.embedding.length, 1536);
    assert.equal(one.usage.tokens, countTokens('sunny day at the beach'));

    const values = ['rainy day in the city', 'snowy night in the mountains', 'a third'];
    const many = await embedMany({ model, values, maxRetries: 0 });
    assert.equal(many.embeddings.length, 3);
    for (const embedding of many.embeddings) assert.equal(embedding.length, 1536);
    assert.equal(many.usage.tokens, values.reduce((sum, text) => sum + countTokens(text), 0));
  });
});

describe('embeddings: resilience', () => {
  it('a 503 is retried on the same model', async () => {
    await mock.reset();
    await mock.configure({ fail_status: 503, fail_first: 1 });
    const response = await gateway.request('POST', '/v1/embeddings', { json: { model: 'text-embedding-3-small', input: 'retry me' } });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-attempts'), '2');
    assert.equal((await embeddingCalls()).length, 2);
  });

  it('a model that keeps failing falls back: route fallback:<model>', async () => {
    await mock.reset();
    await mock.configure({ fail_status: 503, fault_models: ['text-embedding-3-small'] });
    const response = await gateway.request('POST', '/v1/embeddings', {
      json: { model: 'text-embedding-3-small', input: 'fall back' }, headers: { 'x-request-id': 'emb-fallback' },
    });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model'), 'text-embedding-ada-002');
    assert.equal(response.headers.get('x-turnout-route'), 'fallback:text-embedding-3-small');
    assert.deepEqual((await embeddingCalls()).map((call) => JSON.parse(call.body).model),
      ['text-embedding-3-small', 'text-embedding-3-small', 'text-embedding-ada-002']);
    const tokens = countTokens('fall back');
    assert.equal(response.json.cost_usd, Number(femtoToDecimal(tokenCost(tokens, PRICE_PER_1K['text-embedding-ada-002']))));
    const record = (await exportedRecords()).find((r) => r.id === 'emb-fallback');
    assert.equal(record.endpoint, 'embeddings');
    assert.equal(record.attempts, 3);
    await mock.reset();
  });

  it('a malformed upstream answer is a 502 with a ledger record', async () => {
    await mock.reset();
    await mock.configure({ malformed: true });
    const response = await gateway.request('POST', '/v1/embeddings', {
      json: { model: 'text-embedding-3-small', input: 'broken' }, headers: { 'x-request-id': 'emb-malformed' },
    });
    assert.equal(response.status, 502);
    assert.equal(response.json.error.code, 'upstream_malformed');
    const record = (await exportedRecords()).find((r) => r.id === 'emb-malformed');
    assert.equal(record.status, 502);
    assert.equal(record.error_type, 'upstream_malformed');
    await mock.reset();
  });
});

describe('embeddings in /metrics', () => {
  it('counted by endpoint, with their exact cost', async () => {
    const metrics = await gateway.request('GET', '/metrics');
    const requests = /^turnout_endpoint_requests_total\{endpoint="embeddings",status="200"\} (\d+)$/m.exec(metrics.text);
    assert.ok(requests && Number(requests[1]) >= 8, metrics.text);
    const cost = /^turnout_endpoint_cost_usd_total\{endpoint="embeddings"\} ([0-9.]+)$/m.exec(metrics.text);
    assert.ok(cost && Number(cost[1]) > 0, metrics.text);
    assert.ok(!/endpoint="chat"/.test(metrics.text), 'no chat call was made');
  });
});

describe('embeddings in /stats', () => {
  it('the endpoints breakdown has them apart, adding up to the totals', async () => {
    const stats = await gateway.stats();
    const embeddings = stats.endpoints.embeddings;
    assert.ok(embeddings, JSON.stringify(stats.endpoints));
    assert.deepEqual(Object.keys(stats.endpoints), ['embeddings'], 'no chat or Responses call was made');
    assert.equal(embeddings.calls, stats.total_calls);
    assert.equal(embeddings.errors, stats.errors);
    assert.equal(embeddings.prompt_tokens, stats.prompt_tokens);
    assert.equal(embeddings.completion_tokens, 0);
    assert.equal(embeddings.cost_usd, stats.total_cost_usd);
  });
});

describe('embeddings: bad input', () => {
  const cases = [
    [{ input: 'x' }, 'model'],
    [{ model: 'auto', input: 'x' }, 'model'],
    [{ model: 'text-embedding-3-small' }, 'input'],
    [{ model: 'text-embedding-3-small', input: '' }, 'input'],
    [{ model: 'text-embedding-3-small', input: [] }, 'input'],
    [{ model: 'text-embedding-3-small', input: ['ok', 3] }, 'input'],
    [{ model: 'text-embedding-3-small', input: [1, -1] }, 'input'],
    [{ model: 'text-embedding-3-small', input: 'x', dimensions: 0 }, 'dimensions'],
    [{ model: 'text-embedding-3-small', input: 'x', encoding_format: 'int8' }, 'encoding_format'],
    [{ model: 'text-embedding-3-small', input: [Array(9000).fill(1)] }, 'input'],
  ];
  for (const [body, param] of cases) {
    it(`${JSON.stringify(body).slice(0, 80)}: 400 naming '${param}', nothing sent upstream`, async () => {
      await mock.reset();
      const response = await gateway.request('POST', '/v1/embeddings', { json: body });
      assert.equal(response.status, 400, response.text);
      assert.equal(response.json.error.param, param);
      assert.equal(response.json.error.type, 'invalid_request_error');
      assert.equal((await embeddingCalls()).length, 0);
    });
  }
});
