// A fleet on one machine for the fleet suite and scripts/bench-fleet.sh: a private
// PostgreSQL cluster (scripts/pg-test-cluster.sh, as the integration suites start it),
// N `turnout serve` replicas on fixed loopback ports sharing its postgresql:// ledger, the
// mock upstream, and a real HAProxy in front of the replicas with health checks on
// /health. Every process is a real binary; nothing of Turnout is mocked.
//
// Processes are tracked by the integration harness's rules: bounded waits, and anything
// left at exit is SIGKILLed.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import {
  REPO_ROOT, baseConfig, closedPort, httpRequest, makeTempDir, parseJsonOrNull, sleep, startMock,
  turnoutBin, withTimeout, writeConfig,
} from '../../integration/lib/harness.mjs';

export const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts/pg-test-cluster.sh');
export const NO_POSTGRES = 3;  // pg-test-cluster.sh's status when the server binaries are missing

const live = new Set();
function killAll() {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', killAll);

// What is missing for a fleet on this machine (a skip reason), or null.
export function missingTools() {
  const haproxy = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (haproxy.error || haproxy.status !== 0) return 'haproxy is not installed (scripts/install-deps.sh --test installs it)';
  const psql = spawnSync('psql', ['--version'], { encoding: 'utf8' });
  if (psql.error || psql.status !== 0) return 'psql is not installed (the postgresql package)';
  return null;
}

// A child process with its output kept in memory (and its stdout lines parsed).
class Child {
  constructor(name, command, args, options = {}) {
    this.name = name;
    this.stdout = '';
    this.stderr = '';
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    live.add(this.child);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => { live.delete(this.child); resolve({ code, signal }); });
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => { this.stdout += chunk; });
    this.child.stderr.on('data', (chunk) => { this.stderr += chunk; });
    this.child.unref();
    this.child.stdout.unref?.();
    this.child.stderr.unref?.();
  }

  get running() { return live.has(this.child); }

  lines() { return this.stdout.split('\n').map(parseJsonOrNull).filter(Boolean); }

  async kill(signal = 'SIGTERM', timeoutMs = 15_000) {
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
}

// Polls `probe` (async, truthy when done) every `everyMs` until `timeoutMs`; returns its
// last value or throws naming `what`.
export async function waitFor(what, probe, { timeoutMs = 15_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { last = await probe(); } catch (error) { last = undefined; if (Date.now() >= deadline) throw error; }
    if (last) return last;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL: started by pg-test-cluster.sh; stopped and started again in place (same data,
// same port) with pg_ctl for the outage checks.

export class Postgres {
  constructor(dir, url) {
    this.dir = dir;
    this.url = url;
    this.port = Number(fs.readFileSync(path.join(dir, 'port'), 'utf8').trim());
  }

  static start(dir) {
    const started = spawnSync(CLUSTER_SCRIPT, ['start', dir], { encoding: 'utf8', timeout: 120_000 });
    if (started.status === NO_POSTGRES) return { skip: 'PostgreSQL server binaries are not installed' };
    if (started.status !== 0) throw new Error(`pg-test-cluster.sh start failed: ${started.stderr}`);
    return { postgres: new Postgres(dir, started.stdout.trim().split('\n')[0]) };
  }

  static bindir() {
    if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
    const versions = fs.readdirSync('/usr/lib/postgresql').filter((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/pg_ctl`));
    versions.sort((a, b) => Number(a) - Number(b));
    return `/usr/lib/postgresql/${versions.at(-1)}/bin`;
  }

  // pg_ctl as the cluster's owner (the postgres user when we are root, as the script does).
  pgCtl(args) {
    const pgCtl = path.join(Postgres.bindir(), 'pg_ctl');
    const [command, argv] = process.getuid() === 0
      ? ['runuser', ['-u', 'postgres', '--', pgCtl, ...args]]
      : [pgCtl, args];
    const result = spawnSync(command, argv, { cwd: this.dir, encoding: 'utf8', timeout: 60_000 });
    if (result.status !== 0) throw new Error(`pg_ctl ${args.join(' ')} failed: ${result.stderr}${result.stdout}`);
  }

  // A fast shutdown: open connections are closed, as when the database server goes away.
  halt() { this.pgCtl(['-D', path.join(this.dir, 'data'), '-m', 'fast', '-w', 'stop']); }

  resume() {
    this.pgCtl(['-D', path.join(this.dir, 'data'), '-l', path.join(this.dir, 'server.log'), '-w', '-t', '30',
      '-o', `-p ${this.port} -k ${path.join(this.dir, 'socket')} -c listen_addresses=127.0.0.1`, 'start']);
  }

  // Rows of a query (tab-separated fields).
  sql(query) {
    const psql = spawnSync('psql', ['-X', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', query, this.url],
      { encoding: 'utf8', timeout: 30_000 });
    if (psql.status !== 0) throw new Error(`psql failed: ${psql.stderr}`);
    return psql.stdout.trim().split('\n').filter(Boolean).map((line) => line.split('\t'));
  }

  stop() { spawnSync(CLUSTER_SCRIPT, ['stop', this.dir], { encoding: 'utf8', timeout: 60_000 }); }
}

// ---------------------------------------------------------------------------------------
// Replicas: `turnout serve` on a fixed port (so a restarted replica comes back where the
// balancer looks for it), one config file per replica, one shared ledger.

export class Replica {
  constructor({ index, port, configFile, dir }) {
    this.index = index;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.configFile = configFile;
    this.dir = dir;
    this.process = null;
    this.previous = [];  // earlier processes of this replica (before a restart)
  }

  async start() {
    if (this.process) this.previous.push(this.process);
    this.process = new Child(`replica ${this.index}`, turnoutBin(), ['serve', '--config', this.configFile, '--port', String(this.port)],
      { cwd: this.dir, env: { ...process.env } });
    const proc = this.process;
    await withTimeout(Promise.race([
      waitFor(`replica ${this.index} listening`, () => proc.lines().find((l) => l.event === 'listening'), { timeoutMs: 20_000 }),
      proc.exited.then(({ code, signal }) => { throw new Error(`replica ${this.index} exited (${code}, ${signal}): ${proc.stderr}`); }),
    ]), 25_000, `replica ${this.index} start`);
    return this;
  }

  get running() { return this.process?.running ?? false; }

  // Every access-log line of every process this replica ran (those that parse as JSON).
  logLines() { return [...this.previous, this.process].filter(Boolean).flatMap((p) => p.lines()); }

  // The raw stdout of every process this replica ran.
  stdout() { return [...this.previous, this.process].filter(Boolean).map((p) => p.stdout).join(''); }

  health() { return httpRequest(this.url, 'GET', '/health', { timeoutMs: 5_000 }); }

  async stats(query = '') {
    const response = await httpRequest(this.url, 'GET', `/stats${query}`, { timeoutMs: 15_000 });
    if (response.status !== 200) throw new Error(`replica ${this.index} /stats: ${response.status} ${response.text}`);
    return response.json;
  }

  kill(signal) { return this.process.kill(signal); }
}

// ---------------------------------------------------------------------------------------
// HAProxy: round robin over the replicas, health checks on GET /health (a 503 takes a
// replica out), and a connection that fails before the request was sent redispatched to
// another replica; a request that reached a replica is never sent twice.

export function haproxyConfig({ frontPort, statsPort, replicas, checkIntervalMs = 500 }) {
  const servers = replicas.map((r) =>
    `  server r${r.index} 127.0.0.1:${r.port} check inter ${checkIntervalMs} fall 2 rise 2`).join('\n');
  return `global
  maxconn 4096

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  retries 3
  option redispatch
  retry-on conn-failure

frontend turnout
  bind 127.0.0.1:${frontPort}
  default_backend replicas

backend replicas
  balance roundrobin
  option httpchk GET /health
  http-check expect status 200
${servers}

listen stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /haproxy
`;
}

export class Balancer {
  constructor(dir, replicas) {
    this.dir = dir;
    this.replicas = replicas;
  }

  async start() {
    this.frontPort = await closedPort();
    this.statsPort = await closedPort();
    this.url = `http://127.0.0.1:${this.frontPort}`;
    this.configFile = path.join(this.dir, 'haproxy.cfg');
    fs.writeFileSync(this.configFile, haproxyConfig({ frontPort: this.frontPort, statsPort: this.statsPort, replicas: this.replicas }));
    const check = spawnSync('haproxy', ['-c', '-f', this.configFile], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`haproxy -c: ${check.stderr}${check.stdout}`);
    // -db: foreground, logs to stderr.
    this.process = new Child('haproxy', 'haproxy', ['-db', '-f', this.configFile], { cwd: this.dir });
    await waitFor('haproxy listening', async () => (await httpRequest(this.url, 'GET', '/health', { timeoutMs: 2_000 })).status > 0,
      { timeoutMs: 10_000 });
    return this;
  }

  // {r0: 'UP' | 'DOWN' | 'UP 1/2' | ...} from HAProxy's CSV statistics.
  async serverStates() {
    const response = await httpRequest(`http://127.0.0.1:${this.statsPort}`, 'GET', '/haproxy;csv', { timeoutMs: 5_000 });
    const [header, ...rows] = response.text.trim().split('\n');
    const columns = header.replace(/^# /, '').split(',');
    const states = {};
    for (const row of rows) {
      const fields = Object.fromEntries(row.split(',').map((v, i) => [columns[i], v]));
      if (fields.pxname === 'replicas' && /^r\d+$/.test(fields.svname)) states[fields.svname] = fields.status;
    }
    return states;
  }

  waitStates(what, predicate, timeoutMs = 15_000) {
    return waitFor(what, async () => { const s = await this.serverStates(); return predicate(s) ? s : null; }, { timeoutMs });
  }

  stop() { return this.process?.kill('SIGTERM'); }
}

// ---------------------------------------------------------------------------------------
// The whole fleet.

export async function startFleet({ replicas: count = 3, mockArgs = [], configure, dir = makeTempDir('turnout-fleet-') } = {}) {
  fs.chmodSync(dir, 0o755);  // as root the cluster runs as the postgres user, who must enter it
  const pgDir = path.join(dir, 'pg');
  const { postgres, skip } = Postgres.start(pgDir);
  if (skip) { fs.rmSync(dir, { recursive: true, force: true }); return { skip }; }
  const fleet = { dir, postgres, replicas: [], mock: null, balancer: null };
  try {
    fleet.mock = await startMock(mockArgs);
    for (let index = 0; index < count; index += 1) {
      const replicaDir = path.join(dir, `replica-${index}`);
      fs.mkdirSync(replicaDir);
      const config = baseConfig({ upstreamUrl: fleet.mock.baseUrl, dir: replicaDir });
      config.ledger.url = postgres.url;
      config.server.shutdown_grace_s = 5;
      // No local spool: the outage test checks the refuse-while-the-database-is-away path
      // (with the default spool, replicas keep serving through an outage; tests/integration/
      // spool.test.mjs covers that).
      config.ledger.spool_path = '';
      configure?.(config, index);
      const configFile = writeConfig(replicaDir, config);
      const replica = new Replica({ index, port: await closedPort(), configFile, dir: replicaDir });
      fleet.replicas.push(replica);
      await replica.start();
    }
    fleet.balancer = await new Balancer(dir, fleet.replicas).start();
  } catch (error) {
    await stopFleet(fleet);  // no PostgreSQL or replica outlives a fleet that failed to start
    throw error;
  }
  return fleet;
}

export async function stopFleet(fleet) {
  if (!fleet) return;
  await Promise.allSettled([
    fleet.balancer?.stop(),
    ...fleet.replicas.map((r) => r.running && r.kill('SIGTERM')),
    fleet.mock?.stop(),
  ]);
  fleet.postgres?.stop();
  killAll();
  fs.rmSync(fleet.dir, { recursive: true, force: true });
}

// `turnout ledger export --format jsonl` of the shared ledger: one object per record.
export function exportLedger(configFile) {
  const result = spawnSync(turnoutBin(), ['ledger', 'export', '--format', 'jsonl', '--config', configFile],
    { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`turnout ledger export: ${result.status} ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}
