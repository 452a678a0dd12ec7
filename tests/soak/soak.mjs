// A bounded soak and abuse run against the real binary, on loopback only: load (buffered
// and streamed calls), clients that abort streams midway, and upstream faults (resets,
// stalls, malformed answers, 5xx, hangs), then checks that
//   - every call got an answer and the gateway is still healthy;
//   - every call that reached the gateway is in the ledger (/stats total_calls);
//   - the gateway's resident memory after the run is flat against the warmed-up level.
//
//   node tests/soak/soak.mjs [--seconds N] [--concurrency C]
// CI runs a short variant (ctest `soak`, 12 s, also under ASan); a longer run, e.g.
// `--seconds 600 --concurrency 64`, is documented in docs/ARCHITECTURE.md. The binary is
// $TURNOUT_BIN (as for the integration tests).
import fs from 'node:fs';
import http from 'node:http';
import process from 'node:process';

import { sleep, startGateway, startMock, stopAll } from '../integration/lib/harness.mjs';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const SECONDS = option('seconds', 12);
const CONCURRENCY = option('concurrency', 8);
const RSS_GROWTH_LIMIT = 1.25;            // end RSS may be at most 25% ...
const RSS_SLACK_KB = 24 * 1024;          // ... plus 24 MB above the warmed-up RSS
const CALL_TIMEOUT_MS = 15_000;

function rssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]);
}

const messages = (i) => [{ role: 'user', content: `soak call ${i}: ${'tell me about gateways '.repeat(1 + (i % 20))}` }];

// One call on its own connection (a stream that failed midway closes its connection, and a
// pooled client would race that close); `abortAfterBytes` aborts a stream once that many
// body bytes have arrived. Resolves {status, aborted} or {status: -1, error}.
function call(gateway, i, { stream = false, abortAfterBytes = 0 } = {}) {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: messages(i), stream });
  return new Promise((resolve) => {
    const request = http.request(`${gateway.baseUrl}/chat/completions`, {
      method: 'POST', agent: false, timeout: CALL_TIMEOUT_MS,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (response) => {
      let received = 0;
      response.on('data', (chunk) => {
        received += chunk.length;
        if (abortAfterBytes && received >= abortAfterBytes) {
          request.destroy();
          resolve({ status: response.statusCode, aborted: true });
        }
      });
      response.on('end', () => resolve({ status: response.statusCode, aborted: false }));
      response.on('error', () => {});
      response.on('close', () => resolve({ status: response.statusCode, aborted: false }));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${CALL_TIMEOUT_MS} ms`)));
    request.on('error', (error) => resolve({ status: -1, error: String(error) }));
    request.end(body);
  });
}

// Runs `next(i)` with CONCURRENCY calls in flight until `ms` have passed.
async function phase(name, ms, next) {
  const until = Date.now() + ms;
  const results = [];
  let i = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < until) results.push(await next(i++));
  }));
  const failed = results.filter((r) => r.status === -1);
  console.log(`${name}: ${results.length} calls, ${results.filter((r) => r.aborted).length} aborted, `
    + `${failed.length} unanswered`);
  if (failed.length) throw new Error(`${name}: unanswered calls, e.g. ${failed[0].error}`);
  return results.length;
}

async function main() {
  const mock = await startMock();
  const gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => {
      config.providers.openai.timeout_s = 2;
      config.providers.openai.stream_idle_timeout_s = 1;
    },
    // Under ASan freed blocks wait in a quarantine (256 MB by default) that fills at the
    // pace of the gateway's allocations, which would read as growth here; a small one is
    // full by the end of the warm-up. The option is ignored by a build without ASan.
    env: { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=8'].filter(Boolean).join(':') },
  });
  const pid = gateway.handle.child.pid;
  const slice = (SECONDS * 1000) / 4;
  let calls = 0;

  // Warm-up: pools, caches and allocator arenas reach their working size.
  calls += await phase('warm-up', slice, (i) => call(gateway, i, { stream: i % 2 === 0 }));
  const warmRss = rssKb(pid);

  calls += await phase('load', slice, (i) => call(gateway, i, { stream: i % 2 === 0 }));

  await mock.configure({ chunk_delay_ms: 20 });
  calls += await phase('client aborts', slice, (i) => call(gateway, i, { stream: true, abortAfterBytes: 200 }));

  const faults = [
    { reset_after_chunks: 2 }, { stall_after_chunks: 1 }, { malformed: true }, { fail_status: 500 },
    { hang: true }, { fail_rate: 0.5, fail_status: 503 },
  ];
  const faultMs = slice / faults.length;
  for (const fault of faults) {
    await mock.configure(fault);
    calls += await phase(`upstream ${JSON.stringify(fault)}`, faultMs, (i) => call(gateway, i, { stream: i % 2 === 0 }));
  }
  await mock.configure({});

  await sleep(1500);  // let the ledger writer catch up and the aborted streams finish
  const health = await fetch(`${gateway.url}/health`);
  if (health.status !== 200) throw new Error(`gateway unhealthy after the run: ${health.status}`);
  const stats = await (await fetch(`${gateway.url}/stats`)).json();
  if (stats.total_calls !== calls) throw new Error(`ledger has ${stats.total_calls} calls, ${calls} were made`);

  const endRss = rssKb(pid);
  console.log(`rss: warmed-up ${warmRss} kB, end ${endRss} kB (limit ${Math.round(warmRss * RSS_GROWTH_LIMIT + RSS_SLACK_KB)} kB)`);
  if (endRss > warmRss * RSS_GROWTH_LIMIT + RSS_SLACK_KB) throw new Error('resident memory grew during the run');
  console.log(`soak: ${calls} calls, every one answered and recorded, memory flat`);
}

try {
  await main();
} catch (error) {
  console.error(`soak failed: ${error.message}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
