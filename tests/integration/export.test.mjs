// `turnout ledger export`: real calls through a gateway (priced, unpriced, streamed,
// failed), then the ledger exported as JSON Lines and as CSV while the gateway keeps
// running. Every request id must be there exactly once, in call order, with the model,
// status and exact cost the gateway returned (x-turnout-cost-usd, or the streamed
// cost_usd). Then the --since/--until window (unix seconds and RFC 3339), usage errors
// (exit 2) and a missing ledger file (exit 1, not created).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { baseConfig, makeTempDir, runTurnout, sleep, startGateway, startMock, stopAll, writeConfig } from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

const FIELDS = [
  'id', 'timestamp', 'instance_id', 'client_key_id', 'requested_model', 'model', 'route',
  'counted_prompt_tokens', 'prompt_tokens', 'completion_tokens', 'cached_tokens', 'usage_reported',
  'cost_usd', 'baseline_cost_usd', 'latency_ms', 'ttft_ms', 'status', 'error_type', 'attempts', 'stream', 'endpoint',
  'count_estimated', 'count_partial',
];
const UNPRICED_MODEL = 'acme-unpriced-llm';

let mock;
let gateway;
const calls = [];  // what the client saw, in call order: {id, batch, status, model, cost (exact text or null), stream}
let batchBoundary;  // unix seconds between the two batches

// The exact cost_usd text of the final (usage) chunk of a streamed response.
function streamedCostText(sseText) {
  for (const line of sseText.split('\n')) {
    if (!line.startsWith('data: {') || !line.includes('"cost_usd"')) continue;
    return /"cost_usd":([^,}]+)/.exec(line)[1];
  }
  assert.fail(`no cost_usd in the stream:\n${sseText}`);
}

async function call(id, body, { batch, faults } = {}) {
  if (faults) await mock.configure(faults);
  const response = await gateway.chat(body, { 'x-request-id': id });
  if (faults) await mock.reset();
  assert.equal(response.headers.get('x-request-id'), id);
  let cost = null;
  if (response.status === 200 && body.stream) {
    const text = streamedCostText(response.text);
    cost = text === 'null' ? null : text;
  } else if (response.status === 200) {
    cost = response.headers.get('x-turnout-cost-usd');
    assert.equal(cost === null, response.json.cost_usd === null, `${id}: header and body agree on pricing`);
  }
  calls.push({ id, batch, status: response.status, model: response.headers.get('x-turnout-model'), cost, stream: Boolean(body.stream) });
}

const shortPrompt = promptWithTokens(20);
const mediumPrompt = promptWithTokens(1500);

before(async () => {
  mock = await startMock();
  gateway = await startGateway({ upstreamUrl: mock.baseUrl });

  await call('export-simple-0', { model: 'auto', messages: shortPrompt }, { batch: 1 });
  await call('export-medium-0', { model: 'auto', messages: mediumPrompt }, { batch: 1 });
  await call('export-explicit-4o', { model: 'gpt-4o', messages: shortPrompt, max_tokens: 40 }, { batch: 1 });
  await call('export-unpriced', { model: UNPRICED_MODEL, messages: shortPrompt }, { batch: 1 });

  await sleep(30);
  batchBoundary = Date.now() / 1000;
  await sleep(30);

  await call('export-streamed', {
    model: 'auto', messages: shortPrompt, stream: true, stream_options: { include_usage: true },
  }, { batch: 2 });
  await call('export-failed', { model: 'gpt-4o-mini', messages: shortPrompt }, { batch: 2, faults: { fail_status: 400, fail_first: 1 } });
  await call('export-simple-1', { messages: shortPrompt }, { batch: 2 });
});
after(stopAll);

function exportLedger(args) {
  return runTurnout(['ledger', 'export', '--config', gateway.configFile, ...args], { cwd: gateway.dir });
}

// RFC 4180 with "\n" record ends: a quoted field may hold commas, quotes ("") and line breaks.
function parseCsv(text) {
  const records = [];
  let record = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { record.push(field); field = ''; } else if (c === '\n') {
      record.push(field); records.push(record); record = []; field = '';
    } else field += c;
  }
  assert.equal(quoted, false, 'unterminated quoted field');
  assert.equal(field + record.join(''), '', 'the last record is not terminated');
  return records;
}

// Each exported record as {field: text}, with the raw (exact) cost text alongside.
function jsonlRecords(stdout) {
  assert.ok(stdout === '' || stdout.endsWith('\n'), 'the last line is terminated');
  return stdout.split('\n').filter((line) => line !== '').map((line) => {
    const record = JSON.parse(line);
    assert.deepEqual(Object.keys(record), FIELDS, 'field names and order');
    const costText = /"cost_usd":([^,}]+)/.exec(line)[1];
    return { record, costText: costText === 'null' ? null : costText };
  });
}

function csvRecords(stdout) {
  const [header, ...rows] = parseCsv(stdout);
  assert.deepEqual(header, FIELDS, 'header line');
  return rows.map((row) => {
    assert.equal(row.length, FIELDS.length);
    const record = Object.fromEntries(FIELDS.map((name, i) => [name, row[i]]));
    return { record, costText: record.cost_usd === '' ? null : record.cost_usd };
  });
}

// Every call exactly once, in call order, with what the gateway told the client.
function assertMatchesCalls(exported, expectedCalls) {
  assert.deepEqual(exported.map(({ record }) => String(record.id)), expectedCalls.map((c) => c.id));
  exported.forEach(({ record, costText }, i) => {
    const expected = expectedCalls[i];
    assert.equal(Number(record.status), expected.status, `${expected.id}: status`);
    assert.equal(String(record.stream), String(expected.stream), `${expected.id}: stream`);
    if (expected.status !== 200) return;
    assert.equal(record.model, expected.model, `${expected.id}: model`);
    assert.equal(costText, expected.cost, `${expected.id}: exact cost`);
  });
}

describe('turnout ledger export', () => {
  it('sanity: the calls produced what this suite expects', () => {
    assert.equal(calls.length, 7);
    assert.equal(calls.find((c) => c.id === 'export-unpriced').cost, null, 'the unknown model is unpriced');
    assert.equal(calls.find((c) => c.id === 'export-failed').status, 400);
    for (const c of calls.filter((c) => c.status === 200 && c.id !== 'export-unpriced')) {
      assert.match(c.cost, /^\d+(\.\d+)?$/, `${c.id} is priced`);
    }
  });

  it('--format jsonl: every call once, in order, with its model and exact cost', async () => {
    const result = await exportLedger(['--format', 'jsonl']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const exported = jsonlRecords(result.stdout);
    assertMatchesCalls(exported, calls);
    const unpriced = exported.find(({ record }) => record.id === 'export-unpriced').record;
    assert.equal(unpriced.cost_usd, null);
    assert.equal(unpriced.requested_model, UNPRICED_MODEL);
    const streamed = exported.find(({ record }) => record.id === 'export-streamed').record;
    assert.equal(streamed.stream, true);
    assert.equal(typeof streamed.ttft_ms, 'number');
    const timestamps = exported.map(({ record }) => record.timestamp);
    assert.deepEqual(timestamps, [...timestamps].sort((a, b) => a - b), 'sequential calls: timestamps ascend');
  });

  it('--format csv: the same records, with a header line', async () => {
    const result = await exportLedger(['--format', 'csv']);
    assert.equal(result.code, 0, result.stderr);
    const exported = csvRecords(result.stdout);
    assertMatchesCalls(exported, calls);
    assert.equal(exported.find(({ record }) => record.id === 'export-unpriced').record.cost_usd, '');
  });

  it('--since is inclusive and --until exclusive, in unix seconds or RFC 3339', async () => {
    const batch1 = calls.filter((c) => c.batch === 1);
    const batch2 = calls.filter((c) => c.batch === 2);
    const rfc3339 = new Date(batchBoundary * 1000).toISOString();

    const since = await exportLedger(['--format', 'jsonl', '--since', rfc3339]);
    assert.equal(since.code, 0, since.stderr);
    assertMatchesCalls(jsonlRecords(since.stdout), batch2);

    const until = await exportLedger(['--format', 'csv', '--until', String(batchBoundary)]);
    assert.equal(until.code, 0, until.stderr);
    assertMatchesCalls(csvRecords(until.stdout), batch1);

    // The exact timestamp of one record: inclusive as --since, exclusive as --until.
    const all = jsonlRecords((await exportLedger(['--format', 'jsonl'])).stdout);
    const third = all[2].record.timestamp;
    const from = await exportLedger(['--format', 'jsonl', '--since', String(third)]);
    assertMatchesCalls(jsonlRecords(from.stdout), calls.slice(2));
    const before = await exportLedger(['--format', 'jsonl', '--until', String(third)]);
    assertMatchesCalls(jsonlRecords(before.stdout), calls.slice(0, 2));
  });

  it('usage errors exit 2 with a message', async () => {
    const xml = await exportLedger(['--format', 'xml']);
    assert.equal(xml.code, 2);
    assert.match(xml.stderr, /--format/);
    assert.match(xml.stderr, /xml/);
    assert.equal(xml.stdout, '');

    const noFormat = await exportLedger([]);
    assert.equal(noFormat.code, 2);
    assert.match(noFormat.stderr, /--format/);

    const badSince = await exportLedger(['--format', 'jsonl', '--since', 'yesterday']);
    assert.equal(badSince.code, 2);
    assert.match(badSince.stderr, /--since/);
    assert.match(badSince.stderr, /yesterday/);
    assert.equal(badSince.stdout, '');

    const badUntil = await exportLedger(['--format', 'csv', '--until', '2026-13-01T00:00:00Z']);
    assert.equal(badUntil.code, 2);
    assert.match(badUntil.stderr, /--until/);

    const noSubcommand = await runTurnout(['ledger']);
    assert.equal(noSubcommand.code, 2);
  });

  it('a missing ledger file is an error (exit 1) and is not created', async () => {
    const dir = makeTempDir();
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    const ledgerFile = path.join(dir, 'ledger.db');
    const file = writeConfig(dir, config);
    const result = await runTurnout(['ledger', 'export', '--config', file, '--format', 'jsonl'], { cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /does not exist/);
    assert.ok(result.stderr.includes(ledgerFile), result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(fs.existsSync(ledgerFile), false);
  });
});
