// Turnout dashboard (docs/REFERENCE.md §2.13): totals from GET /stats, charts from
// GET /stats/series, both over the same window (its start rounded down to the chart's
// step), so the charts add up to the totals. Every string from the gateway is inserted
// with textContent, never as HTML. Money is shown exactly as the gateway wrote it (the
// JSON number's own digits), never through a float; a cost the gateway could not price is
// shown as "unpriced", never $0.
'use strict';

(() => {
  const KEY_STORAGE = 'turnout.dashboard.key';
  const REFRESH_MS = 5000;
  const RECENT_CALLS = 20;
  const TOP_SPENDERS = 10;
  // Chart steps per window: the finest giving at most MAX_BUCKETS buckets, among steps that
  // are whole roll-up buckets (minute, hour, 6 hours, day, week), so /stats/series reads
  // few roll-up rows per bucket (a 30-day window reads 30 day rows, not 720 hour rows).
  const STEPS = [60, 3600, 21600, 86400, 604800];
  const MAX_BUCKETS = 60;

  const $ = (id) => document.getElementById(id);
  const state = { key: sessionStorage.getItem(KEY_STORAGE) || '', timer: 0, charts: {}, generation: 0 };

  // ---- data --------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  // JSON with every *_usd number kept as its source text (exact decimal digits).
  function parseExact(text) {
    return JSON.parse(text, (name, value, context) =>
      (typeof value === 'number' && name.endsWith('_usd') && context && context.source) ? context.source : value);
  }

  async function getJson(path) {
    const headers = { Accept: 'application/json' };
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    const response = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
    const text = await response.text();
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = JSON.parse(text).error.message || message; } catch { /* not JSON */ }
      throw new HttpError(response.status, message);
    }
    return parseExact(text);
  }

  function stepFor(span) {
    return STEPS.find((step) => span / step <= MAX_BUCKETS) || STEPS[STEPS.length - 1];
  }

  // The window as [since, until) unix seconds (until null: up to now) and its chart step.
  function chosenWindow() {
    const choice = $('window').value;
    const now = Date.now() / 1000;
    if (choice !== 'custom') {
      const span = Number(choice);
      const step = stepFor(span);
      return { since: Math.floor((now - span) / step) * step, until: null, step, seriesUntil: Math.ceil(now / step) * step };
    }
    const since = Date.parse($('custom-since').value) / 1000;
    const until = Date.parse($('custom-until').value) / 1000;
    if (!Number.isFinite(since) || !Number.isFinite(until) || until <= since) {
      throw new Error('Choose a custom window whose end is after its start.');
    }
    const step = stepFor(until - since);
    const start = Math.floor(since / step) * step;
    const end = Math.ceil(until / step) * step;
    return { since: start, until: end, step, seriesUntil: end };
  }

  // ---- formatting ---------------------------------------------------------------------

  const usd = (decimal) => (decimal === null || decimal === undefined) ? 'unpriced' : `$${decimal}`;
  const count = (n) => Number(n).toLocaleString('en-US');
  const ms = (value) => (value === null || value === undefined) ? '–' : `${Number(value).toLocaleString('en-US', { maximumFractionDigits: 1 })} ms`;
  const percent = (part, whole) => whole > 0 ? `${(100 * part / whole).toFixed(1)}%` : '–';

  function timeLabel(seconds, step) {
    const date = new Date(seconds * 1000);
    const hhmm = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (step < 3600) return hhmm;
    const day = date.toLocaleDateString([], { month: 'short', day: 'numeric' });
    return step >= 86400 ? day : `${day} ${hhmm}`;
  }

  function setText(id, text) { $(id).textContent = text; }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  // ---- totals and tables --------------------------------------------------------------

  function renderTotals(stats) {
    const calls = stats.total_calls;
    const priced = calls - stats.unpriced_calls;
    setText('total-spend', calls > 0 && priced === 0 ? 'unpriced' : usd(stats.total_cost_usd));
    setText('total-unpriced', stats.unpriced_calls > 0 ? `+ ${count(stats.unpriced_calls)} unpriced calls` : '');
    setText('total-savings', usd(stats.savings_usd));
    const baseline = Number(stats.baseline_cost_usd);
    setText('total-savings-pct', baseline > 0 ? `${percent(Number(stats.savings_usd), baseline)} of $${stats.baseline_cost_usd} baseline` : 'no baseline price');
    setText('total-calls', count(calls));
    setText('total-tokens', `${count(stats.prompt_tokens)} prompt + ${count(stats.completion_tokens)} completion tokens`);
    setText('total-error-rate', percent(stats.errors, calls));
    setText('total-errors', `${count(stats.errors)} errors`);
    const latency = stats.latency_ms || {};
    setText('total-p50', calls > 0 ? ms(latency.p50) : '–');
    setText('total-p95', calls > 0 ? ms(latency.p95) : '–');
    setText('total-p99', calls > 0 ? ms(latency.p99) : '–');
  }

  // Top spenders (keys now; teams when the gateway reports them): by exact spend, then calls.
  function renderSpenders(bodyId, entries) {
    const rows = Object.entries(entries || {}).sort(([, a], [, b]) =>
      (Number(b.cost_usd ?? -1) - Number(a.cost_usd ?? -1)) || (b.calls - a.calls));
    const body = $(bodyId);
    body.replaceChildren(...rows.slice(0, TOP_SPENDERS).map(([name, figures]) => {
      const tr = document.createElement('tr');
      tr.append(cell(name, 'name'), cell(count(figures.calls), 'num'),
        cell(count(figures.tokens ?? (figures.prompt_tokens + figures.completion_tokens)), 'num'),
        cell(usd(figures.cost_usd), 'num'));
      return tr;
    }));
  }

  // The gateway's own count of the prompt; a call whose fit a bound proved was not counted
  // (REFERENCE §4.6), so the cell says so rather than showing the provider's figure as ours.
  function promptCountCell(call) {
    if (call.counted_prompt_tokens !== null && call.counted_prompt_tokens !== undefined) {
      return cell(count(call.counted_prompt_tokens), 'num');
    }
    const td = cell('–', 'num');
    td.title = `not counted by the gateway; the provider reported ${count(call.prompt_tokens)} prompt tokens`;
    return td;
  }

  function renderRecent(calls) {
    const body = $('recent-body');
    body.replaceChildren(...[...calls].reverse().map((call) => {
      const tr = document.createElement('tr');
      const ok = call.status < 400 && !call.error_type;
      tr.append(
        cell(new Date(call.timestamp * 1000).toLocaleTimeString()),
        cell(call.id, 'name'),
        promptCountCell(call),
        cell(call.route, 'name'),
        cell(call.model, 'name'),
        cell(String(call.attempts ?? '–'), 'num'),
        cell(usd(call.cost_usd), 'num'),
        cell(ms(call.latency_ms), 'num'),
        cell(ok ? String(call.status) : `${call.status} ${call.error_type || ''}`.trim(), ok ? 'status-ok' : 'status-bad'));
      return tr;
    }));
  }

  // ---- charts -------------------------------------------------------------------------

  function palette() {
    const style = getComputedStyle(document.documentElement);
    const read = (name) => style.getPropertyValue(name).trim();
    return {
      text: read('--muted'),
      grid: read('--line'),
      series: [1, 2, 3, 4, 5, 6, 7, 8].map((i) => read(`--series-${i}`)),
    };
  }

  function chartOptions(colors, { stacked = false } = {}) {
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { labels: { color: colors.text, boxWidth: 12 } } },
      scales: {
        x: { stacked, ticks: { color: colors.text, maxRotation: 0, autoSkipPadding: 12 }, grid: { color: colors.grid } },
        y: { stacked, beginAtZero: true, ticks: { color: colors.text }, grid: { color: colors.grid } },
      },
    };
  }

  function drawChart(id, type, labels, datasets, options) {
    const colors = palette();
    datasets.forEach((dataset, index) => {
      const color = colors.series[index % colors.series.length];
      Object.assign(dataset, { borderColor: color, backgroundColor: color, pointRadius: type === 'line' ? 2 : 0, borderWidth: 2, spanGaps: true });
    });
    const canvas = $(id);
    const points = datasets.reduce((sum, dataset) => sum + dataset.data.filter((v) => v !== null && v !== 0).length, 0);
    canvas.dataset.points = String(points);
    const existing = state.charts[id];
    if (existing) {
      existing.data.labels = labels;
      existing.data.datasets = datasets;
      existing.update('none');
      return;
    }
    state.charts[id] = new Chart(canvas, { type, data: { labels, datasets }, options: chartOptions(colors, options) });
  }

  // One dataset per name found in any bucket's `field` map, with `value` of each entry.
  function perName(buckets, field, value) {
    const names = [...new Set(buckets.flatMap((bucket) => Object.keys(bucket[field])))].sort();
    return names.map((name) => ({
      label: name,
      data: buckets.map((bucket) => (name in bucket[field] ? value(bucket[field][name]) : 0)),
    }));
  }

  function renderCharts(series) {
    const buckets = series.buckets;
    const labels = buckets.map((bucket) => timeLabel(bucket.start, series.step));
    drawChart('chart-spend', 'line', labels, [
      { label: 'Spend', data: buckets.map((b) => Number(b.total_cost_usd)) },
      { label: 'Savings', data: buckets.map((b) => Number(b.savings_usd)) },
    ]);
    drawChart('chart-routes', 'bar', labels, perName(buckets, 'routes', (calls) => calls), { stacked: true });
    drawChart('chart-models', 'bar', labels, perName(buckets, 'models', (model) => model.calls), { stacked: true });
    const latency = (key) => buckets.map((b) => (b.total_calls > 0 ? b.latency_ms[key] : null));
    drawChart('chart-latency', 'line', labels, [
      { label: 'p50', data: latency('p50') },
      { label: 'p95', data: latency('p95') },
      { label: 'p99', data: latency('p99') },
    ]);
  }

  // ---- refresh loop -------------------------------------------------------------------

  function showProblem(message) {
    $('problem').hidden = !message;
    $('problem').textContent = message || '';
  }

  function askForKey(message) {
    $('key-form').hidden = false;
    $('content').hidden = true;
    $('key-error').hidden = !message;
    $('key-error').textContent = message || '';
    $('key-input').focus();
  }

  async function refresh() {
    clearTimeout(state.timer);
    const generation = ++state.generation;
    try {
      const range = chosenWindow();
      const statsQuery = new URLSearchParams({ since: String(range.since), recent: String(RECENT_CALLS) });
      if (range.until !== null) statsQuery.set('until', String(range.until));
      const seriesQuery = new URLSearchParams({ since: String(range.since), until: String(range.seriesUntil), step: String(range.step) });
      const [stats, series] = await Promise.all([getJson(`/stats?${statsQuery}`), getJson(`/stats/series?${seriesQuery}`)]);
      if (generation !== state.generation) return;  // a newer refresh (window change) won
      $('key-form').hidden = true;
      $('content').hidden = false;
      $('change-key').hidden = !state.key;
      renderTotals(stats);
      renderSpenders('keys-body', stats.keys);
      $('teams-panel').hidden = !stats.teams;
      if (stats.teams) renderSpenders('teams-body', stats.teams);
      renderRecent(stats.recent_calls);
      renderCharts(series);
      showProblem('');
      setText('updated', `Updated ${new Date().toLocaleTimeString()}`);
      if (document.body.dataset.state !== 'ready' && !performance.getEntriesByName('turnout-drawn').length) {
        performance.mark('turnout-drawn');  // first full draw: what bench/dashboard_bench.mjs times
      }
      document.body.dataset.state = 'ready';
      document.body.dataset.window = `${range.since}-${range.until ?? 'now'}`;
    } catch (error) {
      if (generation !== state.generation) return;
      if (error instanceof HttpError && error.status === 401) {
        askForKey(state.key ? 'That key was not accepted.' : '');
        document.body.dataset.state = 'key';
        return;  // polling resumes once a key is entered
      }
      showProblem(error.message);
      document.body.dataset.state = 'error';
    }
    state.timer = setTimeout(refresh, REFRESH_MS);
  }

  function localInputValue(seconds) {
    const date = new Date(seconds * 1000);
    return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }

  function start() {
    $('window').addEventListener('change', () => {
      const custom = $('window').value === 'custom';
      $('custom-range').hidden = !custom;
      if (custom && !$('custom-since').value) {
        const now = Date.now() / 1000;
        $('custom-since').value = localInputValue(now - 86400);
        $('custom-until').value = localInputValue(now);
      }
      refresh();
    });
    $('window-form').addEventListener('submit', (event) => { event.preventDefault(); refresh(); });
    $('key-form').addEventListener('submit', (event) => {
      event.preventDefault();
      state.key = $('key-input').value.trim();
      $('key-input').value = '';
      sessionStorage.setItem(KEY_STORAGE, state.key);
      refresh();
    });
    $('change-key').addEventListener('click', () => {
      sessionStorage.removeItem(KEY_STORAGE);
      state.key = '';
      askForKey('');
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
    refresh();
  }

  start();
})();
