// Test harness for Turnout's integration and end-to-end suites: starts the real binary
// (`turnout mock-upstream`, `turnout serve`) on loopback ports, writes per-test configs,
// and guarantees that no process outlives the test file (after() hooks call stopAll();
// an exit/signal hook SIGKILLs whatever is left). Every wait is bounded.
//
// Uses only node built-ins so it runs on node 18 and 20.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

// The key the gateway sends upstream. Tests check it reaches the mock and never a client.
export const UPSTREAM_KEY = 'sk-upstream-test-7d1f3a9c';

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 20_000;

export function turnoutBin() {
  if (process.env.TURNOUT_BIN) return process.env.TURNOUT_BIN;
  const candidates = ['build-it', 'build-test', 'build'].map((dir) =>
    path.join(REPO_ROOT, dir, 'src/cli/turnout'));
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new Error(`set TURNOUT_BIN: no turnout binary in ${candidates.join(', ')}`);
  return found;
}

// ---------------------------------------------------------------------------------------
// Process bookkeeping: every child the harness starts is tracked until it exits.

const liveChildren = new Set();

function killAllNow() {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
}
process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => { killAllNow(); process.exit(128 + os.constants.signals[signal]); });
}

const tempDirs = new Set();

export function makeTempDir(prefix = 'turnout-it-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

// Stops every process this test file started and removes its temp dirs. Call in after().
export async function stopAll() {
  const stopping = [...liveChildren].map((child) => child.turnoutHandle?.kill('SIGKILL'));
  await Promise.allSettled(stopping);
  killAllNow();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Resolves with `promise`, or rejects after `ms` naming `what`.
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A started child process: its stdout lines, its stderr text, and a bounded stop().
class ProcessHandle {
  constructor(child, name) {
    this.child = child;
    this.name = name;
    this.stdoutLines = [];
    this.stderr = '';
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        resolve({ code, signal });
      });
    });
    child.turnoutHandle = this;
    liveChildren.add(child);
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf('\n')) >= 0) {
        this.stdoutLines.push(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        this.onLine?.();
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => { this.stderr += chunk; });
    // Never let a child keep the test file alive; the exit hook kills leftovers.
    child.unref();
    child.stdout.unref?.();
    child.stderr.unref?.();
  }

  get pid() { return this.child.pid; }

  get running() { return liveChildren.has(this.child); }

  // Waits for the {"event":"listening",...} line; returns the parsed object.
  async waitListening() {
    const findListening = () => {
      for (const line of this.stdoutLines) {
        const event = parseJsonOrNull(line);
        if (event?.event === 'listening') return event;
      }
      return null;
    };
    const seen = new Promise((resolve, reject) => {
      const check = () => {
        const event = findListening();
        if (event) { this.onLine = null; resolve(event); }
      };
      this.onLine = check;
      check();
      this.exited.then(({ code, signal }) => reject(new Error(
        `${this.name} exited (code ${code}, signal ${signal}) before listening; stderr:\n${this.stderr}`)));
    });
    try {
      return await withTimeout(seen, START_TIMEOUT_MS, `${this.name} listening line`);
    } catch (error) {
      await this.kill('SIGKILL');
      throw error;
    }
  }

  // Waits (bounded) for the process to exit: {code, signal}. The timer also keeps the
  // event loop alive, which the unref'd child does not.
  waitExit(timeoutMs = STOP_TIMEOUT_MS) {
    return withTimeout(this.exited, timeoutMs, `${this.name} exit`);
  }

  // Sends `signal` and waits (bounded) for the exit; SIGKILLs on timeout.
  async kill(signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    try {
      return await withTimeout(this.exited, timeoutMs, `${this.name} exit after ${signal}`);
    } catch (error) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw error;
    }
  }

  // Access-log lines: every JSON stdout line after the listening line.
  logEntries() {
    return this.stdoutLines.map(parseJsonOrNull).filter((entry) => entry && entry.event !== 'listening');
  }
}

function startProcess(args, { name, cwd, env } = {}) {
  const child = spawn(turnoutBin(), args, {
    cwd: cwd ?? os.tmpdir(),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new ProcessHandle(child, name ?? `turnout ${args[0]}`);
}

export function parseJsonOrNull(text) {
  try { return JSON.parse(text); } catch { return null; }
}

// Runs a turnout subcommand to completion: {code, signal, stdout, stderr}.
export function runTurnout(args, { input, env, cwd, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(turnoutBin(), args, {
      cwd: cwd ?? os.tmpdir(),
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    liveChildren.add(child);
    const stdout = [];
    const stderr = [];
    child.stdout.on('data', (chunk) => stdout.push(chunk));
    child.stderr.on('data', (chunk) => stderr.push(chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`turnout ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (error) => { clearTimeout(timer); reject(error); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      liveChildren.delete(child);
      resolve({
        code, signal,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    child.stdin.on('error', () => { /* the command may exit before reading stdin */ });
    child.stdin.end(input ?? '');
  });
}

// ---------------------------------------------------------------------------------------
// HTTP helpers (built-in fetch, bounded).

// Sends one request; returns {status, headers, text, json} (json null when not JSON).
export async function httpRequest(baseUrl, method, urlPath, { body, json, headers = {}, timeoutMs } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeoutMs ?? REQUEST_TIMEOUT_MS) };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['content-type'] ??= 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(baseUrl + urlPath, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: parseJsonOrNull(text) };
}

// A raw HTTP/1.1 client connection, for what fetch cannot express: chunked bodies of our
// choosing, partial requests, exact bytes, several requests on one connection.
export class RawConnection {
  static async open(port, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    const socket = net.connect({ host: '127.0.0.1', port });
    await withTimeout(new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }), timeoutMs, `connect to 127.0.0.1:${port}`);
    return new RawConnection(socket);
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.closed = false;
    this.error = null;
    this.wake = null;
    socket.on('data', (chunk) => { this.buffer = Buffer.concat([this.buffer, chunk]); this.wake?.(); });
    socket.on('error', (error) => { this.error = error; this.wake?.(); });
    socket.on('close', () => { this.closed = true; this.wake?.(); });
  }

  // Writes `data`; write errors (the server may close early) surface in readResponse.
  write(data) {
    if (!this.socket.destroyed) this.socket.write(data, () => {});
  }

  // Resolves with the next complete response {status, headers, text, json}.
  async readResponse({ timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const atEof = this.closed || this.error !== null;
      const parsed = parseRawResponse(this.buffer, atEof);
      if (parsed) {
        this.buffer = this.buffer.subarray(parsed.consumed);
        return parsed.response;
      }
      if (atEof) {
        throw this.error ?? new Error(`connection closed without a complete response: ${JSON.stringify(this.buffer.toString('latin1').slice(0, 300))}`);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no complete response within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.wake = () => { clearTimeout(timer); this.wake = null; resolve(); };
      });
    }
  }

  // Resolves true once the server has closed the connection (false after `timeoutMs`).
  async waitClosed(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && this.error === null && Date.now() < deadline) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.wake = () => { clearTimeout(timer); this.wake = null; resolve(); };
      });
    }
    return this.closed || this.error !== null;
  }

  close() { this.socket.destroy(); }
}

// One raw exchange: writes `pieces` in order (each a string/Buffer or {data, pauseMs}),
// returns the first response, closes the connection.
export async function rawHttp(port, pieces, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const connection = await RawConnection.open(port, { timeoutMs });
  try {
    const writing = (async () => {
      for (const piece of pieces) {
        const { data, pauseMs } = typeof piece === 'string' || Buffer.isBuffer(piece) ? { data: piece } : piece;
        connection.write(data);
        if (pauseMs) await sleep(pauseMs);
      }
    })();
    const response = await connection.readResponse({ timeoutMs });
    await writing;
    return response;
  } finally {
    connection.close();
  }
}

// Parses the first complete HTTP response in `bytes`: {response, consumed}, or null while
// incomplete. When `atEof`, a response without a length ends with the bytes.
function parseRawResponse(bytes, atEof) {
  const headerEnd = bytes.indexOf('\r\n\r\n');
  if (headerEnd < 0) return null;
  const head = bytes.subarray(0, headerEnd).toString('latin1').split('\r\n');
  const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
  if (!statusMatch) return null;
  const headers = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const bodyStart = headerEnd + 4;
  const rest = bytes.subarray(bodyStart);
  let body;
  let consumed;
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length < length) return null;
    body = rest.subarray(0, length);
    consumed = bodyStart + length;
  } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const decoded = decodeChunked(rest);
    if (!decoded) return null;
    ({ body } = decoded);
    consumed = bodyStart + decoded.consumed;
  } else {
    if (!atEof) return null;
    body = rest;
    consumed = bytes.length;
  }
  const text = body.toString('utf8');
  return { response: { status: Number(statusMatch[1]), headers, text, json: parseJsonOrNull(text) }, consumed };
}

// Decodes a chunked body (trailers ignored): {body, consumed}, or null while incomplete.
function decodeChunked(bytes) {
  const parts = [];
  let offset = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    if (lineEnd < 0) return null;
    const size = parseInt(bytes.subarray(offset, lineEnd).toString('latin1'), 16);
    if (Number.isNaN(size)) return null;
    if (size === 0) {
      const end = bytes.indexOf('\r\n\r\n', lineEnd);
      if (end < 0) return null;
      return { body: Buffer.concat(parts), consumed: end + 4 };
    }
    if (bytes.length < lineEnd + 2 + size + 2) return null;
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
}

// A TCP port nothing listens on (bound, then released).
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// ---------------------------------------------------------------------------------------
// The mock upstream.

export class Mock {
  constructor(handle, port) {
    this.handle = handle;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.baseUrl = `${this.url}/v1`;
  }

  async control(method, urlPath, json) {
    const response = await httpRequest(this.url, method, urlPath, { json });
    if (response.status >= 300) throw new Error(`mock ${method} ${urlPath}: ${response.status} ${response.text}`);
    return response.json;
  }

  // Fault settings (src/mock/: fail_status, fail_first, latency_ms, hang, malformed, ...).
  configure(faults) { return this.control('POST', '/_mock/config', faults); }

  // Clears the faults and the recorded requests.
  async reset() {
    await this.control('POST', '/_mock/reset', {});
    await this.control('DELETE', '/_mock/requests');
  }

  async requests() { return (await this.control('GET', '/_mock/requests')).requests; }

  // The recorded chat calls, each with its body parsed.
  async chatRequests() {
    return (await this.requests())
      .filter((request) => request.target.includes('/chat/completions'))
      .map((request) => ({ ...request, json: parseJsonOrNull(request.body) }));
  }

  clearRequests() { return this.control('DELETE', '/_mock/requests'); }

  // The recorded calls whose target starts with `pathPrefix` (e.g. '/v1/embeddings').
  async requestsTo(pathPrefix) {
    return (await this.requests()).filter((request) => request.target.startsWith(pathPrefix));
  }

  // Calls the mock directly (not through the gateway).
  chat(body) { return httpRequest(this.baseUrl, 'POST', '/chat/completions', { json: body, headers: { authorization: `Bearer ${UPSTREAM_KEY}` } }); }

  stop() { return this.handle.kill('SIGTERM'); }
}

export async function startMock(args = []) {
  const handle = startProcess(['mock-upstream', '--port', '0', ...args], { name: 'mock-upstream' });
  const listening = await handle.waitListening();
  return new Mock(handle, listening.port);
}

// ---------------------------------------------------------------------------------------
// Gateway configs. Prices are kept as decimal strings so tests can do exact arithmetic.

export const TEST_MODELS = {
  'gpt-3.5-turbo': { input: '0.0005', output: '0.0015', context_window: 16385 },
  'gpt-4o-mini': { input: '0.00015', output: '0.0006', context_window: 128000 },
  'gpt-4o': { input: '0.0025', output: '0.01', context_window: 128000 },
};

// A config `models` entry from a price table entry {input, output, cached?, context_window}.
export function modelEntry({ input, output, cached, context_window, ...rest }) {
  const entry = { provider: 'openai', input_cost_per_1k: Number(input), output_cost_per_1k: Number(output), context_window, ...rest };
  if (cached !== undefined) entry.cached_input_cost_per_1k = Number(cached);
  return entry;
}

// The test config: the built-in defaults (docs/REFERENCE.md §3.2), with the provider on
// the mock, the ledger in `dir`, and no retries (a test opts in when it wants them).
export function baseConfig({ upstreamUrl, dir }) {
  return {
    server: { host: '127.0.0.1' },
    ledger: { url: `sqlite:${path.join(dir, 'ledger.db')}` },
    providers: { openai: { base_url: upstreamUrl, api_key: UPSTREAM_KEY, timeout_s: 10 } },
    models: Object.fromEntries(Object.entries(TEST_MODELS).map(([name, model]) => [name, modelEntry(model)])),
    routing: {
      aliases: ['auto'],
      encoding: 'cl100k_base',
      tiers: [
        { name: 'simple', below: 1000, model: 'gpt-3.5-turbo' },
        { name: 'medium', below: 4000, model: 'gpt-4o-mini' },
        { name: 'complex', model: 'gpt-4o' },
      ],
      baseline_model: 'gpt-4o',
      allow_unknown_models: true,
      retries: 0,
    },
  };
}

// Writes `config` (JSON is valid YAML) to a file in `dir`; returns the path.
export function writeConfig(dir, config, name = 'turnout.yaml') {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return file;
}

export class Gateway {
  constructor(handle, port, configFile, dir) {
    this.handle = handle;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.baseUrl = `${this.url}/v1`;
    this.configFile = configFile;
    this.dir = dir;
    this.apiKey = null;  // sent as Bearer by the helpers below when set
  }

  authHeaders(headers = {}) {
    return this.apiKey && !('authorization' in headers) ? { authorization: `Bearer ${this.apiKey}`, ...headers } : headers;
  }

  request(method, urlPath, options = {}) {
    return httpRequest(this.url, method, urlPath, { ...options, headers: this.authHeaders(options.headers) });
  }

  chat(body, headers = {}) {
    return this.request('POST', '/v1/chat/completions', { json: body, headers });
  }

  async stats(query = '') {
    const response = await this.request('GET', `/stats${query}`);
    if (response.status !== 200) throw new Error(`/stats${query}: ${response.status} ${response.text}`);
    return response.json;
  }

  stop(signal = 'SIGTERM') { return this.handle.kill(signal); }
}

// Starts `turnout serve` on an ephemeral port. `configure(config)` may edit the generated
// config in place; `config` replaces it whole (object or YAML text). With
// `implicitConfig`, the file is ./turnout.yaml in the working dir and --config is omitted.
export async function startGateway({ upstreamUrl, dir, configure, config, configFile, env, args = [], implicitConfig = false } = {}) {
  const workDir = dir ?? makeTempDir();
  let file = configFile;
  if (!file) {
    let effective = config;
    if (!effective) {
      effective = baseConfig({ upstreamUrl, dir: workDir });
      configure?.(effective);
    }
    file = writeConfig(workDir, effective);
  }
  const configArgs = implicitConfig ? [] : ['--config', file];
  const handle = startProcess(['serve', ...configArgs, '--port', '0', ...args], { name: 'turnout serve', cwd: workDir, env });
  const listening = await handle.waitListening();
  return new Gateway(handle, listening.port, file, workDir);
}

// A forwarding endpoint's suite (embeddings, Responses): a mock and a gateway on it with
// one retry after a 10 ms backoff; `configure(config)` edits the rest.
export async function startForwardingSuite({ configure } = {}) {
  const mock = await startMock();
  const gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => {
      config.routing.retries = 1;
      config.routing.retry_backoff_ms = 10;
      configure?.(config);
    },
  });
  return { mock, gateway };
}

// The gateway's ledger records (`turnout ledger export --format jsonl`), in write order.
export async function exportedRecords(gateway) {
  const exported = await runTurnout(['ledger', 'export', '--config', gateway.configFile, '--format', 'jsonl'],
    { cwd: gateway.dir });
  if (exported.code !== 0) throw new Error(`turnout ledger export failed (${exported.code}): ${exported.stderr}`);
  return exported.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

// The ledger record of request `id`, waiting (bounded) for the writer to store it.
export async function recordOf(gateway, id) {
  for (let i = 0; i < 50; ++i) {
    const record = (await exportedRecords(gateway)).find((r) => r.id === id);
    if (record) return record;
    await sleep(20);
  }
  throw new Error(`no ledger record for ${id}`);
}

// ---------------------------------------------------------------------------------------
// A private PostgreSQL cluster (scripts/pg-test-cluster.sh) for a test file's PostgreSQL
// cases, started when the file loads (synchronously, so `skip` is known when the suites
// are declared).

const PG_CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts/pg-test-cluster.sh');
const PG_NO_SERVER = 3;  // the script's status when the server binaries are missing

export class PgCluster {
  constructor(prefix) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.started = this.#script('start');
    // The ledger URL; null when the cluster did not start.
    this.url = this.started.status === 0 ? this.started.stdout.trim().split('\n')[0] : null;
    // For describe(..., { skip }): a reason only when PostgreSQL is not installed; any
    // other failure to start fails the suite (assertStarted) instead of hiding it.
    this.skip = this.started.status === PG_NO_SERVER ? 'PostgreSQL server binaries are not installed' : false;
  }

  assertStarted() {
    assert.equal(this.started.status, 0, `pg-test-cluster.sh start failed: ${this.started.stderr}`);
  }

  // `halt` or `resume` (the server stops or starts again on the same port), asserted.
  command(name) {
    const run = this.#script(name);
    assert.equal(run.status, 0, `pg-test-cluster.sh ${name}: ${run.stderr}`);
  }

  // Stops the server and removes its directory; harmless when it never started.
  stop() {
    this.#script('stop');
  }

  #script(command) {
    return spawnSync(PG_CLUSTER_SCRIPT, [command, this.dir], { encoding: 'utf8', timeout: 120_000 });
  }
}

export function startPgCluster(prefix = 'turnout-it-pg-') {
  return new PgCluster(prefix);
}

// ---------------------------------------------------------------------------------------
// Governance: exact money, chat calls with a virtual key, the CLI on one config.

export const PICO_PER_USD = 10n ** 12n;

// A USD decimal as printed (ledger, CLI, headers) as integer pico-dollars, never a double.
export function usdToPico(text) {
  const [whole, fraction = ''] = String(text).split('.');
  assert.match(`${whole}.${fraction}`, /^\d+\.\d*$/, `not a plain decimal: ${text}`);
  return BigInt(whole) * PICO_PER_USD + BigInt((fraction + '0'.repeat(12)).slice(0, 12));
}

// A price in USD per 1,000 tokens as integer pico-dollars per token.
export function picoPerToken(per1k) {
  return usdToPico(per1k) / 1000n;
}

// The first `"field":<decimal>` of a JSON text, read from its digits (never a double).
export function rawUsd(text, field) {
  const found = new RegExp(`"${field}":"?(-?[0-9.]+)`).exec(text);
  assert.ok(found, `no ${field} in ${text}`);
  assert.ok(!found[1].startsWith('-'), `${field} is negative: ${found[1]}`);
  return usdToPico(found[1]);
}

export const GOVERNANCE_CHAT = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 100 };

// A chat call (GOVERNANCE_CHAT, with `body` over it) made with `key`.
export function chatWithKey(gateway, key, body = {}, headers = {}) {
  return gateway.request('POST', '/v1/chat/completions',
    { json: { ...GOVERNANCE_CHAT, ...body }, headers: { authorization: `Bearer ${key}`, ...headers } });
}

// A streamed chat call (GOVERNANCE_CHAT, usage included) held open: resolves once its head
// and first bytes arrived, with the response head and a promise of how the stream ended
// ('complete' or 'cut').
export async function openChatStream(gateway, key) {
  const response = await fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...GOVERNANCE_CHAT, stream: true, stream_options: { include_usage: true } }),
  });
  assert.equal(response.status, 200, await (response.status === 200 ? '' : response.text()));
  const reader = response.body.getReader();
  const first = await reader.read();
  assert.ok(!first.done, 'the stream ended before its first bytes');
  let text = Buffer.from(first.value).toString('utf8');
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return text.includes('data: [DONE]') ? 'complete' : 'cut';
        text += Buffer.from(value).toString('utf8');
      }
    } catch {
      return 'cut';
    }
  })();
  return { headers: response.headers, ended };
}

// One query on a ledger database (a PostgreSQL URL, or a SQLite file's path), its rows as
// `a|b` lines.
export function ledgerSql(database, query) {
  if (/^postgres(ql)?:/.test(database)) {
    return execFileSync('psql', ['-X', '-A', '-t', '-F', '|', '-c', query, database]).toString().trim();
  }
  return execFileSync('sqlite3', ['-separator', '|', database, query]).toString().trim();
}

// `turnout keys|teams|ledger ...` on one config file. `onKey` sees every whole virtual key
// the CLI printed (for the tests that search logs and rows for secrets).
export function governanceClient(configFile, { onKey } = {}) {
  async function turnoutJson(args) {
    const run = await runTurnout([...args, '--config', configFile]);
    assert.equal(run.code, 0, `turnout ${args.join(' ')}: ${run.stderr}`);
    const value = JSON.parse(run.stdout);
    if (value.key) onKey?.(value.key);
    return { value, raw: run.stdout };
  }
  // The raw ledger export lines of one key (raw text: costs stay exact).
  async function ledgerLines(keyId) {
    const run = await runTurnout(['ledger', 'export', '--format', 'jsonl', '--config', configFile]);
    assert.equal(run.code, 0, run.stderr);
    return run.stdout.split('\n').filter((line) => line && JSON.parse(line).client_key_id === keyId);
  }
  const ledgerTotal = (lines) => lines.reduce((sum, line) => sum + rawUsd(line, 'cost_usd'), 0n);
  return { configFile, turnoutJson, ledgerLines, ledgerTotal };
}

// ---------------------------------------------------------------------------------------
// Assertions shared by the suites.

// Checks the OpenAI error shape {"error":{"message","type","param","code"}}.
export function openAIErrorProblems(json) {
  const problems = [];
  if (!json || typeof json !== 'object' || !json.error || typeof json.error !== 'object') return ['body has no "error" object'];
  const { error } = json;
  if (typeof error.message !== 'string' || error.message.length === 0) problems.push('error.message is not a non-empty string');
  if (typeof error.type !== 'string') problems.push('error.type is not a string');
  for (const key of ['param', 'code']) {
    if (!(key in error)) problems.push(`error.${key} is missing`);
    else if (error[key] !== null && typeof error[key] !== 'string') problems.push(`error.${key} is neither null nor a string`);
  }
  return problems;
}
