// The container image (Containerfile): built with Debian's podman and smoke-tested —
// non-root user, binary only, HEALTHCHECK on /health, config from a mounted file with
// ${VAR} from the environment, the access log on stdout, exit 0 on SIGTERM.
//
// Where the machine cannot do that, the suite says why and skips; it never fakes a
// result. It needs: podman; a container runtime that starts containers here; and the
// Debian 12 base images already in local storage — a test never downloads images (pull
// docker.io/library/debian:12 and :12-slim first, or name local Debian 12 images in
// TURNOUT_DEBIAN_IMAGE / TURNOUT_DEBIAN_SLIM_IMAGE). The build compiles Turnout inside the
// container (several minutes on two cores).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { REPO_ROOT, UPSTREAM_KEY, closedPort, httpRequest, makeTempDir, startMock, stopAll } from '../integration/lib/harness.mjs';
import { waitFor } from './lib/fleet.mjs';

const DEBIAN = process.env.TURNOUT_DEBIAN_IMAGE ?? 'docker.io/library/debian:12';
const DEBIAN_SLIM = process.env.TURNOUT_DEBIAN_SLIM_IMAGE ?? 'docker.io/library/debian:12-slim';
const TAG = `localhost/turnout-test:${process.pid}`;
const BUILD_TIMEOUT_MS = 45 * 60_000;

function podman(args, { timeout = 120_000 } = {}) {
  return spawnSync('podman', args, { encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
}

// Options `podman run` needs on this machine: none, or (where crun cannot drive the
// cgroups and the host refuses container rlimits above its own) runc with lowered limits.
function runtimeOptions() {
  const candidates = [
    [],
    ['--runtime', 'runc', '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096'],
  ];
  const errors = [];
  for (const options of candidates) {
    const probe = podman(['run', '--rm', '--network', 'none', ...options, DEBIAN_SLIM, 'true'], { timeout: 60_000 });
    if (probe.status === 0) return { options };
    errors.push(`podman run ${options.join(' ') || '(defaults)'}: ${(probe.stderr || String(probe.error)).trim()}`);
  }
  return { reason: `containers cannot run on this machine:\n  ${errors.join('\n  ')}` };
}

function skipReason() {
  const version = podman(['--version']);
  if (version.error || version.status !== 0) return { reason: 'podman is not installed (apt-get install podman)' };
  const absent = [DEBIAN, DEBIAN_SLIM].filter((image) => podman(['image', 'exists', image]).status !== 0);
  if (absent.length > 0) {
    return { reason: `the base image(s) ${absent.join(', ')} are not in local storage, and tests never download ` +
      'images (podman pull them, or set TURNOUT_DEBIAN_IMAGE / TURNOUT_DEBIAN_SLIM_IMAGE to local Debian 12 images)' };
  }
  return runtimeOptions();
}

const probed = skipReason();
if (probed.reason) console.log(`# container image tests skipped: ${probed.reason}`);
const runOptions = probed.options ?? [];
let built = false;
let container = null;
let port;
let mock;

describe('the container image', { skip: probed.reason ?? false }, () => {
  before(() => {
    const build = podman(['build', '--format', 'docker', '--network', 'host', ...runOptions,
      '--build-arg', `DEBIAN_IMAGE=${DEBIAN}`, '--build-arg', `DEBIAN_SLIM_IMAGE=${DEBIAN_SLIM}`,
      '-t', TAG, '-f', 'Containerfile', REPO_ROOT], { timeout: BUILD_TIMEOUT_MS });
    assert.equal(build.status, 0, `podman build failed:\n${build.stderr.slice(-4000)}`);
    built = true;
  });

  after(async () => {
    if (container) podman(['rm', '-f', '-t', '0', container]);
    if (built) podman(['rmi', '-f', TAG]);
    await stopAll();
  });

  it('is configured as a non-root image with a HEALTHCHECK and the binary as entrypoint', () => {
    const inspect = JSON.parse(podman(['image', 'inspect', TAG]).stdout)[0];
    assert.equal(inspect.Config.User, '10001:10001');
    assert.deepEqual(inspect.Config.Entrypoint, ['/usr/local/bin/turnout']);
    assert.match(JSON.stringify(inspect.Config.Healthcheck?.Test ?? []), /GET \/health/);
    const size = inspect.Size / 1e6;
    assert.ok(size < 250, `image is ${size.toFixed(0)} MB`);
  });

  it('holds the binary only: no compiler, no sources', () => {
    const look = podman(['run', '--rm', '--network', 'none', ...runOptions, '--entrypoint', 'bash', TAG, '-c',
      'id -u; command -v cc c++ cmake || true; ls /src 2>&1 || true; /usr/local/bin/turnout --version']);
    assert.equal(look.status, 0, look.stderr);
    const lines = look.stdout.trim().split('\n');
    assert.equal(lines[0], '10001');
    assert.doesNotMatch(look.stdout, /\/(cc|c\+\+|cmake)$/m, 'no build tools');
    assert.match(look.stdout, /No such file or directory/, 'no /src');
    assert.match(lines.at(-1), /\d+\.\d+\.\d+/);
  });

  it('serves from a mounted config with ${VAR} from the environment, healthy, logging to stdout', async () => {
    mock = await startMock();
    port = await closedPort();
    const dir = makeTempDir('turnout-container-');
    fs.chmodSync(dir, 0o755);
    const config = path.join(dir, 'turnout.yaml');
    fs.writeFileSync(config, [
      'server: {host: 127.0.0.1, port: ${TURNOUT_PORT}}',
      'ledger: {url: "sqlite:/var/lib/turnout/turnout.db"}',
      'providers:',
      '  openai: {base_url: "${UPSTREAM_URL}", api_key: "${UPSTREAM_KEY}"}',
      '',
    ].join('\n'));
    fs.chmodSync(config, 0o644);
    const run = podman(['run', '-d', '--network', 'host', ...runOptions,
      '-v', `${config}:/etc/turnout/turnout.yaml:ro`,
      '-e', `TURNOUT_PORT=${port}`, '-e', `UPSTREAM_URL=${mock.baseUrl}`, '-e', `UPSTREAM_KEY=${UPSTREAM_KEY}`, TAG]);
    assert.equal(run.status, 0, run.stderr);
    container = run.stdout.trim();
    const url = `http://127.0.0.1:${port}`;
    await waitFor('the container answering /health', async () => (await httpRequest(url, 'GET', '/health', { timeoutMs: 2_000 })).status === 200, { timeoutMs: 30_000 });
    const check = podman(['healthcheck', 'run', container]);
    assert.equal(check.status, 0, `HEALTHCHECK: ${check.stdout}${check.stderr}`);
    const chat = await httpRequest(url, 'POST', '/v1/chat/completions',
      { json: { model: 'auto', messages: [{ role: 'user', content: 'hi' }] }, headers: { 'x-request-id': 'container-smoke-1' } });
    assert.equal(chat.status, 200, chat.text);
    assert.equal((await mock.chatRequests()).length, 1, 'the call reached the upstream named by ${UPSTREAM_URL}');
    const logs = podman(['logs', container]);
    const entries = logs.stdout.split('\n').map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
    assert.ok(entries.some((e) => JSON.stringify(e).includes('container-smoke-1')), `the access log is on stdout:\n${logs.stdout}`);
  });

  it('stops with exit code 0 on SIGTERM', () => {
    const stop = podman(['stop', '-t', '20', container]);
    assert.equal(stop.status, 0, stop.stderr);
    const state = JSON.parse(podman(['inspect', container]).stdout)[0].State;
    assert.equal(state.ExitCode, 0);
  });
});
