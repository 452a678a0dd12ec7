// The dashboard in a real browser (docs/REFERENCE.md §2.13): Debian's headless Chromium
// driven by puppeteer-core loads GET /dashboard from a gateway that served a known mix of
// calls through the mock upstream. The page asks for the key once, then its totals must
// equal /stats over the same window digit for digit, every chart must have drawn the
// window's data (the route and model charts add up to the calls), the window picker must
// change the figures, a model name holding <script> must show as text, and nothing may be
// logged as an error. Screenshots (laptop and phone width, light and dark) are saved as
// test artefacts under build/test-artifacts/dashboard (or $TURNOUT_ARTIFACTS_DIR).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import puppeteer from 'puppeteer-core';

import { REPO_ROOT, makeTempDir, openAIErrorProblems, startGateway, startMock, stopAll } from '../integration/lib/harness.mjs';
import { promptWithTokens } from '../integration/lib/reference.mjs';

const CHROMIUM = process.env.TURNOUT_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.TURNOUT_ARTIFACTS_DIR ?? path.join(REPO_ROOT, 'build', 'test-artifacts', 'dashboard');
const KEY_A = 'sk-dashboard-test-key-a-5f1e';
const KEY_B = 'sk-dashboard-test-key-b-93c0';
const EVIL_MODEL = 'evil<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';
const WAIT_MS = 20_000;

let mock;
let gateway;
let browser;
const served = [];  // {id, model, status}

async function call(id, body, key, faults) {
  if (faults) await mock.configure(faults);
  const response = await gateway.chat(body, { 'x-request-id': id, authorization: `Bearer ${key}` });
  if (faults) await mock.reset();
  served.push({ id, model: response.headers.get('x-turnout-model'), status: response.status });
  return response;
}

// The digits of every "<name>_usd" number in a JSON text, as written (exact decimals).
function usdSources(text, name) {
  return [...text.matchAll(new RegExp(`"${name}":(null|-?[0-9.]+)`, 'g'))].map((match) => match[1]);
}

async function statsText(query) {
  const response = await gateway.request('GET', `/stats${query}`, { headers: { authorization: `Bearer ${KEY_A}` } });
  assert.equal(response.status, 200, response.text);
  return response.text;
}

const ms = (value) => `${Number(value).toLocaleString('en-US', { maximumFractionDigits: 1 })} ms`;

before(async () => {
  mock = await startMock();
  gateway = await startGateway({
    upstreamUrl: mock.baseUrl,
    configure: (config) => { config.server.api_keys = [KEY_A, KEY_B]; },
  });
  const short = promptWithTokens(15);
  const medium = promptWithTokens(1500);
  for (let i = 0; i < 3; i += 1) await call(`dash-simple-${i}`, { model: 'auto', messages: short }, KEY_A);
  for (let i = 0; i < 2; i += 1) await call(`dash-medium-${i}`, { model: 'auto', messages: medium }, KEY_B);
  await call('dash-explicit', { model: 'gpt-4o', messages: short, max_tokens: 50 }, KEY_A);
  await call('dash-failed', { model: 'gpt-4o-mini', messages: short }, KEY_A, { fail_status: 400, fail_first: 1 });
  await call('dash-evil', { model: EVIL_MODEL, messages: short }, KEY_B);
  assert.ok(served.some((c) => c.model === EVIL_MODEL && c.status === 200), JSON.stringify(served));

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: makeTempDir('turnout-chromium-'),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await stopAll();
});

// A page that records every console error, page error and request URL.
async function openPage({ width = 1366, height = 900, mobile = false, dark = false } = {}) {
  const page = await browser.newPage();
  const log = { errors: [], urls: [], authorized: [] };
  page.on('console', (message) => { if (message.type() === 'error') log.errors.push(message.text()); });
  page.on('pageerror', (error) => log.errors.push(`pageerror: ${error.message}`));
  page.on('request', (request) => {
    log.urls.push(request.url());
    if (request.headers().authorization) log.authorized.push(new URL(request.url()).pathname);
  });
  await page.setViewport({ width, height, isMobile: mobile, hasTouch: mobile, deviceScaleFactor: mobile ? 2 : 1 });
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: dark ? 'dark' : 'light' }]);
  return { page, log };
}

// Loads the dashboard and enters the key at its prompt.
async function openDashboard(options) {
  const { page, log } = await openPage(options);
  await page.goto(`${gateway.url}/dashboard`, { waitUntil: 'load' });
  await page.waitForSelector('#key-form:not([hidden])', { timeout: WAIT_MS });
  // Before a key, the only error is the browser's note that /stats answered 401.
  assert.ok(log.errors.every((text) => text.includes('401')), log.errors.join('\n'));
  log.errors.length = 0;
  await page.type('#key-input', KEY_A);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('body[data-state=ready]', { timeout: WAIT_MS });
  return { page, log };
}

const text = (page, selector) => page.$eval(selector, (element) => element.textContent);

// The figures each chart holds: per dataset, the sum of its points.
function chartSums(page) {
  return page.evaluate(() => Object.fromEntries(['chart-spend', 'chart-routes', 'chart-models', 'chart-latency'].map((id) => {
    const chart = window.Chart.getChart(document.getElementById(id));
    return [id, chart.data.datasets.map((dataset, index) => ({
      label: dataset.label,
      sum: dataset.data.reduce((total, value) => total + (value ?? 0), 0),
      drawn: chart.getDatasetMeta(index).data.length,
    }))];
  })));
}

describe('the dashboard page', () => {
  it('is served from the binary with a strict Content-Security-Policy, and / leads to it', async () => {
    const page = await gateway.request('GET', '/dashboard');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    const csp = page.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.doesNotMatch(page.text, /<script>(?!<)|https?:\/\//, 'no inline script and nothing from another host');
    for (const asset of ['/dashboard/dashboard.js', '/dashboard/dashboard.css', '/dashboard/chart.min.js']) {
      const response = await gateway.request('GET', asset);
      assert.equal(response.status, 200, asset);
      assert.ok(response.text.length > 100, asset);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    }
    const root = await fetch(`${gateway.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/dashboard');
  });

  it('/stats/series needs the key like /stats, and names a bad parameter in the OpenAI shape', async () => {
    const unauthenticated = await gateway.request('GET', '/stats/series');
    assert.equal(unauthenticated.status, 401);
    assert.deepEqual(openAIErrorProblems(unauthenticated.json), []);
    const auth = { authorization: `Bearer ${KEY_A}` };
    for (const [query, param] of [['step=90', 'step'], ['step=0', 'step'], ['step=1m', 'step'], ['since=yesterday', 'since'],
      ['since=2000&until=1000', 'until'], ['since=0&until=100000000&step=60', 'step'], ['until=-5', 'until']]) {
      const response = await gateway.request('GET', `/stats/series?${query}`, { headers: auth });
      assert.equal(response.status, 400, `${query}: ${response.text}`);
      assert.deepEqual(openAIErrorProblems(response.json), [], query);
      assert.equal(response.json.error.param, param, query);
    }
    const fine = await gateway.request('GET', '/stats/series', { headers: auth });
    assert.equal(fine.status, 200, fine.text);
    assert.equal(fine.json.buckets.reduce((sum, bucket) => sum + bucket.total_calls, 0), served.length);
  });

  it('after the key, shows totals equal to /stats, charts of the same calls, the newest calls as text', async () => {
    const { page, log } = await openDashboard();
    const since = (await page.$eval('body', (body) => body.dataset.window)).split('-')[0];
    const statsJsonText = await statsText(`?since=${since}`);
    const stats = JSON.parse(statsJsonText);
    assert.equal(stats.total_calls, served.length);

    assert.equal(await text(page, '#total-spend'), `$${usdSources(statsJsonText, 'total_cost_usd')[0]}`);
    assert.equal(await text(page, '#total-savings'), `$${usdSources(statsJsonText, 'savings_usd')[0]}`);
    assert.equal(await text(page, '#total-unpriced'), '+ 1 unpriced calls');
    assert.equal(await text(page, '#total-calls'), String(served.length));
    assert.equal(await text(page, '#total-error-rate'), `${(100 * stats.errors / stats.total_calls).toFixed(1)}%`);
    assert.equal(stats.errors, 1);
    assert.equal(await text(page, '#total-p50'), ms(stats.latency_ms.p50));
    assert.equal(await text(page, '#total-p95'), ms(stats.latency_ms.p95));
    assert.equal(await text(page, '#total-p99'), ms(stats.latency_ms.p99));

    const sums = await chartSums(page);
    for (const [id, datasets] of Object.entries(sums)) {
      assert.ok(datasets.length > 0 && datasets.every((d) => d.drawn > 0), `${id} drew its points: ${JSON.stringify(datasets)}`);
    }
    const total = (id) => sums[id].reduce((sum, dataset) => sum + dataset.sum, 0);
    assert.equal(total('chart-routes'), stats.total_calls, 'calls by route add up to the calls');
    assert.equal(total('chart-models'), stats.total_calls, 'calls by model add up to the calls');
    assert.deepEqual(sums['chart-models'].map((d) => d.label).sort(), Object.keys(stats.models).sort());
    assert.ok(Math.abs(sums['chart-spend'][0].sum - Number(stats.total_cost_usd)) < 1e-9, 'spend over time adds up');
    assert.ok(sums['chart-latency'][0].sum > 0, 'latency drawn');

    // The newest calls, the hostile model name among them, as text only.
    const rows = await page.$$eval('#recent-body tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    assert.equal(rows.length, served.length);
    const evil = rows.find((cells) => cells.includes(EVIL_MODEL));
    assert.ok(evil, `the model name shows as text: ${JSON.stringify(rows)}`);
    assert.ok(evil.includes('unpriced'), 'an unpriced call shows "unpriced", never $0');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(await page.$$eval('main script, main img', (nodes) => nodes.length), 0);
    // The Count column is the gateway's own count, or "–" where none was taken (REFERENCE
    // §4.6); never the provider's figure passed off as the gateway's.
    const recent = JSON.parse(await statsText(`?since=${since}&recent=${served.length}`)).recent_calls;
    const countOf = new Map(recent.map((call) => [call.id, call.counted_prompt_tokens]));
    for (const cells of rows) {
      assert.ok(countOf.has(cells[1]), `row ${JSON.stringify(cells)} is one of /stats's recent calls`);
      const counted = countOf.get(cells[1]);
      assert.equal(cells[2], counted === null ? '–' : Number(counted).toLocaleString('en-US'), JSON.stringify(cells));
    }
    const explicit = rows.find((cells) => cells.includes('dash-explicit'));
    assert.ok(explicit.includes('explicit') && explicit.includes('gpt-4o') && explicit.includes('1'), JSON.stringify(explicit));
    const keys = await page.$$eval('#keys-body tr', (trs) => trs.map((tr) => tr.cells[0].textContent));
    assert.deepEqual(keys.sort(), Object.keys(stats.keys).sort());

    // The key went only into headers, never a URL.
    assert.ok(log.urls.every((url) => !url.includes(KEY_A)), log.urls.join('\n'));
    assert.ok(log.authorized.includes('/stats') && log.authorized.includes('/stats/series'));
    assert.deepEqual(log.errors, []);
    await page.screenshot({ path: path.join(ARTIFACTS, 'desktop-light.png'), fullPage: true });
    console.log(`# screenshots in ${ARTIFACTS}`);
    await page.close();
  });

  it('the window picker changes the figures, and the page refreshes live', async () => {
    const { page, log } = await openDashboard();
    // A custom day long before any call: nothing in it.
    await page.select('#window', 'custom');
    const day = new Date(Date.now() - 10 * 86_400_000);
    const local = (date) => new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await page.$eval('#custom-since', (input, value) => { input.value = value; }, local(day));
    await page.$eval('#custom-until', (input, value) => { input.value = value; }, local(new Date(day.getTime() + 86_400_000)));
    await page.click('#custom-apply');
    await page.waitForFunction(() => document.getElementById('total-calls').textContent === '0', { timeout: WAIT_MS });
    const [since, until] = (await page.$eval('body', (body) => body.dataset.window)).split('-');
    const empty = JSON.parse(await statsText(`?since=${since}&until=${until}`));
    assert.equal(empty.total_calls, 0);
    assert.equal(await text(page, '#total-spend'), '$0');
    assert.equal(await page.$$eval('#recent-body tr', (trs) => trs.length), 0);

    await page.select('#window', '604800');
    await page.waitForFunction((n) => document.getElementById('total-calls').textContent === String(n), { timeout: WAIT_MS }, served.length);

    // A call made now shows up without reloading.
    await call('dash-live', { model: 'auto', messages: promptWithTokens(15) }, KEY_B);
    await page.waitForFunction((n) => document.getElementById('total-calls').textContent === String(n), { timeout: WAIT_MS }, served.length);
    assert.deepEqual(log.errors, []);
    await page.close();
  });

  it('fits a phone width and a dark scheme', async () => {
    for (const [name, options] of [['phone-light', { width: 390, height: 844, mobile: true }],
      ['phone-dark', { width: 390, height: 844, mobile: true, dark: true }], ['desktop-dark', { dark: true }]]) {
      const { page, log } = await openDashboard(options);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${name}: the page is ${overflow}px wider than the screen`);
      const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(background === 'rgb(17, 21, 28)', Boolean(options.dark), `${name}: background ${background}`);
      assert.deepEqual(log.errors, []);
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
      await page.close();
    }
  });
});
