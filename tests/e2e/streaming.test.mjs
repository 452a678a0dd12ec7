// Streaming end to end with the official `openai` SDK (docs/REFERENCE.md §2.3 Streaming):
// chunks relayed, tool-call deltas that reassemble, usage only when asked (with cost_usd),
// a mid-stream upstream failure raised by the SDK, and every stream in the ledger.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { TEST_MODELS, sleep, startGateway, startMock, stopAll } from '../integration/lib/harness.mjs';
import { femtoToNumber, usageCost } from '../integration/lib/reference.mjs';

let mock;
let gateway;
let client;

before(async () => {
  mock = await startMock();
  gateway = await startGateway({ upstreamUrl: mock.baseUrl });
  client = new OpenAI({ apiKey: 'unused-no-gateway-keys', baseURL: gateway.baseUrl, maxRetries: 0, timeout: 20_000 });
});
after(stopAll);

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'] },
  },
};
const messages = [{ role: 'user', content: 'Tell me a short story about a gateway.' }];

async function collect(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const contentOf = (chunks) => chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('');

describe('streaming through the SDK', () => {
  it('relays the chunks; the content equals the non-streamed answer; no usage unless asked', async () => {
    await mock.configure({ chunks: 6 });
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'auto', messages, stream: true })
      .withResponse();
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(response.headers.get('x-turnout-model'), 'gpt-3.5-turbo');
    assert.equal(response.headers.get('x-turnout-route'), 'simple');
    assert.ok(response.headers.get('x-turnout-prompt-tokens'));
    assert.ok(response.headers.get('x-request-id'));
    assert.equal(response.headers.get('x-turnout-cost-usd'), null, 'no cost header on a stream');

    const chunks = await collect(stream);
    assert.ok(chunks.length >= 6, `${chunks.length} chunks`);
    for (const chunk of chunks) assert.equal(chunk.object, 'chat.completion.chunk');
    assert.ok(chunks.every((chunk) => !chunk.usage), 'no usage chunk for a client that did not ask');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');

    const whole = await client.chat.completions.create({ model: 'auto', messages });
    assert.equal(contentOf(chunks), whole.choices[0].message.content);
    await mock.reset();
  });

  it('stream_options.include_usage: a final usage chunk with cost_usd', async () => {
    const chunks = await collect(await client.chat.completions.create({
      model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true },
    }));
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, []);
    assert.ok(usageChunk.usage.prompt_tokens > 0 && usageChunk.usage.completion_tokens > 0);
    assert.equal(usageChunk.cost_usd, femtoToNumber(usageCost(usageChunk.usage, TEST_MODELS['gpt-4o-mini'])));
    assert.ok(chunks.slice(0, -1).every((chunk) => !chunk.usage), 'usage only in the last chunk');
  });

  it('the gateway always asks the upstream for usage', async () => {
    await mock.clearRequests();
    await collect(await client.chat.completions.create({ model: 'auto', messages, stream: true }));
    const [forwarded] = await mock.chatRequests();
    assert.equal(forwarded.json.stream, true);
    assert.equal(forwarded.json.stream_options?.include_usage, true);
  });

  it('tool-call deltas reassemble into the tool call', async () => {
    await mock.configure({ chunks: 5 });
    const request = { model: 'auto', messages: [{ role: 'user', content: 'Weather in Lima?' }], tools: [WEATHER_TOOL], stream: true };
    const chunks = await collect(await client.chat.completions.create(request));
    const calls = [];
    for (const chunk of chunks) {
      for (const delta of chunk.choices[0]?.delta?.tool_calls ?? []) {
        const call = calls[delta.index] ??= { id: '', name: '', arguments: '' };
        call.id += delta.id ?? '';
        call.name += delta.function?.name ?? '';
        call.arguments += delta.function?.arguments ?? '';
      }
    }
    assert.equal(calls.length, 1);
    assert.ok(calls[0].id.length > 0);
    assert.equal(calls[0].name, 'get_weather');
    assert.equal(typeof JSON.parse(calls[0].arguments), 'object');
    assert.ok(chunks.filter((chunk) => chunk.choices[0]?.delta?.tool_calls).length > 1, 'arguments arrive over several deltas');
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');

    // The SDK's own stream helper assembles the same call.
    const final = await client.beta.chat.completions.stream({ ...request, stream: undefined }).finalChatCompletion();
    const [assembled] = final.choices[0].message.tool_calls;
    assert.equal(assembled.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(assembled.function.arguments), JSON.parse(calls[0].arguments));
    await mock.reset();
  });
});

describe('mid-stream upstream failures', () => {
  for (const [label, faults] of [
    ['a connection reset after 3 chunks', { chunks: 10, reset_after_chunks: 3, fail_first: 1 }],
    ['a malformed event', { chunks: 10, malformed: true, fail_first: 1 }],
  ]) {
    it(`${label}: the SDK raises the SSE error event, never a silently truncated answer`, async () => {
      await mock.configure(faults);
      try {
        const received = [];
        const stream = await client.chat.completions.create({ model: 'auto', messages, stream: true });
        await assert.rejects((async () => { for await (const chunk of stream) received.push(chunk); })(), (error) => {
          assert.ok(error instanceof OpenAI.APIError, `got ${error?.constructor?.name}: ${error?.message}`);
          assert.ok(error.message.length > 0);
          return true;
        });
        assert.ok(received.every((chunk) => chunk.choices[0]?.finish_reason == null), 'no finish_reason before the error');
      } finally {
        await mock.reset();
      }
    });
  }
});

describe('streams in the ledger', () => {
  it('a stream without upstream usage is counted by the gateway; an aborted one is 499', async () => {
    await mock.configure({ no_usage: true });
    const counted = await client.chat.completions.create({ model: 'auto', messages, stream: true }).withResponse();
    await collect(counted.data);
    const countedId = counted.response.headers.get('x-request-id');

    await mock.configure({ chunks: 40, chunk_delay_ms: 100 });
    const slow = await client.chat.completions.create({ model: 'auto', messages, stream: true }).withResponse();
    const abortedId = slow.response.headers.get('x-request-id');
    let seen = 0;
    for await (const chunk of slow.data) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      seen += 1;
      if (seen === 2) {
        slow.data.controller.abort();  // the client goes away mid-stream
        break;
      }
    }
    assert.equal(seen, 2);

    // The aborted call is recorded once the gateway notices the disconnect (its next write).
    let recent = [];
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      recent = (await gateway.stats('?recent=50')).recent_calls;
      if (recent.some((call) => call.id === abortedId)) break;
      await sleep(200);
    }
    await mock.reset();
    const countedRecord = recent.find((call) => call.id === countedId);
    assert.ok(countedRecord, 'the usage-less stream is recorded');
    assert.equal(countedRecord.status, 200);
    assert.ok(countedRecord.prompt_tokens > 0 && countedRecord.completion_tokens > 0, 'tokens counted by the gateway');
    assert.ok(countedRecord.cost_usd > 0, 'and priced');
    const abortedRecord = recent.find((call) => call.id === abortedId);
    assert.ok(abortedRecord, 'the aborted stream is recorded');
    assert.equal(abortedRecord.status, 499);
    // 40 chunks 100 ms apart take 4 s: a record well before that means the gateway stopped
    // at the disconnect instead of draining the upstream.
    assert.ok(abortedRecord.latency_ms < 2500, `aborted call latency ${abortedRecord.latency_ms} ms`);
  });
});

describe('a stream whose upstream fails before the first event', () => {
  it('is retried like a non-streamed call, invisibly to the client', async () => {
    const retrying = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => { config.routing.retries = 1; config.routing.retry_backoff_ms = 10; },
    });
    const retryingClient = new OpenAI({ apiKey: 'unused', baseURL: retrying.baseUrl, maxRetries: 0, timeout: 20_000 });
    await mock.configure({ fail_status: 503, fail_first: 1 });
    try {
      const { data: stream, response } = await retryingClient.chat.completions
        .create({ model: 'auto', messages, stream: true })
        .withResponse();
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-turnout-attempts'), '2');
      const chunks = await collect(stream);
      assert.ok(contentOf(chunks).length > 0);
      assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
    } finally {
      await mock.reset();
    }
  });
});
