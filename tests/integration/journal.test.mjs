// The journal hand-off (issue 16; docs/ARCHITECTURE.md "The journal hand-off") through the
// real binary on a real SQLite ledger. A call without a governance hold is answered once
// its record is in the loop's journal file, before the commit; so while another process
// holds the ledger's write lock (the writer cannot commit) calls are still answered, and a
// SIGKILL then loses none of them: the restarted gateway replays the journal, and every
// answered call is in the ledger exactly once, at its exact cost, also when the spool took
// the same records meanwhile. A call with a hold still waits for its commit (its
// settlement frees the slot the client's next call needs). /stats right after a burst of
// answers counts every one of them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';

import {
  baseConfig, governanceClient, ledgerSql, makeTempDir, picoPerToken, sleep, startGateway, startMock, stopAll,
  TEST_MODELS, turnoutBin, withTimeout, writeConfig,
} from './lib/harness.mjs';

let mock;
before(async () => {
  mock = await startMock();
});
// The sqlite3 shells holding a lock: killed after the file on every path, so a failing
// assertion between holdWriteLock and release() cannot keep the ledger locked and node
// waiting on the shell (stopAll only knows the gateways and mocks).
const lockShells = new Set();
after(async () => {
  for (const shell of lockShells) shell.kill('SIGKILL');
  lockShells.clear();
  await stopAll();
});

// Another process holding the ledger's write lock (BEGIN EXCLUSIVE in the sqlite3 shell)
// until release(): the gateway's writer can read but not commit.
async function holdWriteLock(database) {
  const shell = spawn('sqlite3', [database], { stdio: ['pipe', 'pipe', 'pipe'] });
  lockShells.add(shell);
  shell.on('exit', () => lockShells.delete(shell));
  let output = '';
  shell.stdout.on('data', (chunk) => { output += chunk; });
  shell.stderr.on('data', (chunk) => { output += chunk; });
  shell.stdin.write('.timeout 10000\nBEGIN EXCLUSIVE;\n.print locked\n');
  await withTimeout((async () => { while (!output.includes('locked')) await sleep(20); })(), 15_000, 'the write lock');
  assert.equal(output.trim(), 'locked', output);
  return {
    release: () => new Promise((resolve) => {
      shell.on('exit', resolve);
      shell.stdin.end('ROLLBACK;\n.quit\n');
    }),
  };
}

function openai(gateway) {
  return new OpenAI({ baseURL: gateway.baseUrl, apiKey: 'sk-unused', maxRetries: 0, timeout: 10_000 });
}

// `count` calls through the official SDK, 4 at a time; returns the ids answered.
async function answeredCalls(gateway, prefix, count) {
  const client = openai(gateway);
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      const completion = await client.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `journal call ${id}` }] },
        { headers: { 'x-request-id': id } });
      assert.ok(completion.usage.completion_tokens > 0);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return ids;
}

async function sigkill(gateway) {
  gateway.handle.child.kill('SIGKILL');
  const exit = await gateway.handle.waitExit();
  assert.equal(exit.signal, 'SIGKILL');
}

// Each id once, each at the exact price of its usage (gpt-4o-mini).
function assertStoredOnceAtExactCost(database, prefix, ids) {
  const rows = ledgerSql(database,
    `SELECT id, count(*), prompt_tokens, completion_tokens, cost_pico FROM calls WHERE id LIKE '${prefix}-%' GROUP BY id ORDER BY id`)
    .split('\n').filter(Boolean).map((line) => line.split('|'));
  assert.deepEqual(rows.map((row) => row[0]), [...ids].sort(), 'every answered call, and nothing else');
  const input = picoPerToken(TEST_MODELS['gpt-4o-mini'].input);
  const output = picoPerToken(TEST_MODELS['gpt-4o-mini'].output);
  for (const [id, copies, prompt, completion, cost] of rows) {
    assert.equal(copies, '1', `${id} stored ${copies} times`);
    assert.equal(BigInt(cost), BigInt(prompt) * input + BigInt(completion) * output, `${id}: cost`);
  }
}

// Both segment headers zero: the journal holds nothing to replay (journal.hpp).
function headersCleared(file) {
  const bytes = fs.readFileSync(file);
  const segment = bytes.length / 2;
  return bytes.subarray(0, 40).every((b) => b === 0) && bytes.subarray(segment, segment + 40).every((b) => b === 0);
}

function journalFiles(dir) {
  return fs.readdirSync(dir).filter((name) => name.startsWith('ledger.db.turnout-handoff-'));
}

describe('the journal hand-off on SQLite', () => {
  it('answers while the writer cannot commit, and a SIGKILL then loses none of those calls', { timeout: 120_000 }, async () => {
    const dir = makeTempDir('turnout-journal-');
    const database = path.join(dir, 'ledger.db');
    // No spool: the journal is the only place these records are until the restart.
    const configFile = writeConfig(dir, { ...baseConfig({ upstreamUrl: mock.baseUrl, dir }), ledger: { url: `sqlite:${database}`, spool_path: '' } });
    const gateway = await startGateway({ configFile, dir });
    assert.ok(journalFiles(dir).length >= 1, 'a journal file per event loop beside the ledger');
    const lock = await holdWriteLock(database);
    const ids = await answeredCalls(gateway, 'locked', 24);
    assert.equal(ledgerSql(database, "SELECT count(*) FROM calls WHERE id LIKE 'locked-%'"), '0',
      'answered before any of them was committed');
    await sigkill(gateway);
    await lock.release();
    const restarted = await startGateway({ configFile, dir });
    assertStoredOnceAtExactCost(database, 'locked', ids);
    assert.equal((await restarted.stats()).total_calls, ids.length, '/stats counts the replayed calls');
    // A clean stop leaves journals that replay nothing: after calls answered from them,
    // both segment headers of every journal file are zero (no frame is read back).
    await answeredCalls(restarted, 'after', 8);
    await restarted.stop();
    await restarted.handle.waitExit();
    assert.deepEqual(journalFiles(dir).filter((name) => !headersCleared(path.join(dir, name))), [],
      'every journal cleared at the clean stop');
    const again = await startGateway({ configFile, dir });
    assertStoredOnceAtExactCost(database, 'locked', ids);
    assert.equal(ledgerSql(database, "SELECT count(*) FROM calls WHERE id LIKE 'after-%'"), '8');
    await again.stop();
  });

  it('turnout stats says so when its open finds a damaged journal, and sets the file aside once', { timeout: 120_000 }, async () => {
    const dir = makeTempDir('turnout-journal-');
    const database = path.join(dir, 'ledger.db');
    const configFile = writeConfig(dir, { ...baseConfig({ upstreamUrl: mock.baseUrl, dir }), ledger: { url: `sqlite:${database}`, spool_path: '' } });
    const gateway = await startGateway({ configFile, dir });
    const lock = await holdWriteLock(database);
    await answeredCalls(gateway, 'damaged', 8);
    await sigkill(gateway);
    await lock.release();
    // One byte of the first frame's record flipped: its CRC fails, the frames after it are
    // whole, so the journal is damaged in the middle (not a torn tail).
    const [withRecords] = journalFiles(dir).filter((name) => !headersCleared(path.join(dir, name)));
    assert.ok(withRecords, 'a journal holding the answered calls');
    const file = path.join(dir, withRecords);
    const bytes = fs.readFileSync(file);
    bytes[40 + 24 + 4] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const stats = () => spawnSync(turnoutBin(), ['stats', '--config', configFile], { encoding: 'utf8', timeout: 60_000 });
    const first = stats();
    assert.equal(first.status, 0, first.stderr);
    assert.ok(JSON.parse(first.stdout), 'stdout is the stats JSON only');
    assert.match(first.stderr, new RegExp(`journal '[^']*${withRecords}' is damaged at byte 40`), first.stderr);
    assert.ok(!journalFiles(dir).includes(withRecords) || headersCleared(file), 'the damaged file is out of the replay pattern');
    assert.ok(fs.readdirSync(dir).some((name) => name.startsWith(`ledger.db.turnout-handoff-damaged-`)), 'and kept aside');
    const second = stats();
    assert.equal(second.status, 0, second.stderr);
    assert.doesNotMatch(second.stderr, /damaged/, 'replayed once: the next open finds nothing to report');
  });

  it('ledger.journal: false keeps no journal file, calls still land in the ledger; a clean stop leaves nothing to report', { timeout: 120_000 }, async () => {
    const dir = makeTempDir('turnout-journal-off-');
    const database = path.join(dir, 'ledger.db');
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    const offFile = writeConfig(dir, { ...config, ledger: { url: `sqlite:${database}`, journal: false } });
    const off = await startGateway({ configFile: offFile, dir });
    const ids = await answeredCalls(off, 'off', 6);
    assert.deepEqual(journalFiles(dir), [], 'no journal file with ledger.journal: false');
    await off.stop();
    await off.handle.waitExit();
    assertStoredOnceAtExactCost(database, 'off', ids);
    // On again: journals are made; after a clean stop the next start has no journal line.
    const onFile = writeConfig(dir, { ...config, ledger: { url: `sqlite:${database}` } });
    const on = await startGateway({ configFile: onFile, dir });
    assert.ok(journalFiles(dir).length >= 1);
    await answeredCalls(on, 'on', 4);
    await on.stop();
    await on.handle.waitExit();
    const again = await startGateway({ configFile: onFile, dir });
    await again.stop();
    await again.handle.waitExit();
    assert.doesNotMatch(again.handle.stderr, /ledger journals:/, again.handle.stderr);
  });

  it('with the spool taking the same records meanwhile, journal and spool give each call once', { timeout: 120_000 }, async () => {
    const dir = makeTempDir('turnout-journal-spool-');
    const database = path.join(dir, 'ledger.db');
    const configFile = writeConfig(dir, baseConfig({ upstreamUrl: mock.baseUrl, dir }));
    const gateway = await startGateway({ configFile, dir });
    const lock = await holdWriteLock(database);
    const ids = await answeredCalls(gateway, 'spooled', 12);
    // The writer gives up on the locked database (its busy timeout) and spools the batch.
    await withTimeout((async () => {
      for (;;) {
        const health = await gateway.request('GET', '/health', { timeoutMs: 5000 });
        if (health.json?.spooled === ids.length) return;
        await sleep(100);
      }
    })(), 30_000, 'the spool took the records');
    // Later calls are spooled at once (the writer follows the spool until it drains).
    ids.push(...await answeredCalls(gateway, 'spooled-late', 8));
    await sigkill(gateway);
    await lock.release();
    assert.ok(fs.existsSync(path.join(dir, 'turnout-spool.db')));
    const restarted = await startGateway({ configFile, dir });
    await withTimeout((async () => {
      while ((await restarted.request('GET', '/health')).json.spooled !== 0) await sleep(100);
    })(), 30_000, 'the spool drained');
    const rows = ledgerSql(database, "SELECT id, count(*) FROM calls WHERE id LIKE 'spooled%' GROUP BY id ORDER BY id")
      .split('\n').map((line) => line.split('|'));
    assert.deepEqual(rows.map((row) => row[0]), [...ids].sort());
    assert.ok(rows.every((row) => row[1] === '1'), JSON.stringify(rows));
    await restarted.stop();
  });

  it('a call with a governance hold waits for its commit: max_parallel 1 never refuses a sequential client', { timeout: 120_000 }, async () => {
    const dir = makeTempDir('turnout-journal-hold-');
    const database = path.join(dir, 'ledger.db');
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    config.governance = { key_cache_ttl_s: 0.3 };
    const configFile = writeConfig(dir, config);
    const gateway = await startGateway({ configFile, dir });
    const cli = governanceClient(configFile);
    const { value: created } = await cli.turnoutJson(['keys', 'create', '--name', 'sequential', '--budget-usd', '5',
      '--max-parallel', '1']);
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: created.key, maxRetries: 0, timeout: 10_000 });
    for (let i = 0; i < 30; i += 1) {
      const id = `held-${String(i).padStart(3, '0')}`;
      await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] },
        { headers: { 'x-request-id': id } });
      // Committed (and its hold settled) before the answer went out.
      assert.equal(ledgerSql(database, `SELECT count(*) FROM calls WHERE id = '${id}'`), '1', id);
    }
    const { value: shown, raw } = await cli.turnoutJson(['keys', 'show', created.id]);
    assert.match(raw, /"held_usd":0[,}]/, JSON.stringify(shown.usage));
    const lines = await cli.ledgerLines(created.id);
    assert.equal(lines.length, 30);
    assert.equal(BigInt(ledgerSql(database, `SELECT sum(cost_pico) FROM calls WHERE client_key_id = '${created.id}'`)),
      cli.ledgerTotal(lines));
    await gateway.stop();
  });

  it('while another process holds the write lock, a held call is answered only after its commit; an unheld one at once', { timeout: 120_000 }, async () => {
    const dir = makeTempDir('turnout-journal-lease-');
    const database = path.join(dir, 'ledger.db');
    const config = baseConfig({ upstreamUrl: mock.baseUrl, dir });
    // Lease mode: once its lease is taken, a budget key's call is admitted without a write
    // to the database, so only the ledger's commit can hold its answer back.
    config.governance = { key_cache_ttl_s: 0.3, mode: 'lease' };
    const configFile = writeConfig(dir, config);
    const gateway = await startGateway({ configFile, dir });
    const cli = governanceClient(configFile);
    const { value: created } = await cli.turnoutJson(['keys', 'create', '--name', 'leased', '--budget-usd', '5']);
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: created.key, maxRetries: 0, timeout: 30_000 });
    const ask = (id) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: id }] },
      { headers: { 'x-request-id': id } });
    await ask('lease-warm');  // takes the lease while the database is free
    const lock = await holdWriteLock(database);
    let heldAnswered = false;
    const held = ask('lease-locked').then((completion) => {
      heldAnswered = true;
      return completion;
    });
    await answeredCalls(gateway, 'unheld', 1);
    await sleep(1500);
    assert.equal(heldAnswered, false, 'a held call is answered only after its commit');
    await lock.release();
    await withTimeout(held, 20_000, 'the held call after the lock was released');
    // The held record is committed (its answer waited for that); the unheld one may be in
    // the writer's next round, so the stop (which drains the writer) comes before the count.
    assert.equal(ledgerSql(database, "SELECT count(*) FROM calls WHERE id = 'lease-locked'"), '1');
    await gateway.stop();
    assert.equal(ledgerSql(database, "SELECT count(*) FROM calls WHERE id IN ('lease-warm', 'lease-locked', 'unheld-000')"), '3');
  });

  it('/stats right after a burst of answers counts every one of them', { timeout: 120_000 }, async () => {
    const gateway = await startGateway({ upstreamUrl: mock.baseUrl });
    const client = openai(gateway);
    for (let round = 1; round <= 3; round += 1) {
      await Promise.all(Array.from({ length: 40 }, (_, i) => client.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `burst ${round} ${i}` }] })));
      const stats = await gateway.stats();
      assert.equal(stats.total_calls, 40 * round);
      assert.equal(stats.models['gpt-4o-mini'].calls, 40 * round);
    }
    await gateway.stop();
  });
});
