// Open-loop load for the admission benchmark (scripts/bench-admission.sh): POSTs one JSON
// body at a fixed rate, round-robin over several gateway URLs, for a fixed time, and prints
// one JSON line: what was sent and answered, client-side latency percentiles and the
// gateway's own `x-turnout-overhead-us` percentiles (admission included, the upstream
// excluded). Open loop: requests leave on schedule whether or not earlier ones returned,
// and latency counts from the scheduled time, so a stall shows up instead of hiding
// (no coordinated omission).
//
//   node bench/admission_load.mjs --targets http://h:p1,http://h:p2 --key KEY \
//     --body FILE --rate 1000 --seconds 20 [--timeout-s 120]
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    targets: { type: 'string' },
    key: { type: 'string' },
    body: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    path: { type: 'string', default: '/v1/chat/completions' },
    'timeout-s': { type: 'string', default: '120' },
  },
});
const targets = values.targets.split(',').map((url) => new URL(url));
const body = fs.readFileSync(values.body);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const TICK_MS = 10;  // requests leave in small groups every 10 ms
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

const clientUs = [];
const overheadUs = [];
const statuses = {};
let errors = 0;
const errorCodes = {};
let sent = 0;
let lastAnswerNs = 0n;
const timeoutMs = Number(values['timeout-s']) * 1000;

function send(target, scheduledNs) {
  sent += 1;
  const request = http.request({
    host: target.hostname, port: target.port, path: values.path, method: 'POST', agent,
    headers: { authorization: `Bearer ${values.key}`, 'content-type': 'application/json', 'content-length': body.length },
  }, (response) => {
    response.resume();
    response.on('end', () => {
      statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
      if (response.statusCode !== 200) return;
      lastAnswerNs = process.hrtime.bigint();
      clientUs.push(Number(lastAnswerNs - scheduledNs) / 1000);
      const overhead = Number(response.headers['x-turnout-overhead-us']);
      if (Number.isFinite(overhead)) overheadUs.push(overhead);
    });
  });
  request.setTimeout(timeoutMs, () => request.destroy(new Error('timeout')));
  request.on('error', (error) => {
    errors += 1;
    errorCodes[error.code ?? error.message] = (errorCodes[error.code ?? error.message] ?? 0) + 1;
  });
  request.end(body);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
}

const total = Math.round(rate * seconds);
const start = process.hrtime.bigint();
const intervalNs = 1e9 / rate;
let next = 0;
await new Promise((resolve) => {
  const tick = () => {
    const elapsedNs = Number(process.hrtime.bigint() - start);
    while (next < total && next * intervalNs <= elapsedNs) {
      send(targets[next % targets.length], start + BigInt(Math.round(next * intervalNs)));
      next += 1;
    }
    if (next >= total) resolve();
    else setTimeout(tick, TICK_MS);
  };
  tick();
});
const sendingS = Number(process.hrtime.bigint() - start) / 1e9;
// Wait (bounded) for the answers still in flight.
const deadline = Date.now() + timeoutMs;
const answered = () => Object.values(statuses).reduce((a, b) => a + b, 0) + errors;
while (answered() < sent && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
agent.destroy();

clientUs.sort((a, b) => a - b);
overheadUs.sort((a, b) => a - b);
console.log(JSON.stringify({
  sent, offered_rps: Math.round(sent / sendingS),
  // 200s per second from the first send to the last 200: what was sustained.
  admitted_rps: lastAnswerNs ? Math.round((statuses[200] ?? 0) / (Number(lastAnswerNs - start) / 1e9)) : 0, statuses, errors, error_codes: errorCodes,
  client_p50_us: percentile(clientUs, 50), client_p99_us: percentile(clientUs, 99),
  overhead_p50_us: percentile(overheadUs, 50), overhead_p99_us: percentile(overheadUs, 99),
}));
