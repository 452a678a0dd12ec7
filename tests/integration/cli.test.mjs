// The command line (docs/REFERENCE.md §1, §3): `turnout tokens` against the reference
// tokenizer, `turnout route`, config errors (exit 2 naming file and key), ${VAR}
// substitution, ./turnout.yaml discovery, --version and --help.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { UPSTREAM_KEY, makeTempDir, runTurnout, startGateway, startMock, stopAll, turnoutBin, writeConfig, baseConfig } from './lib/harness.mjs';
import { chatPromptTokens, femtoToNumber, promptWithTokens, tokenCost, tokenIds } from './lib/reference.mjs';

let dir;
before(() => { dir = makeTempDir(); });
after(stopAll);

// Deterministic mixed-script text (seeded LCG), to compare long inputs with the reference.
function mixedText(length, seed) {
  const pieces = ['hello', ' world', '  ', '\n', '\r\n', '\t', ' 12345', '67890123', '!?', '...', "'s", "'ll",
    ' Zürich', ' naïve', ' 東京', 'タワー', ' 🙂', '👩‍👩‍👧', ' नमस्ते', ' Привет', ' مرحبا', '<|endoftext|>',
    '<|fim_prefix|>', '    ', ' x', 'ABC', 'camelCaseWord', ' \u00a0', '\u200b', '{"a": [1, 2]}'];
  let state = seed;
  let text = '';
  while (text.length < length) {
    state = (state * 1103515245 + 12345) % 2147483648;
    text += pieces[state % pieces.length];
  }
  return text;
}

describe('turnout tokens', () => {
  const invalidUtf8 = Buffer.from([0x61, 0xff, 0x62, 0xe2, 0x82, 0x20, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80, 0x63, 0xe2, 0x82]);
  const samples = [
    ['plain English', Buffer.from('Hello, world! How are you today?')],
    ['special-token text as ordinary text', Buffer.from('before <|endoftext|> after <|fim_middle|>')],
    ['mixed scripts and emoji', Buffer.from('Zürich 東京 🙂 नमस्ते Привет')],
    ['invalid UTF-8 (maximal subparts become U+FFFD)', invalidUtf8],
    ['empty input', Buffer.alloc(0)],
    ['a long mixed text', Buffer.from(mixedText(60_000, 7))],
  ];
  for (const encoding of ['cl100k_base', 'o200k_base']) {
    for (const [label, bytes] of samples) {
      it(`${encoding}: ${label}`, async () => {
        // WHATWG's UTF-8 decoder replaces maximal invalid subparts, as Python's errors="replace".
        const expectedIds = tokenIds(new TextDecoder('utf-8').decode(bytes), encoding);
        const file = path.join(dir, `sample-${encoding}-${label.replace(/\W+/g, '-')}.txt`);
        fs.writeFileSync(file, bytes);

        const fromFile = await runTurnout(['tokens', '--encoding', encoding, file]);
        assert.equal(fromFile.code, 0, fromFile.stderr);
        assert.equal(fromFile.stdout, `${expectedIds.length}\n`);

        const fromStdin = await runTurnout(['tokens', '--encoding', encoding], { input: bytes });
        assert.equal(fromStdin.code, 0, fromStdin.stderr);
        assert.equal(fromStdin.stdout, `${expectedIds.length}\n`);

        const ids = await runTurnout(['tokens', '--encoding', encoding, '--ids', file]);
        assert.equal(ids.code, 0, ids.stderr);
        assert.equal(ids.stdout.trim(), expectedIds.join(' '));
        assert.equal(ids.stdout.split('\n').filter(Boolean).length <= 1, true, 'ids on one line');
      });
    }
  }

  it('defaults to cl100k_base', async () => {
    const text = 'The default encoding is cl100k_base; o200k_base differs: 東京タワー';
    const result = await runTurnout(['tokens', '--ids'], { input: text });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), tokenIds(text, 'cl100k_base').join(' '));
    assert.notEqual(tokenIds(text, 'cl100k_base').join(' '), tokenIds(text, 'o200k_base').join(' '));
  });

  it('reads inputs of several megabytes whole, from a file and from stdin', async () => {
    // Larger than one read(2) chunk of stdin (1 MB) and than a page, so a short read or a
    // mapping cut at a page would change the count.
    const bytes = Buffer.from(mixedText(2_500_000, 11));
    const expected = tokenIds(bytes.toString('utf8'), 'o200k_base').length;
    const file = path.join(dir, 'large-input.txt');
    fs.writeFileSync(file, bytes);
    const fromFile = await runTurnout(['tokens', '--encoding', 'o200k_base', file]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(fromFile.stdout, `${expected}\n`);
    const fromStdin = await runTurnout(['tokens', '--encoding', 'o200k_base', '-'], { input: bytes });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.equal(fromStdin.stdout, `${expected}\n`);
  });

  it('a standard descriptor closed by the caller reads as /dev/null, not as an error or a later file', async () => {
    // `turnout tokens <&-`: descriptor 0 is opened on /dev/null before anything else, so
    // stdin is empty (and no file or socket opened later can take the number 0, 1 or 2).
    const result = spawnSync('bash', ['-c', '"$0" tokens <&-', turnoutBin()], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, '0\n');
  });

  it('an unknown encoding or a missing file is a usage error (exit 2)', async () => {
    const badEncoding = await runTurnout(['tokens', '--encoding', 'p50k_base'], { input: 'x' });
    assert.equal(badEncoding.code, 2);
    const missing = await runTurnout(['tokens', path.join(dir, 'does-not-exist.txt')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /does-not-exist\.txt/);
    const directory = await runTurnout(['tokens', dir]);
    assert.equal(directory.code, 2);
    assert.match(directory.stderr, /cannot read/);
  });

  it('a file that opens but fails while it is read is exit 1, a directory on stdin exit 2', async () => {
    // /proc/self/mem opens, says it is a regular file of length 0 (so it is read, not
    // mapped), and its first read fails with EIO: the read path's failure, which must end
    // the same way as a mapped file that fails (exit 1), not as a usage error.
    const failing = await runTurnout(['tokens', '/proc/self/mem']);
    assert.equal(failing.code, 1, failing.stderr);
    assert.match(failing.stderr, /\/proc\/self\/mem failed while it was read: Input\/output error/);
    assert.equal(failing.stdout, '');
    const stdinDirectory = spawnSync('bash', ['-c', '"$0" tokens < /', turnoutBin()], { encoding: 'utf8' });
    assert.equal(stdinDirectory.status, 2, stdinDirectory.stderr);
    assert.match(stdinDirectory.stderr, /cannot read stdin: Is a directory/);
  });
});

describe('turnout route', () => {
  const messages = [{ role: 'user', content: 'Route me, please.' }];
  const tokens = chatPromptTokens(messages);

  it('with the built-in defaults: the default tiers and prices', async () => {
    const emptyCwd = makeTempDir();
    const file = path.join(dir, 'route-request.json');
    fs.writeFileSync(file, JSON.stringify({ model: 'auto', messages }));
    const result = await runTurnout(['route', file], { cwd: emptyCwd });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      model: 'gpt-3.5-turbo', route: 'simple', prompt_tokens: tokens, encoding: 'cl100k_base',
      context_window: 16385, estimated_input_cost_usd: femtoToNumber(tokenCost(tokens, '0.0005')),
      count_estimated: false, count_partial: false,
    });
    const medium = await runTurnout(['route'], { cwd: emptyCwd, input: JSON.stringify({ messages: promptWithTokens(1000) }) });
    assert.equal(medium.code, 0, medium.stderr);
    assert.equal(JSON.parse(medium.stdout).model, 'gpt-4o-mini');
    const complex = await runTurnout(['route'], { cwd: emptyCwd, input: JSON.stringify({ messages: promptWithTokens(4000) }) });
    assert.equal(JSON.parse(complex.stdout).model, 'gpt-4o');
  });

  it('with --config, from stdin', async () => {
    const config = baseConfig({ upstreamUrl: 'http://127.0.0.1:9/v1', dir });
    config.routing.tiers = [{ name: 'tiny', below: tokens + 1, model: 'gpt-4o-mini' }, { name: 'rest', model: 'gpt-4o' }];
    const configFile = writeConfig(dir, config, 'route-config.yaml');
    const result = await runTurnout(['route', '--config', configFile], { input: JSON.stringify({ messages }) });
    assert.equal(result.code, 0, result.stderr);
    const decision = JSON.parse(result.stdout);
    assert.equal(decision.route, 'tiny');
    assert.equal(decision.model, 'gpt-4o-mini');
    assert.equal(decision.prompt_tokens, tokens);
  });

  it('an invalid request fails with a message, not a decision', async () => {
    const result = await runTurnout(['route'], { cwd: makeTempDir(), input: '{"messages": []}' });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr + result.stdout, /messages/);
  });
});

describe('config errors: exit 2 naming the file, the key and the problem', () => {
  const ledger = () => `ledger:\n  url: sqlite:${path.join(dir, 'errors.db')}\n`;
  const models = (gpt4oProvider = 'openai') => `models:
  gpt-3.5-turbo: {provider: openai, input_cost_per_1k: 0.0005, output_cost_per_1k: 0.0015, context_window: 16385}
  gpt-4o-mini: {provider: openai, input_cost_per_1k: 0.00015, output_cost_per_1k: 0.0006, context_window: 128000}
  gpt-4o: {provider: ${gpt4oProvider}, input_cost_per_1k: 0.0025, output_cost_per_1k: 0.01, context_window: 128000}
`;
  const cases = [
    ['a tier bound that is not a number', `routing:\n  tiers:\n    - {name: a, below: 10, model: gpt-4o}\n    - {name: b, below: ten, model: gpt-4o}\n`, /routing\.tiers\[1\]\.below/],
    ['an unknown provider', models('nowhere'), /models\.gpt-4o\.provider/],
    ['an unknown key', 'server:\n  host: 127.0.0.1\n  bogus_key: 1\n', /server\.bogus_key/],
    ['an unknown top-level key', 'extras: 1\n', /extras/],
    ['a tier naming no configured model', 'routing:\n  tiers:\n    - {name: a, model: no-such-model}\n', /routing\.tiers\[0\]\.model/],
    ['an unknown baseline model', 'routing:\n  baseline_model: no-such-model\n', /routing\.baseline_model/],
    ['a negative max_body_bytes', 'server:\n  max_body_bytes: -1\n', /server\.max_body_bytes/],
    ['an unsupported encoding', 'routing:\n  encoding: p50k_base\n', /routing\.encoding/],
    ['an unsupported ledger url', 'ledger:\n  url: mysql://localhost/db\n', /ledger\.url/],
    ['a negative price', models().replace('input_cost_per_1k: 0.0025', 'input_cost_per_1k: -1'), /models\.gpt-4o\.input_cost_per_1k/],
    ['a fallback to an unknown model', 'routing:\n  fallbacks: {gpt-4o: [no-such-model]}\n', /routing\.fallbacks/],
    ['an unset ${VAR}', 'providers:\n  openai:\n    base_url: http://127.0.0.1:9/v1\n    api_key: ${TURNOUT_IT_UNSET_VAR}\n', /TURNOUT_IT_UNSET_VAR/],
    ['invalid YAML', 'server: [unclosed\n', /./],
  ];
  cases.forEach(([label, yaml, keyPattern], index) => {
    it(`serve: ${label}`, async () => {
      const file = path.join(dir, `bad-${index}.yaml`);
      // The case's key comes after the ledger so its own block wins where both set `ledger`.
      fs.writeFileSync(file, yaml.startsWith('ledger:') ? yaml : ledger() + yaml);
      const result = await runTurnout(['serve', '--config', file, '--port', '0'], { env: { TURNOUT_IT_UNSET_VAR: undefined }, timeoutMs: 10_000 });
      assert.equal(result.code, 2, `exit code; stderr: ${result.stderr}`);
      assert.ok(result.stderr.includes(file) || result.stderr.includes(path.basename(file)), `stderr names the file: ${result.stderr}`);
      assert.match(result.stderr, keyPattern);
      assert.ok(!result.stdout.includes('"listening"'), 'never listened');
    });
  });

  it('route and stats check the config the same way', async () => {
    const file = path.join(dir, 'bad-shared.yaml');
    fs.writeFileSync(file, `${ledger()}routing:\n  tiers:\n    - {name: a, below: 10, model: gpt-4o}\n    - {name: b, below: ten, model: gpt-4o}\n`);
    for (const args of [['route', '--config', file], ['stats', '--config', file]]) {
      const result = await runTurnout(args, { input: '{"messages":[{"role":"user","content":"x"}]}' });
      assert.equal(result.code, 2, `${args[0]}: ${result.stderr}`);
      assert.match(result.stderr, /routing\.tiers\[1\]\.below/);
    }
  });

  it('a missing config file', async () => {
    const file = path.join(dir, 'no-such-config.yaml');
    const result = await runTurnout(['serve', '--config', file, '--port', '0'], { timeoutMs: 10_000 });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /no-such-config\.yaml/);
  });

  it('an unknown subcommand or option is a usage error', async () => {
    assert.equal((await runTurnout(['frobnicate'])).code, 2);
    assert.equal((await runTurnout(['serve', '--no-such-option'])).code, 2);
    assert.equal((await runTurnout([])).code, 2);
  });
});

describe('config loading', () => {
  let mock;
  before(async () => { mock = await startMock(); });

  async function upstreamAuthorization(gateway) {
    await mock.clearRequests();
    const response = await gateway.chat({ model: 'auto', messages: promptWithTokens(12) });
    assert.equal(response.status, 200, response.text);
    return (await mock.chatRequests())[0].headers.authorization;
  }

  it('${VAR:-default} takes the default when VAR is unset and VAR when set', async () => {
    const own = makeTempDir();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir: own });
    config.providers.openai.api_key = '${TURNOUT_IT_UPSTREAM_KEY:-sk-default-from-config}';
    const configFile = writeConfig(own, config);
    const withDefault = await startGateway({ configFile, dir: own, env: { TURNOUT_IT_UPSTREAM_KEY: undefined } });
    assert.equal(await upstreamAuthorization(withDefault), 'Bearer sk-default-from-config');
    await withDefault.stop();
    const fromEnv = await startGateway({ configFile, dir: own, env: { TURNOUT_IT_UPSTREAM_KEY: UPSTREAM_KEY } });
    assert.equal(await upstreamAuthorization(fromEnv), `Bearer ${UPSTREAM_KEY}`);
    await fromEnv.stop();
  });

  it('serve without --config uses ./turnout.yaml', async () => {
    const gateway = await startGateway({
      upstreamUrl: mock.baseUrl,
      implicitConfig: true,
      configure: (config) => { config.routing.tiers = [{ name: 'from-cwd-file', model: 'gpt-4o-mini' }]; },
    });
    const response = await gateway.chat({ model: 'auto', messages: promptWithTokens(12) });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.get('x-turnout-route'), 'from-cwd-file');
    await gateway.stop();
  });
});

describe('--version and --help', () => {
  it('--version prints the version and exits 0', async () => {
    const result = await runTurnout(['--version']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /turnout \d+\.\d+\.\d+/);
  });

  it('--help lists every subcommand and exits 0', async () => {
    const result = await runTurnout(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['serve', 'route', 'tokens', 'stats', 'mock-upstream']) assert.match(result.stdout, new RegExp(`\\b${command}\\b`));
  });
});
