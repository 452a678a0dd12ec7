// What the gateway forwards and what it answers (docs/REFERENCE.md §2.2): every field it
// does not interpret reaches the upstream unchanged with `model` replaced by the upstream
// name, the upstream sees the provider's key (never the client's), and the response body
// is the upstream's chat.completion plus cost_usd and latency_ms.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { startGateway, startMock, stopAll, TEST_MODELS, modelEntry, UPSTREAM_KEY } from './lib/harness.mjs';
import { femtoToNumber, promptWithTokens, usageCost } from './lib/reference.mjs';

const CLIENT_KEY = 'tk-client-passthrough-51c0';
const UPSTREAM_NAME = 'gpt-4o-2024-08-06';

let mock;
let gateway;

before(async () => {
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => {
      config.server.api_keys = [CLIENT_KEY];
      config.models['gpt-4o'] = modelEntry({ ...TEST_MODELS['gpt-4o'], upstream_name: UPSTREAM_NAME });
      config.providers.openai.headers = { 'X-Turnout-Test-Extra': 'extra-header-value' };
    },
  });
  gateway.apiKey = CLIENT_KEY;
});
after(stopAll);

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};

// Every field the gateway does not interpret, with values of every JSON type.
const UNINTERPRETED_FIELDS = {
  tools: [WEATHER_TOOL],
  tool_choice: { type: 'function', function: { name: 'get_weather' } },
  parallel_tool_calls: false,
  response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } },
  temperature: 0.7,
  top_p: 0.95,
  seed: 12345,
  logprobs: true,
  top_logprobs: 3,
  n: 2,
  stop: ['\n\nUser:', 'END'],
  user: 'end-user-42',
  metadata: { team: 'search', ticket: 'T-1' },
  presence_penalty: -0.5,
  frequency_penalty: 0.25,
  logit_bias: { 50256: -100 },
  store: false,
  service_tier: 'default',
  x_vendor_extension: { nested: [1, 'two', null, true, { deep: 1.5e-7 }] },
};

async function forwardedBody() {
  const forwarded = await mock.chatRequests();
  assert.equal(forwarded.length, 1, 'exactly one upstream call');
  return forwarded[0];
}

describe('request passthrough', () => {
  it('every uninterpreted field reaches the upstream unchanged; model becomes the upstream name', async () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Weather in Zürich? 🌦', name: 'alice' },
    ];
    await mock.clearRequests();
    const response = await gateway.chat({ model: 'gpt-4o', messages, ...UNINTERPRETED_FIELDS });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-4o', 'the header names the configured model');
    const { json } = await forwardedBody();
    assert.equal(json.model, UPSTREAM_NAME);
    assert.deepEqual(json.messages, messages);
    for (const [field, value] of Object.entries(UNINTERPRETED_FIELDS)) {
      assert.deepEqual(json[field], value, `field ${field}`);
    }
  });

  it('a routed request forwards its fields too, with the tier model', async () => {
    await mock.clearRequests();
    const response = await gateway.chat({ model: 'auto', messages: promptWithTokens(12), ...UNINTERPRETED_FIELDS });
    assert.equal(response.status, 200, response.text);
    const { json } = await forwardedBody();
    assert.equal(json.model, 'gpt-3.5-turbo');
    for (const [field, value] of Object.entries(UNINTERPRETED_FIELDS)) {
      assert.deepEqual(json[field], value, `field ${field}`);
    }
  });

  it('an int64 seed beyond 2^53 reaches the upstream digit for digit', async () => {
    // 2^53 + 1 is a valid int64 seed but not a double: a gateway that re-encodes numbers
    // through double would send 9007199254740992.
    const raw = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"seed":9007199254740993}';
    await mock.clearRequests();
    const response = await gateway.request('POST', '/v1/chat/completions', { body: raw, headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 200, response.text);
    const { body } = await forwardedBody();
    assert.match(body, /"seed"\s*:\s*9007199254740993\b/, `forwarded body: ${body}`);
  });

  it('the upstream gets the provider key and configured headers, never the client key', async () => {
    await mock.clearRequests();
    const response = await gateway.chat({ model: 'auto', messages: promptWithTokens(12) });
    assert.equal(response.status, 200, response.text);
    const { headers, body } = await forwardedBody();
    assert.equal(headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.equal(headers['x-turnout-test-extra'], 'extra-header-value');
    const everything = JSON.stringify(headers) + body;
    assert.ok(!everything.includes(CLIENT_KEY), 'the client key is not forwarded');
  });

  it('no key appears in responses or the access log', async () => {
    const response = await gateway.chat({ model: 'auto', messages: promptWithTokens(12) }, { 'x-request-id': 'it-passthrough-log-1' });
    assert.equal(response.status, 200);
    const headerText = JSON.stringify([...response.headers]);
    for (const key of [CLIENT_KEY, UPSTREAM_KEY]) {
      assert.ok(!response.text.includes(key) && !headerText.includes(key), 'no key in the response');
    }
    // The access-log line may be written just after the response.
    const deadline = Date.now() + 5000;
    let entry;
    while (!(entry = gateway.handle.logEntries().find((line) => JSON.stringify(line).includes('it-passthrough-log-1'))) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(entry, 'an access-log JSON line names the request id');
    assert.equal(entry.status, 200);
    assert.ok(Object.values(entry).includes('gpt-3.5-turbo'), `the routed model is logged: ${JSON.stringify(entry)}`);
    assert.ok(Object.values(entry).includes('simple'), 'the route is logged');
    const logText = gateway.handle.stdoutLines.join('\n') + gateway.handle.stderr;
    for (const key of [CLIENT_KEY, UPSTREAM_KEY]) assert.ok(!logText.includes(key), 'no key in the logs');
  });
});

describe('response body', () => {
  it('is the upstream chat.completion unchanged, plus exact cost_usd and latency_ms', async () => {
    const request = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say something deterministic.' }], seed: 7 };
    await mock.clearRequests();
    const response = await gateway.chat(request);
    assert.equal(response.status, 200, response.text);
    const { json: forwarded } = await forwardedBody();

    // The same upstream request sent directly gives the reference answer.
    const direct = await mock.chat(forwarded);
    assert.equal(direct.status, 200, direct.text);
    const { cost_usd: cost, latency_ms: latency, ...upstreamPart } = response.json;
    const volatile = ['id', 'created'];
    for (const field of volatile) {
      assert.equal(typeof upstreamPart[field], typeof direct.json[field], `${field} has the upstream's type`);
    }
    const withoutVolatile = (object) => Object.fromEntries(Object.entries(object).filter(([key]) => !volatile.includes(key)));
    assert.deepEqual(withoutVolatile(upstreamPart), withoutVolatile(direct.json));
    assert.equal(upstreamPart.object, 'chat.completion');

    assert.equal(cost, femtoToNumber(usageCost(response.json.usage, TEST_MODELS['gpt-4o-mini'])));
    assert.equal(typeof latency, 'number');
    assert.ok(latency > 0 && latency < 10_000, `latency_ms ${latency} is plausible`);
  });

  it('a tools request returns the upstream tool call unchanged', async () => {
    const response = await gateway.chat({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [WEATHER_TOOL],
    });
    assert.equal(response.status, 200, response.text);
    const [choice] = response.json.choices;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls[0].function.name, 'get_weather');
    assert.doesNotThrow(() => JSON.parse(choice.message.tool_calls[0].function.arguments));
    assert.equal(response.json.cost_usd, femtoToNumber(usageCost(response.json.usage, TEST_MODELS['gpt-4o'])));
  });
});
