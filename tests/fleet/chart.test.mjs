// The Helm chart (deploy/helm/turnout) rendered without helm by tests/fleet/lib/chart.mjs
// and its manifests validated: kinds, required fields, labels and selectors, ports and
// probes that agree with turnout.yaml, a liveness probe that does not depend on the
// database, termination grace matching server.shutdown_grace_s, secrets only by
// reference, and a turnout.yaml the real binary accepts. Also the compose file's fleet and
// its HAProxy config (checked by haproxy itself when it is installed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';

import { REPO_ROOT, runTurnout } from '../integration/lib/harness.mjs';
import { renderChart, renderTemplate, toYaml } from './lib/chart.mjs';

const CHART = path.join(REPO_ROOT, 'deploy/helm/turnout');
const LABELS = ['app.kubernetes.io/name', 'app.kubernetes.io/instance'];

function byKind(manifests) {
  const kinds = {};
  for (const { object } of manifests) {
    assert.ok(!kinds[object.kind], `one ${object.kind}`);
    kinds[object.kind] = object;
  }
  return kinds;
}

function podSpec(deployment) { return deployment.spec.template.spec; }
function container(deployment) {
  const containers = podSpec(deployment).containers;
  assert.equal(containers.length, 1, 'one container');
  return containers[0];
}

// ${VAR} names (without a :- default) the config needs from the environment.
function requiredVariables(text) {
  return [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]);
}

function selects(selector, labels) {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

describe('the chart renderer (Go-template subset)', () => {
  // Expected outputs are what helm/text/template produce for the same templates.
  const cases = [
    ['a: {{ .Values.x }}\n', { x: 3 }, 'a: 3\n'],
    ['a:\n  {{- if .Values.on }}\n  b: 1\n  {{- end }}\nc: 2\n', { on: true }, 'a:\n  b: 1\nc: 2\n'],
    ['a:\n  {{- if .Values.on }}\n  b: 1\n  {{- end }}\nc: 2\n', { on: false }, 'a:\nc: 2\n'],
    ['{{- if eq .Values.m "x" }}X{{ else if eq .Values.m "y" }}Y{{ else }}Z{{ end }}', { m: 'y' }, 'Y'],
    ['l:\n{{- range .Values.l }}\n  - {{ .n }}\n{{- end }}\n', { l: [{ n: 'a' }, { n: 'b' }] }, 'l:\n  - a\n  - b\n'],
    ['{{- with .Values.m }}k: {{ .a }}{{ end }}', { m: { a: 1 } }, 'k: 1'],
    ['{{- with .Values.m }}k{{ else }}none{{ end }}', { m: {} }, 'none'],
    ['v: {{ .Values.s | quote }}', { s: 'x"y' }, 'v: "x\\"y"'],
    ['v: {{ .Values.n | quote }}', { n: 8000 }, 'v: "8000"'],
    ['v: {{ .Values.missing | default "d" }}', { missing: '' }, 'v: d'],
    ['v: {{ add .Values.a .Values.b 5 }}', { a: 30, b: 5 }, 'v: 40'],
    ['r:\n  {{- toYaml .Values.r | nindent 2 }}\n', { r: { b: [1, 'x'], a: { c: true } } }, 'r:\n  a:\n    c: true\n  b:\n  - 1\n  - x\n'],
    ['{{/* a comment */}}x', {}, 'x'],
    ['v: {{ (add 1 2) }}', {}, 'v: 3'],
  ];
  for (const [template, values, expected] of cases) {
    it(`renders ${JSON.stringify(template)}`, () => {
      assert.equal(renderTemplate(template, { Values: values }), expected);
    });
  }

  it('refuses what it does not implement instead of rendering it differently', () => {
    assert.throws(() => renderTemplate('{{ include "x" . }}', { Values: {} }), /outside the supported subset/);
    assert.throws(() => renderTemplate('{{ lower "X" }}', { Values: {} }), /"lower" is outside/);
    assert.throws(() => renderTemplate('{{ $x := 1 }}', { Values: {} }), /outside the supported subset/);
    assert.throws(() => renderTemplate('{{ .Values.nope }}', { Values: {} }), /is not set/);
    assert.throws(() => renderTemplate('{{ .Values.m }}', { Values: { m: { a: 1 } } }), /without toYaml/);
    assert.throws(() => renderTemplate('{{ if .Values.a }}x', { Values: { a: 1 } }), /without \{\{ end \}\}/);
  });

  it('writes YAML that parses back to the same value', () => {
    const value = { z: 'a: b', y: ['x', { k: 'v', n: 1 }], t: 'true', n: '8000', e: '', s: '${VAR:-}', u: 'https://x/v1', m: {}, l: [] };
    assert.deepEqual(YAML.parse(toYaml(value)), value);
  });
});

describe('deploy/helm/turnout', () => {
  const { chart, values, manifests } = renderChart(CHART);
  const kinds = byKind(manifests);

  it('renders a Deployment, Service, ConfigMap and PodDisruptionBudget (no HPA by default)', () => {
    assert.equal(chart.apiVersion, 'v2');
    assert.deepEqual(Object.keys(kinds).sort(), ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service']);
    for (const { file, object } of manifests) {
      assert.ok(typeof object.apiVersion === 'string' && object.apiVersion.length > 0, `${file}: apiVersion`);
      assert.match(object.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${file}: metadata.name is a DNS label`);
      for (const label of LABELS) assert.ok(object.metadata.labels?.[label], `${file}: label ${label}`);
    }
    assert.equal(kinds.Deployment.apiVersion, 'apps/v1');
    assert.equal(kinds.PodDisruptionBudget.apiVersion, 'policy/v1');
  });

  it('runs N replicas whose pods the selectors, the Service and the PDB match', () => {
    const deployment = kinds.Deployment;
    assert.equal(deployment.spec.replicas, values.replicaCount);
    const podLabels = deployment.spec.template.metadata.labels;
    assert.ok(selects(deployment.spec.selector.matchLabels, podLabels), 'the Deployment selects its pods');
    assert.ok(selects(kinds.Service.spec.selector, podLabels), 'the Service selects the pods');
    assert.ok(selects(kinds.PodDisruptionBudget.spec.selector.matchLabels, podLabels), 'the PDB selects the pods');
    assert.equal(kinds.PodDisruptionBudget.spec.maxUnavailable, 1);
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rollout never drops below N ready replicas');
  });

  it('has ports and probes consistent with turnout.yaml', () => {
    const c = container(kinds.Deployment);
    const config = YAML.parse(kinds.ConfigMap.data['turnout.yaml']);
    assert.equal(config.server.host, '0.0.0.0', 'listens beyond loopback inside the pod');
    const http = c.ports.find((p) => p.name === 'http');
    assert.equal(http.containerPort, config.server.port);
    assert.equal(kinds.Service.spec.ports[0].targetPort, 'http');
    assert.ok(c.ports.some((p) => p.name === kinds.Service.spec.ports[0].targetPort), 'the Service targets a named container port');
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/health', port: 'http' }, 'readiness is /health (503 when the ledger is unreachable)');
    const live = c.livenessProbe;
    assert.ok(live.tcpSocket || live.httpGet, 'a liveness probe');
    assert.notEqual(live.httpGet?.path?.split('?')[0], '/health', 'liveness must not depend on the database');
    if (live.tcpSocket) assert.equal(live.tcpSocket.port, 'http');
    assert.ok(live.periodSeconds * live.failureThreshold >= 30, 'liveness is not quick to restart');
  });

  it('terminates gracefully: the grace period covers preStop plus server.shutdown_grace_s', () => {
    const spec = podSpec(kinds.Deployment);
    const c = container(kinds.Deployment);
    const config = YAML.parse(kinds.ConfigMap.data['turnout.yaml']);
    const preStop = Number(c.lifecycle.preStop.exec.command[1]);
    assert.deepEqual(c.lifecycle.preStop.exec.command, ['sleep', String(values.preStopSleepSeconds)]);
    assert.ok(spec.terminationGracePeriodSeconds > config.server.shutdown_grace_s + preStop,
      `${spec.terminationGracePeriodSeconds} > ${config.server.shutdown_grace_s} + ${preStop}`);
    const longer = byKind(renderChart(CHART, { values: { config: { server: { shutdown_grace_s: 120 } } } }).manifests);
    assert.equal(podSpec(longer.Deployment).terminationGracePeriodSeconds, 120 + values.preStopSleepSeconds + 5);
  });

  it('mounts turnout.yaml from the ConfigMap and takes secrets only by reference', () => {
    const deployment = kinds.Deployment;
    const c = container(deployment);
    const volume = podSpec(deployment).volumes.find((v) => v.configMap);
    assert.equal(volume.configMap.name, kinds.ConfigMap.metadata.name);
    const mount = c.volumeMounts.find((m) => m.name === volume.name);
    assert.deepEqual(c.args, ['serve', '--config', path.posix.join(mount.mountPath, 'turnout.yaml')]);
    assert.equal(mount.readOnly, true);
    const text = kinds.ConfigMap.data['turnout.yaml'];
    const provided = new Set(c.env.map((e) => e.name));
    for (const name of requiredVariables(text)) assert.ok(provided.has(name), `\${${name}} in turnout.yaml is set in the pod`);
    for (const e of c.env.filter((x) => x.valueFrom)) {
      assert.ok(e.valueFrom.secretKeyRef.name && e.valueFrom.secretKeyRef.key, `${e.name} names a Secret and key`);
    }
    assert.ok(!/postgresql:\/\/[^$]/.test(text), 'no database URL with credentials in the ConfigMap');
    assert.equal(manifests.some(({ object }) => object.kind === 'Secret'), false, 'the chart holds no Secret');
    assert.match(deployment.spec.template.metadata.annotations['checksum/config'], /^[0-9a-f]{64}$/);
  });

  it('runs as non-root with a read-only root file system and measured resource requests', () => {
    const spec = podSpec(kinds.Deployment);
    const c = container(kinds.Deployment);
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.ok(spec.securityContext.runAsUser > 0);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.match(String(c.resources.requests.cpu), /^\d+m?$/);
    assert.match(String(c.resources.requests.memory), /^\d+(Mi|Gi)$/);
  });

  it('turnout.yaml from the ConfigMap is a config the real binary accepts', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'turnout-chart-'));
    try {
      const file = path.join(dir, 'turnout.yaml');
      fs.writeFileSync(file, kinds.ConfigMap.data['turnout.yaml']);
      const env = { TURNOUT_DATABASE_URL: 'postgresql://turnout:secret@db.example:5432/turnout', OPENAI_API_KEY: 'sk-test' };
      const body = JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] });
      const routed = await runTurnout(['route', '--config', file], { input: body, env });
      assert.equal(routed.code, 0, routed.stderr);
      assert.equal(JSON.parse(routed.stdout).route, 'simple');
      // And a broken value is refused, naming the key (the check above can fail).
      fs.writeFileSync(file, kinds.ConfigMap.data['turnout.yaml'].replace('port: 8000', 'port: many'));
      const refused = await runTurnout(['route', '--config', file], { input: body, env });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /server\.port/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with autoscaling: an HPA on the Deployment, which then leaves replicas to it', () => {
    const scaled = byKind(renderChart(CHART, { values: { autoscaling: { enabled: true }, podDisruptionBudget: { enabled: false } } }).manifests);
    assert.deepEqual(Object.keys(scaled).sort(), ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Service']);
    const hpa = scaled.HorizontalPodAutoscaler;
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: scaled.Deployment.metadata.name });
    assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas >= hpa.spec.minReplicas);
    assert.equal(scaled.Deployment.spec.replicas, undefined, 'no fixed replicas to fight the HPA');
    assert.ok(container(scaled.Deployment).resources.requests.cpu, 'CPU utilisation needs a CPU request');
  });

  it('liveness can be switched to an HTTP path that is not /health', () => {
    const http = byKind(renderChart(CHART, { values: { liveness: { mode: 'http' } } }).manifests);
    assert.deepEqual(container(http.Deployment).livenessProbe.httpGet, { path: values.liveness.livenessPath, port: 'http' });
  });
});

describe('deploy/compose.yaml', () => {
  const compose = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'deploy/compose.yaml'), 'utf8'));
  const services = compose.services;

  it('is three replicas on one PostgreSQL behind a load balancer', () => {
    const replicas = Object.keys(services).filter((name) => /^turnout-\d+$/.test(name));
    assert.equal(replicas.length, 3);
    assert.ok(services.postgres, 'a postgres service');
    assert.ok(services.haproxy, 'a load balancer');
    const urls = new Set();
    for (const name of replicas) {
      const s = services[name];
      assert.ok(s.image || s.build, `${name}: image or build`);
      assert.ok(s.depends_on?.postgres, `${name} waits for postgres`);
      assert.match(JSON.stringify(s.healthcheck?.test ?? []), /\/health/, `${name}: health check on /health`);
      urls.add(s.environment.TURNOUT_DATABASE_URL);
    }
    assert.equal(urls.size, 1, 'one ledger for all replicas');
    assert.match([...urls][0], /^postgresql:\/\/[^@]+@postgres:5432\//);
    for (const name of replicas) assert.ok(services.haproxy.depends_on[name], `haproxy waits for ${name}`);
  });

  it('its HAProxy config checks /health on every replica, and haproxy accepts it', (t) => {
    const cfgPath = path.join(REPO_ROOT, 'deploy/compose/haproxy.cfg');
    const cfg = fs.readFileSync(cfgPath, 'utf8');
    assert.match(cfg, /option httpchk GET \/health/);
    for (const name of Object.keys(services).filter((n) => /^turnout-\d+$/.test(n))) {
      assert.match(cfg, new RegExp(`server ${name} ${name}:8000 check`), `${name} is a checked server`);
    }
    const check = spawnSync('haproxy', ['-c', '-f', cfgPath], { encoding: 'utf8' });
    if (check.error) return t.skip('haproxy is not installed');
    assert.equal(check.status, 0, check.stderr + check.stdout);
  });

  it('its turnout.yaml is a config the real binary accepts', async () => {
    const file = path.join(REPO_ROOT, 'deploy/compose/turnout.yaml');
    const env = { TURNOUT_DATABASE_URL: 'postgresql://turnout:x@postgres:5432/turnout', OPENAI_API_KEY: '' };
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    const routed = await runTurnout(['route', '--config', file], { input: body, env });
    assert.equal(routed.code, 0, routed.stderr);
  });
});

describe('deploy/container/turnout.yaml (the image\'s default config)', () => {
  const file = path.join(REPO_ROOT, 'deploy/container/turnout.yaml');
  const body = JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] });

  it('is accepted with no variables set, and takes them from the environment', async () => {
    const bare = await runTurnout(['route', '--config', file], { input: body, env: { OPENAI_API_KEY: '' } });
    assert.equal(bare.code, 0, bare.stderr);
    const listening = await runTurnout(['route', '--config', file], {
      input: body, env: { TURNOUT_PORT: '9001', TURNOUT_LEDGER_URL: 'postgresql://u:p@db:5432/t', TURNOUT_SHUTDOWN_GRACE_S: '5' } });
    assert.equal(listening.code, 0, listening.stderr);
    const refused = await runTurnout(['route', '--config', file], { input: body, env: { TURNOUT_PORT: 'eighty' } });
    assert.equal(refused.code, 2, 'a bad ${TURNOUT_PORT} is a config error');
    assert.match(refused.stderr, /server\.port/);
  });
});
