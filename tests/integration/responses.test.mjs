// POST /v1/responses (docs/REFERENCE.md §2.15) through the official `openai` SDK and the
// Vercel AI SDK (whose default `openai(model)` calls the Responses API): routing by tiers,
// exact metering from usage.input_tokens/output_tokens with cost_usd, typed SSE events
// with usage on response.completed, one ledger record per call (endpoint "responses"),
// retries before the first event, a cut stream ending with an `error` event, a client
// that goes away cancelling the upstream, POST /v1/responses/input_tokens answered by the
// gateway alone, stored-response calls passed to the provider, and bad input refused with
// a 400 naming the field before anything reaches the upstream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';

import { TEST_MODELS, recordOf as recordOfCall, sleep, startForwardingSuite, stopAll } from './lib/harness.mjs';
import { femtoToDecimal, usageCost } from './lib/reference.mjs';

let mock;
let gateway;
let client;

before(async () => {
  ({ mock, gateway } = await startForwardingSuite());
  client = new OpenAI({ apiKey: 'unused-no-gateway-keys', baseURL: gateway.baseUrl, maxRetries: 0, timeout: 20_000 });
});
after(stopAll);

const responseCalls = () => mock.requestsTo('/v1/responses');
const recordOf = (id) => recordOfCall(gateway, id);

// Exact cost of a Responses usage at the test prices of `model`.
function responsesCost(usage, model) {
  return femtoToDecimal(usageCost({
    prompt_tokens: usage.input_tokens,
    completion_tokens: usage.output_tokens,
    prompt_tokens_details: { cached_tokens: usage.input_tokens_details?.cached_tokens ?? 0 },
  }, TEST_MODELS[model]));
}

// POSTs a streaming body and collects the raw SSE events; `onEvent` may end the request.
function rawStream(body, { headers = {}, onEvent } = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: '127.0.0.1', port: gateway.port, method: 'POST', path: '/v1/responses',
      headers: { 'content-type': 'application/json', ...headers },
    }, (response) => {
      const result = { status: response.status, headers: response.headers, events: [], text: '' };
      response.setEncoding('utf8');
      response.on('data', (chunk) => {
        result.text += chunk;
        let end;
        while ((end = result.text.indexOf('\n\n')) !== -1) {
          const raw = result.text.slice(0, end);
          result.text = result.text.slice(end + 2);
          const type = /^event: (.*)$/m.exec(raw)?.[1];
          const data = /^data: (.*)$/m.exec(raw)?.[1];
          let json = null;
          try { json = JSON.parse(data); } catch { /* kept as null */ }
          result.events.push({ type, json, raw });
          onEvent?.(result, request);
        }
      });
      response.on('end', () => resolve(result));
      response.on('error', () => resolve(result));
      response.on('close', () => resolve(result));
    });
    request.on('error', (error) => (error.code === 'ECONNRESET' ? resolve({ events: [] }) : reject(error)));
    request.end(JSON.stringify(body));
  });
}

describe('responses through the openai SDK', () => {
  it('a string input: routed by tier, metered exactly, recorded once', async () => {
    await mock.reset();
    const { data: response, response: raw } = await client.responses
      .create({ model: 'auto', input: 'Say hello in five words.' }, { headers: { 'x-request-id': 'resp-string' } })
      .withResponse();
    assert.equal(response.object, 'response');
    assert.equal(response.status, 'completed');
    assert.ok(response.output_text.length > 0);
    assert.equal(raw.headers.get('x-turnout-model'), 'gpt-3.5-turbo');
    assert.equal(raw.headers.get('x-turnout-route'), 'simple');
    const cost = responsesCost(response.usage, 'gpt-3.5-turbo');
    assert.equal(raw.headers.get('x-turnout-cost-usd'), cost);
    assert.equal(response.cost_usd, Number(cost));
    const [upstream] = await responseCalls();
    assert.equal(upstream.target, '/v1/responses');
    assert.equal(JSON.parse(upstream.body).model, 'gpt-3.5-turbo');
    // The gateway's count agrees with the usage the mock reports for the same input.
    assert.equal(raw.headers.get('x-turnout-prompt-tokens'), String(response.usage.input_tokens));

    const record = await recordOf('resp-string');
    assert.equal(record.endpoint, 'responses');
    assert.equal(record.prompt_tokens, response.usage.input_tokens);
    assert.equal(record.completion_tokens, response.usage.output_tokens);
    assert.equal(record.usage_reported, true);
    assert.equal(record.count_estimated, false);
    assert.equal(record.count_partial, false);
  });

  it('message items and a function tool: the model calls the tool', async () => {
    const response = await client.responses.create({
      model: 'gpt-4o-mini',
      instructions: 'Use the tools.',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'What is the weather in Paris?' }] },
      ],
      tools: [{
        type: 'function', name: 'get_weather', description: 'Weather for a city', strict: false,
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      }],
    });
    const call = response.output.find((item) => item.type === 'function_call');
    assert.ok(call, JSON.stringify(response.output));
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(Object.keys(JSON.parse(call.arguments)), ['city']);
    assert.equal(response.cost_usd, Number(responsesCost(response.usage, 'gpt-4o-mini')));
  });

  it('function call items make the count an estimate, recorded as such', async () => {
    await client.responses.create({
      model: 'gpt-4o-mini',
      input: [
        { role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '18C and sunny' },
      ],
    }, { headers: { 'x-request-id': 'resp-estimated' } });
    const record = await recordOf('resp-estimated');
    assert.equal(record.count_estimated, true);
  });

  it('stream: true: typed events via for await, usage on response.completed, cost exact', async () => {
    await mock.reset();
    const stream = await client.responses.create({ model: 'auto', input: 'Stream me a short answer.', stream: true },
      { headers: { 'x-request-id': 'resp-stream' } });
    const types = [];
    let text = '';
    let completed;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event;
    }
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(types.includes('response.output_text.delta'));
    assert.ok(text.length > 0);
    const usage = completed.response.usage;
    assert.ok(usage.input_tokens > 0 && usage.output_tokens > 0);
    assert.equal(completed.cost_usd, Number(responsesCost(usage, 'gpt-3.5-turbo')));
    const record = await recordOf('resp-stream');
    assert.equal(record.endpoint, 'responses');
    assert.equal(record.stream, true);
    assert.equal(record.prompt_tokens, usage.input_tokens);
    assert.equal(record.completion_tokens, usage.output_tokens);
    assert.equal(record.status, 200);
    assert.equal(record.error_type, '');
  });

  it('POST /v1/responses/input_tokens: the gateway\'s own count, no upstream call', async () => {
    await mock.reset();
    const body = { model: 'gpt-4o', instructions: 'Be brief.', input: 'How many tokens is this?' };
    const counted = await gateway.request('POST', '/v1/responses/input_tokens', { json: body });
    assert.equal(counted.status, 200, counted.text);
    assert.equal(counted.json.object, 'response.input_tokens');
    assert.equal(counted.json.count_estimated, false);
    assert.equal((await responseCalls()).length, 0, 'nothing reached the upstream');
    const answered = await client.responses.create(body);
    assert.equal(counted.json.input_tokens, answered.usage.input_tokens, 'the count the mock bills');
  });

  it('POST /route takes a Responses body: the same count, and an estimate or partial count says so', async () => {
    await mock.reset();
    const plain = { model: 'auto', instructions: 'Be brief.', input: 'Which tier am I?' };
    const routed = await gateway.request('POST', '/route', { json: plain });
    assert.equal(routed.status, 200, routed.text);
    const counted = await gateway.request('POST', '/v1/responses/input_tokens', { json: plain });
    assert.equal(routed.json.prompt_tokens, counted.json.input_tokens);
    assert.equal(routed.json.model, counted.json.model);
    assert.equal(routed.json.count_estimated, false);
    assert.equal(routed.json.count_partial, false);

    const withCall = await gateway.request('POST', '/route', { json: { model: 'auto', input: [
      { role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '18C and sunny' },
    ] } });
    assert.equal(withCall.status, 200, withCall.text);
    assert.equal(withCall.json.count_estimated, true);

    const continuation = await gateway.request('POST', '/route', {
      json: { model: 'auto', input: 'And then?', previous_response_id: 'resp_123' } });
    assert.equal(continuation.status, 200, continuation.text);
    assert.equal(continuation.json.count_partial, true);

    const bad = await gateway.request('POST', '/route', { json: { model: 'auto', input: 5 } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.param, 'input');
    assert.equal((await responseCalls()).length, 0, 'nothing reached the upstream');
  });

  it('stored responses: GET/DELETE /v1/responses/{id}, cancel and input_items go to the provider', async () => {
    await mock.reset();
    const fetched = await gateway.request('GET', '/v1/responses/resp_abc123?include[]=x');
    const deleted = await gateway.request('DELETE', '/v1/responses/resp_abc123');
    const cancelled = await gateway.request('POST', '/v1/responses/resp_abc123/cancel');
    const items = await gateway.request('GET', '/v1/responses/resp_abc123/input_items?limit=5');
    // The mock stores nothing: its 404s come back as they are.
    for (const answer of [fetched, deleted, cancelled, items]) assert.equal(answer.status, 404, answer.text);
    assert.deepEqual((await responseCalls()).map((r) => `${r.method} ${r.target}`), [
      'GET /v1/responses/resp_abc123?include[]=x',
      'DELETE /v1/responses/resp_abc123',
      'POST /v1/responses/resp_abc123/cancel',
      'GET /v1/responses/resp_abc123/input_items?limit=5',
    ]);
    const unknown = await gateway.request('GET', '/v1/responses/resp_abc123/other');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, 'unknown_url');
  });
});

describe('responses through the Vercel AI SDK (openai(\'auto\') is the Responses API)', () => {
  it('generateText and streamText', async () => {
    await mock.reset();
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: 'unused-no-gateway-keys' });
    const generated = await generateText({ model: openai('auto'), prompt: 'Write one sentence.', maxRetries: 0 });
    assert.ok(generated.text.length > 0);
    assert.ok(generated.usage.inputTokens > 0);
    assert.ok(generated.usage.outputTokens > 0);

    const streamed = streamText({ model: openai('auto'), prompt: 'Write another sentence.', maxRetries: 0 });
    let text = '';
    for await (const delta of streamed.textStream) text += delta;
    assert.ok(text.length > 0);
    const usage = await streamed.usage;
    assert.ok(usage.inputTokens > 0 && usage.outputTokens > 0);
    assert.deepEqual((await responseCalls()).map((r) => r.target), ['/v1/responses', '/v1/responses']);
  });
});

describe('responses: faults', () => {
  it('a 503 before the first event is retried; the client sees one clean stream', async () => {
    await mock.reset();
    await mock.configure({ fail_status: 503, fail_first: 1 });
    const result = await rawStream({ model: 'auto', input: 'retry me', stream: true });
    assert.equal(result.headers['x-turnout-attempts'], '2');
    assert.equal(result.events.at(-1).type, 'response.completed');
    assert.equal((await responseCalls()).length, 2);
    await mock.reset();
  });

  it('a stream cut midway ends with an error event, never response.completed; one ledger record', async () => {
    await mock.reset();
    await mock.configure({ reset_after_chunks: 5 });
    const result = await rawStream({ model: 'auto', input: 'cut me', stream: true }, { headers: { 'x-request-id': 'resp-cut' } });
    await mock.reset();
    const types = result.events.map((event) => event.type);
    assert.ok(!types.includes('response.completed'), types.join(','));
    assert.equal(types.at(-1), 'error');
    const error = result.events.at(-1).json;
    assert.equal(error.type, 'error');
    assert.equal(error.code, 'upstream_stream_error');
    const record = await recordOf('resp-cut');
    assert.equal(record.error_type, 'upstream_stream_error');
    assert.equal(record.endpoint, 'responses');
  });

  it('a client that goes away cancels the upstream stream; recorded as 499', async () => {
    await mock.reset();
    await mock.configure({ chunks: 40, chunk_delay_ms: 100 });
    const before = await mock.control('GET', '/_mock/stats');
    const started = performance.now();
    await rawStream({ model: 'auto', input: 'leave early', stream: true }, {
      headers: { 'x-request-id': 'resp-gone' },
      onEvent: (result, request) => {
        if (result.events.filter((e) => e.type === 'response.output_text.delta').length >= 2) request.destroy();
      },
    });
    for (;;) {
      const stats = await mock.control('GET', '/_mock/stats');
      if (stats.streams_active === 0 && stats.streams_client_gone === before.streams_client_gone + 1) break;
      assert.ok(performance.now() - started < 2_500, `upstream still streaming: ${JSON.stringify(stats)}`);
      await sleep(20);
    }
    await mock.reset();
    const record = await recordOf('resp-gone');
    assert.equal(record.status, 499);
    assert.equal(record.error_type, 'client_closed');
  });
});

describe('responses: bad input', () => {
  const cases = [
    [{ model: 'auto' }, 'input'],
    [{ model: 'auto', input: 5 }, 'input'],
    [{ model: 'auto', input: [{ content: 'x' }] }, 'input[0].role'],
    [{ model: 'auto', input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, 'input[0].content[0].text'],
    [{ model: 'auto', input: 'x', tools: [{ type: 'function' }] }, 'tools[0].name'],
    [{ model: 'auto', input: 'x', stream: 'yes' }, 'stream'],
    [{ model: 'auto', input: 'x', max_output_tokens: -5 }, 'max_output_tokens'],
    [{ model: 'gpt-3.5-turbo', input: 'x', max_output_tokens: 100000 }, 'input'],
  ];
  for (const [body, param] of cases) {
    it(`${JSON.stringify(body).slice(0, 80)}: 400 naming '${param}', nothing sent upstream`, async () => {
      await mock.reset();
      const response = await gateway.request('POST', '/v1/responses', { json: body });
      assert.equal(response.status, 400, response.text);
      assert.equal(response.json.error.param, param);
      assert.equal((await responseCalls()).length, 0);
    });
  }

  it('a top-level key twice: 400 duplicate_key naming it, nothing sent upstream', async () => {
    await mock.reset();
    const response = await gateway.request('POST', '/v1/responses', {
      body: '{"model":"auto","input":"hi","stream":false,"stream":true}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(response.status, 400, response.text);
    assert.equal(response.json.error.code, 'duplicate_key');
    assert.equal(response.json.error.param, 'stream');
    assert.equal((await responseCalls()).length, 0);
  });
});
