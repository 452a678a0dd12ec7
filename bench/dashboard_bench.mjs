// Dashboard page load to fully drawn (ms): Debian's headless Chromium (puppeteer-core from
// tests/node_modules) loads GET /dashboard from `turnout serve` over an existing ledger and
// waits for the page's 'turnout-drawn' mark (totals, tables and the four charts drawn from
// /stats and /stats/series). Each round is a fresh page; prints median and p90. Then, on
// each of those pages, the time from choosing each longer window in the picker (last day,
// 7 days, 30 days) to the page redrawn for it, median and p90 per window.
//
//   node bench/dashboard_bench.mjs --bin build/src/cli/turnout --ledger sqlite:/path/ledger.db [--rounds 15]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const puppeteer = createRequire(path.join(REPO, 'tests', 'package.json'))('puppeteer-core');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1] : fallback;
}
const bin = option('bin', path.join(REPO, 'build', 'src', 'cli', 'turnout'));
const ledger = option('ledger');
const rounds = Number(option('rounds', '15'));
if (!ledger) throw new Error('--ledger URL is required');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'turnout-dashboard-bench-'));
const config = path.join(work, 'turnout.yaml');
fs.writeFileSync(config, JSON.stringify({
  server: { host: '127.0.0.1' },
  ledger: { url: ledger },
  providers: { openai: { base_url: 'http://127.0.0.1:9/v1', api_key: 'unused' } },
}));
const gateway = spawn(bin, ['serve', '--config', config, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let seen = '';
  gateway.stdout.on('data', (chunk) => {
    seen += chunk;
    const match = seen.match(/"port":(\d+)/);
    if (match) resolve(Number(match[1]));
  });
  gateway.on('exit', (code) => reject(new Error(`turnout serve exited with ${code}`)));
  setTimeout(() => reject(new Error('turnout serve did not report its port')), 30_000);
});

const browser = await puppeteer.launch({
  executablePath: process.env.TURNOUT_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  userDataDir: path.join(work, 'chromium'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const samples = [];
  const WINDOWS = { '86400': 'last day', '604800': 'last 7 days', '2592000': 'last 30 days' };
  const switches = Object.fromEntries(Object.keys(WINDOWS).map((value) => [value, []]));
  for (let round = 0; round <= rounds; round += 1) {
    const page = await browser.newPage();
    await page.setViewport({ width: 1366, height: 900 });
    await page.goto(`http://127.0.0.1:${port}/dashboard`);
    await page.waitForFunction(() => performance.getEntriesByName('turnout-drawn').length > 0, { timeout: 60_000 });
    const drawn = await page.evaluate(() => performance.getEntriesByName('turnout-drawn')[0].startTime);
    if (round > 0) samples.push(drawn);  // the first round warms the gateway's caches
    for (const value of Object.keys(WINDOWS)) {
      // Picker change to redrawn: the page sets data-window once totals and charts are drawn.
      const took = await page.evaluate((choice) => new Promise((resolve, reject) => {
        const before = document.body.dataset.window;
        const started = performance.now();
        const observer = new MutationObserver(() => {
          if (document.body.dataset.state === 'error') reject(new Error(document.body.textContent.slice(0, 200)));
          if (document.body.dataset.window !== before && document.body.dataset.state === 'ready') {
            observer.disconnect();
            resolve(performance.now() - started);
          }
        });
        observer.observe(document.body, { attributes: true });
        const picker = document.getElementById('window');
        picker.value = choice;
        picker.dispatchEvent(new Event('change'));
      }), value);
      if (round > 0) switches[value].push(took);
    }
    await page.close();
  }
  const at = (values, p) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.max(Math.ceil(p / 100 * sorted.length), 1) - 1];
  };
  console.log(`dashboard load to fully drawn (${samples.length} loads, ledger ${ledger.replace(/\/\/.*@/, '//***@')}): ` +
    `median ${at(samples, 50).toFixed(0)} ms, p90 ${at(samples, 90).toFixed(0)} ms`);
  for (const [value, name] of Object.entries(WINDOWS)) {
    console.log(`  window picker -> ${name} redrawn: median ${at(switches[value], 50).toFixed(0)} ms, ` +
      `p90 ${at(switches[value], 90).toFixed(0)} ms`);
  }
} finally {
  await browser.close();
  gateway.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
}
