#!/usr/bin/env node
// Streaming benchmarks for `make bench` (called by scripts/bench.sh with a running mock and
// gateway on loopback):
//   ttfb     time to the first response byte and to the first SSE event, through Turnout
//            versus straight to the mock, over sequential keep-alive streaming requests
//            (alternated, so both targets see the same machine noise); p50/p99 and the
//            overhead.
//   streams  N simultaneous slow streams through one gateway: every stream must end with
//            [DONE] and no error event; the gateway's RSS is sampled from /proc meanwhile.
// Usage: bench-streams.mjs ttfb <mock-port> <gateway-port> [requests]
//        bench-streams.mjs streams <mock-port> <gateway-port> <gateway-pid> [streams] [rounds]
// Every wait is bounded; the script exits non-zero when a stream fails.
import fs from 'node:fs';
import http from 'node:http';

const body = JSON.stringify({
  model: 'gpt-4o-mini',
  stream: true,
  messages: [{ role: 'user', content: 'Stream a short answer about gateways, please.' }],
});
const REQUEST_TIMEOUT_MS = 30_000;

// Streams whose head has arrived and whose body has not ended, across all requests.
const inFlight = { now: 0, max: 0 };

// One streaming request: {firstByteMs, firstEventMs, events, done, errored}.
function streamOnce(port, agent) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const elapsedMs = () => Number(process.hrtime.bigint() - started) / 1e6;
    const result = { firstByteMs: null, firstEventMs: null, events: 0, done: false, errored: false };
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      timeout: REQUEST_TIMEOUT_MS,
    }, (res) => {
      result.firstByteMs = elapsedMs();
      inFlight.now += 1;
      inFlight.max = Math.max(inFlight.max, inFlight.now);
      res.once('close', () => { inFlight.now -= 1; });
      if (res.statusCode !== 200) result.errored = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (piece) => {
        if (result.firstEventMs === null) result.firstEventMs = elapsedMs();
        text += piece;
        let end;
        while ((end = text.indexOf('\n\n')) >= 0) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          result.events += 1;
          if (event === 'data: [DONE]') result.done = true;
          else if (event.startsWith('data: {"error"')) result.errored = true;
        }
      });
      res.on('end', () => resolve(result));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function control(port, method, path, json) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method, body: json ? JSON.stringify(json) : undefined, signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`);
  return response.json();
}

const percentile = (sorted, p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
const fmtMs = (ms) => ms.toFixed(3);

async function ttfb(mockPort, gatewayPort, requests) {
  await control(mockPort, 'POST', '/_mock/config', { chunks: 8, chunk_delay_ms: 0 });
  const targets = { direct: { port: mockPort }, turnout: { port: gatewayPort } };
  for (const target of Object.values(targets)) {
    target.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    target.firstByte = [];
    target.firstEvent = [];
  }
  const warmup = 20;
  for (let i = 0; i < warmup + requests; i += 1) {
    for (const target of Object.values(targets)) {
      const result = await streamOnce(target.port, target.agent);
      if (!result.done || result.errored) throw new Error(`stream ${i} failed: ${JSON.stringify(result)}`);
      if (i < warmup) continue;
      target.firstByte.push(result.firstByteMs);
      target.firstEvent.push(result.firstEventMs);
    }
  }
  console.log(`streaming TTFB, ${requests} sequential keep-alive requests per target (ms):`);
  console.log(`${'target'.padEnd(8)} ${'byte_p50'.padStart(9)} ${'byte_p99'.padStart(9)} ${'event_p50'.padStart(9)} ${'event_p99'.padStart(9)}`);
  const summary = {};
  for (const [name, target] of Object.entries(targets)) {
    const bytes = target.firstByte.sort((a, b) => a - b);
    const events = target.firstEvent.sort((a, b) => a - b);
    summary[name] = { b50: percentile(bytes, 50), b99: percentile(bytes, 99), e50: percentile(events, 50), e99: percentile(events, 99) };
    const s = summary[name];
    console.log(`${name.padEnd(8)} ${fmtMs(s.b50).padStart(9)} ${fmtMs(s.b99).padStart(9)} ${fmtMs(s.e50).padStart(9)} ${fmtMs(s.e99).padStart(9)}`);
    target.agent.destroy();
  }
  const { direct, turnout } = summary;
  console.log(`TTFB overhead through Turnout: first event p50 ${fmtMs(turnout.e50 - direct.e50)} ms, `
    + `p99 ${fmtMs(turnout.e99 - direct.e99)} ms; first byte p50 ${fmtMs(turnout.b50 - direct.b50)} ms`);
  await control(mockPort, 'POST', '/_mock/reset', {});
}

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

// `streams` simultaneous streams to `port`; throws when one fails.
async function runStreams(port, streams) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  inFlight.max = 0;
  const started = performance.now();
  const results = await Promise.allSettled(Array.from({ length: streams }, () => streamOnce(port, agent)));
  const wallMs = performance.now() - started;
  agent.destroy();
  const failed = results.filter((r) => r.status === 'rejected' || !r.value.done || r.value.errored);
  if (failed.length > 0) {
    const sample = failed[0].status === 'rejected' ? failed[0].reason.message : JSON.stringify(failed[0].value);
    throw new Error(`${failed.length} of ${streams} streams to port ${port} failed (e.g. ${sample})`);
  }
  const firstEvents = results.map((r) => r.value.firstEventMs).sort((a, b) => a - b);
  return {
    completed: streams - failed.length, wallMs, maxInFlight: inFlight.max,
    firstEventP50: percentile(firstEvents, 50), firstEventP99: percentile(firstEvents, 99),
  };
}

async function concurrentStreams(mockPort, gatewayPort, pid, streams, rounds) {
  const chunks = 20;
  const delayMs = 50;
  await control(mockPort, 'POST', '/_mock/config', { chunks, chunk_delay_ms: delayMs });
  const idle = rssKiB(pid).rss;
  console.log(`${streams} simultaneous streams (${chunks} chunks, ${delayMs} ms apart) through one gateway, `
    + `${rounds} rounds; gateway idle RSS ${(idle / 1024).toFixed(1)} MiB`);
  // The same load straight to the mock: what this machine and client manage without a gateway.
  const baseline = await runStreams(mockPort, streams);
  console.log(`direct to the mock: ${baseline.completed}/${streams} completed, wall ${(baseline.wallMs / 1000).toFixed(2)} s, `
    + `first event p50 ${fmtMs(baseline.firstEventP50)} ms p99 ${fmtMs(baseline.firstEventP99)} ms`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const perRound = [];
  for (let round = 1; round <= rounds; round += 1) {
    let peak = rssKiB(pid).rss;
    const sampler = setInterval(() => { peak = Math.max(peak, rssKiB(pid).rss); }, 20);
    const run = await runStreams(gatewayPort, streams);
    clearInterval(sampler);
    // Per stream at the peak: the streams actually open together (a loaded machine does not
    // open all of them within one stream's lifetime), and the conservative all-streams figure.
    const perStreamKiB = (peak - idle) / streams;
    const perOpenStreamKiB = (peak - idle) / run.maxInFlight;
    perRound.push({ peak, perStreamKiB, perOpenStreamKiB, maxInFlight: run.maxInFlight, wallMs: run.wallMs });
    console.log(`round ${round}: ${run.completed}/${streams} completed, wall ${(run.wallMs / 1000).toFixed(2)} s `
      + `(ideal ${(chunks * delayMs / 1000).toFixed(2)} s), first event p50 ${fmtMs(run.firstEventP50)} ms `
      + `p99 ${fmtMs(run.firstEventP99)} ms, at most ${run.maxInFlight} open at once, `
      + `peak RSS ${(peak / 1024).toFixed(1)} MiB, ${perOpenStreamKiB.toFixed(1)} KiB per open stream `
      + `(${perStreamKiB.toFixed(1)} KiB over all ${streams})`);
    await new Promise((resolve) => setTimeout(resolve, 500));  // let the ledger settle
  }
  const { hwm } = rssKiB(pid);
  console.log(`median over rounds: peak RSS ${(median(perRound.map((r) => r.peak)) / 1024).toFixed(1)} MiB, `
    + `${median(perRound.map((r) => r.perOpenStreamKiB)).toFixed(1)} KiB per open stream `
    + `(median peak concurrency ${median(perRound.map((r) => r.maxInFlight))}), `
    + `${median(perRound.map((r) => r.perStreamKiB)).toFixed(1)} KiB per stream over all ${streams}, `
    + `wall ${(median(perRound.map((r) => r.wallMs)) / 1000).toFixed(2)} s; VmHWM ${(hwm / 1024).toFixed(1)} MiB`);
  await control(mockPort, 'POST', '/_mock/reset', {});
}

const [mode, ...args] = process.argv.slice(2);
const guard = setTimeout(() => { console.error('bench-streams: gave up after 10 minutes'); process.exit(1); }, 600_000);
guard.unref();
if (mode === 'ttfb') {
  await ttfb(Number(args[0]), Number(args[1]), Number(args[2] ?? 300));
} else if (mode === 'streams') {
  await concurrentStreams(Number(args[0]), Number(args[1]), Number(args[2]), Number(args[3] ?? 2000), Number(args[4] ?? 3));
} else {
  console.error('usage: bench-streams.mjs ttfb <mock-port> <gateway-port> [requests]\n'
    + '       bench-streams.mjs streams <mock-port> <gateway-port> <gateway-pid> [streams] [rounds]');
  process.exit(2);
}
