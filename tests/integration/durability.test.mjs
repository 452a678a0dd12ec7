// SPEC section 6: "A call whose complete response a client received is in the ledger, even
// if the gateway is killed right after." Concurrent calls, SIGKILL the moment the last
// response is read, restart on the same SQLite file, and find every call.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { makeTempDir, runTurnout, startGateway, startMock, stopAll } from './lib/harness.mjs';
import { promptWithTokens } from './lib/reference.mjs';

const CALLS_PER_ROUND = 40;
const CONCURRENCY = 4;

let mock;
let dir;
let configFile;

before(async () => {
  mock = await startMock();
  dir = makeTempDir();
});
after(stopAll);

// Sends `count` calls, `CONCURRENCY` at a time; SIGKILLs the gateway as soon as the last
// complete response is in. Returns the request ids.
async function callsThenSigkill(gateway, prefix, count) {
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      const response = await gateway.chat({ model: 'auto', messages: promptWithTokens(12 + (next % 5)) }, { 'x-request-id': id });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.headers.get('x-request-id'), id);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  gateway.handle.child.kill('SIGKILL');
  const exit = await gateway.handle.waitExit();
  assert.equal(exit.signal, 'SIGKILL');
  return ids;
}

describe('SIGKILL right after the responses', () => {
  const allIds = [];

  it('round 1: every answered call is in the ledger after SIGKILL', async () => {
    const gateway = await startGateway({ upstreamUrl: mock.baseUrl, dir });
    configFile = gateway.configFile;
    allIds.push(...await callsThenSigkill(gateway, 'kill-r1', CALLS_PER_ROUND));

    const cli = await runTurnout(['stats', '--config', configFile], { cwd: dir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).total_calls, allIds.length);

    const restarted = await startGateway({ configFile, dir });
    const stats = await restarted.stats(`?recent=${allIds.length}`);
    assert.equal(stats.total_calls, allIds.length);
    assert.deepEqual(stats.recent_calls.map((call) => call.id).sort(), [...allIds].sort());
    assert.equal(stats.errors, 0);

    // Round 2 on the restarted gateway: the recovered database keeps taking records.
    allIds.push(...await callsThenSigkill(restarted, 'kill-r2', CALLS_PER_ROUND));
  });

  it('round 2: a second SIGKILL loses nothing either', async () => {
    const cli = await runTurnout(['stats', '--config', configFile], { cwd: dir });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(JSON.parse(cli.stdout).total_calls, allIds.length);

    const restarted = await startGateway({ configFile, dir });
    const stats = await restarted.stats(`?recent=${allIds.length}`);
    assert.equal(stats.total_calls, allIds.length);
    assert.deepEqual(stats.recent_calls.map((call) => call.id).sort(), [...allIds].sort());
    await restarted.stop();
  });
});
