// Every bad input of docs/REFERENCE.md §2.10 Errors: each gets the OpenAI error shape
// naming the problem, never reaches the upstream, is not a ledger record, and leaves the
// gateway healthy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { openAIErrorProblems, rawHttp, startGateway, startMock, stopAll } from './lib/harness.mjs';
import { countTokens } from './lib/reference.mjs';

const MAX_BODY_BYTES = 4096;

let mock;
before(async () => { mock = await startMock(); });
after(stopAll);

// Asserts an OpenAI-shaped error with `status`; `mentions` must appear in param or message.
function assertOpenAIError(response, status, { type, code, mentions } = {}) {
  assert.equal(response.status, status, `status; body: ${response.text}`);
  assert.deepEqual(openAIErrorProblems(response.json), [], `OpenAI error shape: ${response.text}`);
  if (type) assert.equal(response.json.error.type, type);
  if (code) assert.equal(response.json.error.code, code);
  if (mentions) {
    const { param, message } = response.json.error;
    assert.ok(mentions.test(`${param ?? ''} ${message}`), `param/message name the problem (${mentions}): ${response.text}`);
  }
}

async function assertHealthy(gateway) {
  const health = await gateway.request('GET', '/health');
  assert.equal(health.status, 200, `gateway still healthy: ${health.text}`);
}

describe('request validation', () => {
  let gateway;
  const acceptedStatuses = [];  // calls that passed validation: each is a ledger record

  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => { config.server.max_body_bytes = MAX_BODY_BYTES; },
    });
  });

  const user = { role: 'user', content: 'hi' };
  const badBodies = [
    { label: 'invalid JSON', raw: '{"model": "auto", "messages": [', mentions: /json/i },
    { label: 'trailing garbage after JSON', raw: '{"messages":[{"role":"user","content":"hi"}]} x', mentions: /json/i },
    { label: 'empty body', raw: '', mentions: /json|body/i },
    { label: 'an array body', raw: '[{"role":"user","content":"hi"}]', mentions: /object|body/i },
    { label: 'a string body', raw: '"hello"', mentions: /object|body/i },
    { label: 'a null body', raw: 'null', mentions: /object|body/i },
    { label: 'missing messages', json: { model: 'auto' }, mentions: /messages/ },
    { label: 'messages a string', json: { messages: 'hi' }, mentions: /messages/ },
    { label: 'messages an object', json: { messages: user }, mentions: /messages/ },
    { label: 'messages null', json: { messages: null }, mentions: /messages/ },
    { label: 'messages []', json: { messages: [] }, mentions: /messages/ },
    { label: 'a message that is not an object', json: { messages: ['hi'] }, mentions: /messages/ },
    { label: 'a message without role', json: { messages: [{ content: 'hi' }] }, mentions: /role/ },
    { label: 'a role that is not a string', json: { messages: [{ role: 7, content: 'hi' }] }, mentions: /role/ },
    { label: 'content a number', json: { messages: [{ role: 'user', content: 42 }] }, mentions: /content/ },
    { label: 'content an object', json: { messages: [{ role: 'user', content: { text: 'hi' } }] }, mentions: /content/ },
    { label: 'model a number', json: { model: 5, messages: [user] }, mentions: /model/ },
    { label: 'model an object', json: { model: { name: 'gpt-4o' }, messages: [user] }, mentions: /model/ },
    // The model name is echoed in x-turnout-model: CR/LF there would inject response headers.
    { label: 'model with CR/LF', json: { model: 'x\r\nSet-Cookie: injected=1', messages: [user] }, mentions: /model/ },
    { label: 'model with a control character', json: { model: 'gpt\u0001', messages: [user] }, mentions: /model/ },
    { label: 'max_tokens a string', json: { messages: [user], max_tokens: 'ten' }, mentions: /max_tokens/ },
    { label: 'max_tokens negative', json: { messages: [user], max_tokens: -5 }, mentions: /max_tokens/ },
    { label: 'max_completion_tokens a string', json: { messages: [user], max_completion_tokens: '5' }, mentions: /max_completion_tokens/ },
    { label: 'stream not a boolean', json: { messages: [user], stream: 'yes' }, mentions: /stream/ },
    {
      label: 'invalid UTF-8 bytes',
      raw: Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"ab'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')]),
      mentions: /utf-?8/i,
    },
    {
      label: 'a truncated UTF-8 sequence in a key',
      raw: Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"hi"}],"'), Buffer.from([0xe2, 0x82]), Buffer.from('":1}')]),
      mentions: /utf-?8/i,
    },
  ];

  for (const { label, raw, json, mentions } of badBodies) {
    it(`${label}: 400 invalid_request_error naming the problem, nothing upstream`, async () => {
      await mock.clearRequests();
      const response = await gateway.request('POST', '/v1/chat/completions', {
        body: raw ?? JSON.stringify(json),
        headers: { 'content-type': 'application/json' },
      });
      assertOpenAIError(response, 400, { type: 'invalid_request_error', mentions });
      assert.ok(response.headers.get('x-request-id'), 'errors carry x-request-id');
      assert.deepEqual(await mock.chatRequests(), [], 'nothing reached the upstream');
      await assertHealthy(gateway);
    });
  }

  it('a lone surrogate escape is valid JSON: accepted, counted as U+FFFD, forwarded', async () => {
    const raw = '{"model":"auto","messages":[{"role":"user","content":"\\ud800 hi"}]}';
    await mock.clearRequests();
    const response = await gateway.request('POST', '/v1/chat/completions', { body: raw, headers: { 'content-type': 'application/json' } });
    const forwarded = await mock.chatRequests();
    if (forwarded.length > 0) acceptedStatuses.push(response.status);  // recorded, whatever the upstream said
    assert.equal(forwarded.length, 1, `the gateway forwards it: ${response.text}`);
    assert.match(forwarded[0].body, /\\ud800 hi/i, 'the escape reaches the upstream as sent');
    const expected = 3 + 3 + countTokens('user') + countTokens('\ufffd hi');
    assert.equal(response.headers.get('x-turnout-prompt-tokens'), String(expected));
    // The mock upstream is OpenAI-compatible (docs/REFERENCE.md §7), so it answers too.
    assert.equal(response.status, 200, `upstream answer: ${response.text}`);
  });

  describe('body size limit', () => {
    const validBodyOfSize = (size) => {
      const body = JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] });
      return body.slice(0, -1) + ' '.repeat(size - body.length) + '}';
    };
    const postHead = (extraHeaders) => 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n'
      + `Content-Type: application/json\r\n${extraHeaders}Connection: close\r\n\r\n`;
    const chunked = (body, chunkSize) => {
      let out = '';
      for (let offset = 0; offset < body.length; offset += chunkSize) {
        const piece = body.slice(offset, offset + chunkSize);
        out += `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`;
      }
      return `${out}0\r\n\r\n`;
    };

    it('a body of exactly max_body_bytes is accepted', async () => {
      const body = validBodyOfSize(MAX_BODY_BYTES);
      assert.equal(Buffer.byteLength(body), MAX_BODY_BYTES);
      const response = await rawHttp(gateway.port, [postHead(`Content-Length: ${MAX_BODY_BYTES}\r\n`) + body]);
      acceptedStatuses.push(response.status);
      assert.equal(response.status, 200, response.text);
    });

    it('one byte over with Content-Length: 413', async () => {
      await mock.clearRequests();
      const body = validBodyOfSize(MAX_BODY_BYTES + 1);
      const response = await rawHttp(gateway.port, [postHead(`Content-Length: ${MAX_BODY_BYTES + 1}\r\n`) + body]);
      assertOpenAIError(response, 413);
      assert.deepEqual(await mock.chatRequests(), []);
      await assertHealthy(gateway);
    });

    it('a huge Content-Length is refused at once, before any body arrives', async () => {
      const response = await rawHttp(gateway.port, [postHead('Content-Length: 1000000000\r\n')], { timeoutMs: 5000 });
      assertOpenAIError(response, 413);
      await assertHealthy(gateway);
    });

    it('a chunked body within the limit is accepted', async () => {
      const body = validBodyOfSize(MAX_BODY_BYTES);
      const response = await rawHttp(gateway.port, [postHead('Transfer-Encoding: chunked\r\n') + chunked(body, 1000)]);
      acceptedStatuses.push(response.status);
      assert.equal(response.status, 200, response.text);
    });

    it('a chunked body over the limit: 413', async () => {
      await mock.clearRequests();
      const body = validBodyOfSize(MAX_BODY_BYTES + 1);
      const response = await rawHttp(gateway.port, [postHead('Transfer-Encoding: chunked\r\n') + chunked(body, 1000)]);
      assertOpenAIError(response, 413);
      assert.deepEqual(await mock.chatRequests(), []);
      await assertHealthy(gateway);
    });
  });

  describe('unknown paths and methods', () => {
    const cases = [
      ['GET', '/v2/chat/completions', [404]],
      ['POST', '/v1/nothing-here', [404]],
      ['GET', '/v1', [404]],  // GET / redirects to the dashboard (REFERENCE §2.13)
      ['GET', '/v1/chat/completions', [404, 405]],
      ['DELETE', '/stats', [404, 405]],
      ['PUT', '/v1/models', [404, 405]],
    ];
    for (const [method, urlPath, statuses] of cases) {
      it(`${method} ${urlPath}: ${statuses.join(' or ')} in the OpenAI shape`, async () => {
        const response = await gateway.request(method, urlPath);
        assert.ok(statuses.includes(response.status), `status ${response.status}: ${response.text}`);
        assert.deepEqual(openAIErrorProblems(response.json), []);
        assert.ok(response.headers.get('x-request-id'));
      });
    }
  });

  describe('malformed HTTP', () => {
    it('a garbage request line gets a 4xx and the gateway keeps serving', async () => {
      const response = await rawHttp(gateway.port, ['THIS IS NOT HTTP\r\n\r\n'], { timeoutMs: 5000 }).catch(() => null);
      if (response) assert.ok(response.status >= 400 && response.status < 500, `status ${response.status}`);
      await assertHealthy(gateway);
    });

    it('a 200 KB header gets a 4xx (431 or 400) and the gateway keeps serving', async () => {
      const request = `GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ${'a'.repeat(200_000)}\r\n\r\n`;
      const response = await rawHttp(gateway.port, [request], { timeoutMs: 5000 }).catch(() => null);
      if (response) assert.ok([400, 413, 431].includes(response.status), `status ${response.status}`);
      await assertHealthy(gateway);
    });
  });

  it('rejected requests are not ledger records', async () => {
    const stats = await gateway.stats('?recent=100');
    assert.equal(stats.total_calls, acceptedStatuses.length, `recorded: ${JSON.stringify(stats.recent_calls)}`);
    assert.deepEqual(stats.recent_calls.map((call) => call.status), acceptedStatuses);
  });
});

describe('gateway keys (server.api_keys)', () => {
  const GOOD_KEYS = ['tk-good-key-one-a1', 'tk-good-key-two-b2'];
  const WRONG_KEY = 'tk-wrong-key-zz9';
  let gateway;

  before(async () => {
    gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      configure: (config) => { config.server.api_keys = GOOD_KEYS; },
    });
  });

  const body = { model: 'auto', messages: [{ role: 'user', content: 'hi' }] };
  const badAuth = [
    ['missing', {}],
    ['wrong', { authorization: `Bearer ${WRONG_KEY}` }],
    ['wrong scheme', { authorization: `Basic ${Buffer.from(`u:${GOOD_KEYS[0]}`).toString('base64')}` }],
    ['a prefix of a good key', { authorization: `Bearer ${GOOD_KEYS[0].slice(0, -1)}` }],
    ['empty bearer', { authorization: 'Bearer ' }],
  ];
  for (const [label, headers] of badAuth) {
    it(`${label} key: 401 in the OpenAI shape, key never echoed, nothing upstream`, async () => {
      await mock.clearRequests();
      const response = await gateway.request('POST', '/v1/chat/completions', { json: body, headers });
      assertOpenAIError(response, 401);
      const everything = response.text + JSON.stringify([...response.headers]);
      assert.ok(!everything.includes(WRONG_KEY) && !everything.includes(GOOD_KEYS[0].slice(0, -1)), 'the key is not echoed');
      assert.deepEqual(await mock.chatRequests(), []);
    });
  }

  for (const [method, urlPath] of [['GET', '/v1/models'], ['POST', '/route'], ['GET', '/stats'], ['GET', '/metrics']]) {
    it(`${method} ${urlPath} needs a key`, async () => {
      const json = method === 'POST' ? body : undefined;
      assertOpenAIError(await gateway.request(method, urlPath, { json }), 401);
      const allowed = await gateway.request(method, urlPath, { json, headers: { authorization: `Bearer ${GOOD_KEYS[1]}` } });
      assert.equal(allowed.status, 200, allowed.text);
    });
  }

  it('every configured key is accepted; /health needs none', async () => {
    for (const key of GOOD_KEYS) {
      const response = await gateway.request('POST', '/v1/chat/completions', { json: body, headers: { authorization: `Bearer ${key}` } });
      assert.equal(response.status, 200, response.text);
    }
    assert.equal((await gateway.request('GET', '/health')).status, 200);
  });

  it('/health without a key answers only the status: no host name, PID, version or load', async () => {
    const open = await gateway.request('GET', '/health');
    assert.equal(open.status, 200, 'load balancers need no key');
    assert.deepEqual(open.json, { status: 'healthy' });
    const wrong = await gateway.request('GET', '/health', { headers: { authorization: `Bearer ${WRONG_KEY}` } });
    assert.equal(wrong.status, 200);
    assert.deepEqual(wrong.json, { status: 'healthy' }, 'a wrong key is no key');
    const full = await gateway.request('GET', '/health', { headers: { authorization: `Bearer ${GOOD_KEYS[0]}` } });
    assert.equal(full.status, 200);
    for (const field of ['instance_id', 'version', 'uptime_s', 'in_flight', 'cooldowns', 'ledger']) {
      assert.ok(field in full.json, `${field} with a valid key: ${full.text}`);
    }
  });

  it('no key appears in the gateway output', () => {
    const output = gateway.handle.stdoutLines.join('\n') + gateway.handle.stderr;
    for (const key of [...GOOD_KEYS, WRONG_KEY]) assert.ok(!output.includes(key), 'key not logged');
  });
});
