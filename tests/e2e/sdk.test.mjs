// End to end with the official `openai` npm SDK as the client, unchanged but for baseURL:
// chat with model "auto", a tools round trip, typed errors, models.list().
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { TEST_MODELS, startGateway, startMock, stopAll } from '../integration/lib/harness.mjs';
import { chatPromptTokens, femtoToNumber, usageCost } from '../integration/lib/reference.mjs';

const GATEWAY_KEY = 'tk-e2e-client-key-3f9a';

let mock;
let gateway;
let client;

before(async () => {
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => {
      config.server.api_keys = [GATEWAY_KEY];
      config.routing.allow_unknown_models = false;
    },
  });
  client = new OpenAI({ apiKey: GATEWAY_KEY, baseURL: gateway.baseUrl, maxRetries: 0, timeout: 20_000 });
});
after(stopAll);

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe('chat completions through the SDK', () => {
  it('model "auto": content, usage, cost and the x-turnout headers', async () => {
    const messages = [{ role: 'user', content: 'Say hello to the gateway.' }];
    const { data: completion, response } = await client.chat.completions
      .create({ model: 'auto', messages })
      .withResponse();
    assert.equal(completion.object, 'chat.completion');
    assert.equal(typeof completion.choices[0].message.content, 'string');
    assert.ok(completion.choices[0].message.content.length > 0);
    assert.equal(completion.choices[0].message.role, 'assistant');
    assert.ok(completion.usage.prompt_tokens > 0 && completion.usage.completion_tokens > 0);
    assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
    assert.equal(completion.cost_usd, femtoToNumber(usageCost(completion.usage, TEST_MODELS['gpt-3.5-turbo'])));
    assert.equal(typeof completion.latency_ms, 'number');

    assert.equal(response.headers.get('x-turnout-model'), 'gpt-3.5-turbo');
    assert.equal(response.headers.get('x-turnout-route'), 'simple');
    assert.equal(response.headers.get('x-turnout-prompt-tokens'), String(chatPromptTokens(messages)));
    assert.equal(response.headers.get('x-turnout-attempts'), '1');
    assert.equal(Number(response.headers.get('x-turnout-cost-usd')), completion.cost_usd);
    assert.ok(response.headers.get('x-request-id'));
    assert.equal(completion._request_id, response.headers.get('x-request-id'), 'the SDK sees the request id');
  });

  it('a tools round trip: tool call out, tool result back, answer', async () => {
    const messages = [{ role: 'user', content: 'What is the weather in Lisbon?' }];
    const first = await client.chat.completions.create({ model: 'auto', messages, tools: [WEATHER_TOOL], tool_choice: 'auto' });
    const { message } = first.choices[0];
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    assert.equal(message.tool_calls.length, 1);
    const [toolCall] = message.tool_calls;
    assert.equal(toolCall.type, 'function');
    assert.equal(toolCall.function.name, 'get_weather');
    assert.equal(typeof JSON.parse(toolCall.function.arguments), 'object');

    const toolResult = { role: 'tool', tool_call_id: toolCall.id, content: JSON.stringify({ city: 'Lisbon', celsius: 21 }) };
    const followUp = [...messages, message, toolResult];
    await mock.clearRequests();
    const second = await client.chat.completions.create({ model: 'auto', messages: followUp, tools: [WEATHER_TOOL] });
    assert.equal(second.object, 'chat.completion');
    assert.ok(second.choices.length > 0);

    const [forwarded] = await mock.chatRequests();
    assert.deepEqual(forwarded.json.messages, JSON.parse(JSON.stringify(followUp)), 'the assistant tool call and the tool result reach the upstream');
    assert.deepEqual(forwarded.json.tools, [WEATHER_TOOL]);
  });

  it('models.list() has the configured models and "auto"', async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.deepEqual(ids.sort(), [...Object.keys(TEST_MODELS), 'auto'].sort());
  });
});

describe('errors surface as the SDK typed errors', () => {
  it('messages: [] is a BadRequestError (400)', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'auto', messages: [] }), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, `got ${error?.constructor?.name}: ${error?.message}`);
      assert.equal(error.status, 400);
      assert.equal(error.type, 'invalid_request_error');
      assert.ok(error.headers['x-request-id']);
      return true;
    });
  });

  it('a wrong gateway key is an AuthenticationError (401), the key not echoed', async () => {
    const wrongKey = 'tk-e2e-wrong-key-00';
    const intruder = new OpenAI({ apiKey: wrongKey, baseURL: gateway.baseUrl, maxRetries: 0, timeout: 20_000 });
    await assert.rejects(intruder.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] }), (error) => {
      assert.ok(error instanceof OpenAI.AuthenticationError, `got ${error?.constructor?.name}: ${error?.message}`);
      assert.equal(error.status, 401);
      assert.ok(!JSON.stringify(error.error).includes(wrongKey));
      return true;
    });
  });

  it('an unknown model is a NotFoundError (404, model_not_found)', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'gpt-nonexistent-9', messages: [{ role: 'user', content: 'hi' }] }), (error) => {
      assert.ok(error instanceof OpenAI.NotFoundError, `got ${error?.constructor?.name}: ${error?.message}`);
      assert.equal(error.status, 404);
      assert.equal(error.code, 'model_not_found');
      return true;
    });
  });

  it('a prompt too long for every model is a BadRequestError with code context_length_exceeded', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1_000_000 }), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, `got ${error?.constructor?.name}`);
      assert.equal(error.code, 'context_length_exceeded');
      return true;
    });
  });

  it('an upstream 429 is a RateLimitError, an upstream 500 an InternalServerError', async () => {
    const body = { model: 'auto', messages: [{ role: 'user', content: 'hi' }] };
    try {
      await mock.configure({ fail_status: 429, fail_first: 1 });
      await assert.rejects(client.chat.completions.create(body), (error) => {
        assert.ok(error instanceof OpenAI.RateLimitError, `got ${error?.constructor?.name}: ${error?.message}`);
        return true;
      });
      await mock.configure({ fail_status: 500, fail_first: 1 });
      await assert.rejects(client.chat.completions.create(body), (error) => {
        assert.ok(error instanceof OpenAI.InternalServerError, `got ${error?.constructor?.name}: ${error?.message}`);
        assert.equal(error.status, 500);
        return true;
      });
    } finally {
      await mock.reset();
    }
  });
});
