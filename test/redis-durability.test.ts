// waitReplicas and waitAof (issue 24, 5): a Redis ack means "in the master's
// memory"; with waitReplicas a batch counts as delivered, and its LSN is
// confirmed, only once Redis WAIT reports enough replicas. A real replica
// (replicaof) is frozen with SIGSTOP: the batch is written to the master but
// not confirmed, the sink retries the WAIT; thawed, the LSN is confirmed and
// nothing is duplicated. waitAof uses WAITAOF (Redis 7.2+): on an older
// server it is refused at start with a clear error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { readStream, runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { confirmedFlush, walInsertLsn } from './harness/slot.js';

describe('redis waitReplicas / waitAof', () => {
  let pgServer: TestPostgres;
  let master: TestRedis;
  let replica: TestRedis;
  let masterClient: Redis;
  let replicaClient: Redis;
  let relay: RelayProcess | undefined;

  const confirmed = (slot: string) => confirmedFlush(pgServer, slot);
  const walNow = () => walInsertLsn(pgServer);
  const serverVersion = async (client: Redis) => (/redis_version:(\d+)\.(\d+)/.exec(await client.info('server')) ?? []).slice(1).map(Number);

  before(async () => {
    [pgServer, master] = await Promise.all([startPostgres('pg15'), startRedis()]);
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    masterClient = master.client();
    replicaClient = replica.client();
    await waitFor(async () => /master_link_status:up/.test(await replicaClient.info('replication')), { what: 'the replica to be in sync' });
    await pgServer.query('CREATE TABLE w (id int PRIMARY KEY)');
  });
  after(async () => {
    relay?.signal('SIGKILL');
    replica?.thaw();
    masterClient?.disconnect();
    replicaClient?.disconnect();
    await Promise.all([pgServer?.stop(), master?.stop(), replica?.stop()]);
  });

  it('confirms a batch only once WAIT counts the replica; a frozen replica holds the LSN back without duplicates', async () => {
    const file = writeConfig({
      source: { url: pgServer.url, slot: 'wait', publication: 'wait', tables: ['public.w'], statusIntervalSeconds: 0.2 },
      sinks: [
        { type: 'redis', url: master.url, stream: 'alo:{table}', waitReplicas: 1, waitTimeoutMs: 200, timeoutSeconds: 5 },
        { type: 'redis', name: 'eo', url: master.url, stream: 'eo:{table}', exactlyOnce: true, waitReplicas: 1, waitTimeoutMs: 200, timeoutSeconds: 5 },
      ],
    });
    assert.equal((await runCli(['setup', '-c', file])).code, 0);
    relay = spawnRelay(file);
    await relay.waitForLog(/"msg":"streaming"/);

    await pgServer.query('INSERT INTO w VALUES (1)');
    const afterFirst = await walNow();
    await waitFor(async () => (await confirmed('wait')) >= afterFirst, { what: 'the first insert confirmed' });
    for (const stream of ['alo:w', 'eo:w']) assert.deepEqual((await readStream(replicaClient, stream)).map((event) => event.new), [{ id: 1 }], `${stream} on the replica`);

    replica.freeze();
    const beforeSecond = await walNow();
    await pgServer.query('INSERT INTO w VALUES (2)');
    const afterSecond = await walNow();
    await relay.waitForLog(/REDIS_WAIT_REPLICAS: redis at [^ ]+: 0 of 1 replicas acknowledged/);
    // On the master, not on a replica: not delivered, so not confirmed.
    for (const stream of ['alo:w', 'eo:w']) assert.equal(await masterClient.xlen(stream), 2, `${stream} on the master`);
    await relay.waitForLog(/REDIS_WAIT_REPLICAS[\s\S]*REDIS_WAIT_REPLICAS[\s\S]*REDIS_WAIT_REPLICAS/); // retried, still short
    assert.ok(await confirmed('wait') <= beforeSecond, 'the second insert is not confirmed while the replica is frozen');

    replica.thaw();
    await waitFor(async () => (await confirmed('wait')) >= afterSecond, { what: 'the second insert confirmed once the replica answers' });
    for (const stream of ['alo:w', 'eo:w']) {
      assert.deepEqual((await readStream(replicaClient, stream)).map((event) => event.new), [{ id: 1 }, { id: 2 }], `${stream} on the replica: each event once`);
    }
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
    relay = undefined;
  });

  it('waitAof: refused at start on a server without WAITAOF (before 7.2), delivered once fsynced on one with it', async () => {
    const [major, minor] = await serverVersion(masterClient);
    const hasWaitAof = major > 7 || (major === 7 && minor >= 2);
    const aofRedis = hasWaitAof ? await startRedis({ args: ['--appendonly', 'yes'] }) : master;
    try {
      const file = writeConfig({
        source: { url: pgServer.url, slot: 'aof', publication: 'aof', tables: ['public.w'], statusIntervalSeconds: 0.2 },
        sinks: [{ type: 'redis', url: aofRedis.url, stream: 'aof:{table}', waitAof: { local: true }, waitTimeoutMs: 500, timeoutSeconds: 5 }],
      });
      assert.equal((await runCli(['setup', '-c', file])).code, 0);
      relay = spawnRelay(file);
      if (!hasWaitAof) {
        assert.equal(await relay.exited, 2, relay.logs());
        assert.match(relay.logs(), /REDIS_WAITAOF_UNSUPPORTED: this redis server has no WAITAOF[^\n]*waitAof needs Redis 7\.2 or later/);
        relay = undefined;
        return;
      }
      await relay.waitForLog(/"msg":"streaming"/);
      await pgServer.query('INSERT INTO w VALUES (3)');
      const afterInsert = await walNow();
      await waitFor(async () => (await confirmed('aof')) >= afterInsert, { what: 'the insert confirmed after WAITAOF' });
      const aofClient = aofRedis.client();
      try {
        assert.ok((await aofClient.xlen('aof:w')) >= 1);
      } finally {
        aofClient.disconnect();
      }
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0);
      relay = undefined;
    } finally {
      if (aofRedis !== master) await aofRedis.stop();
    }
  });

  it('refuses waitTimeoutMs not below timeoutSeconds (exit 2, naming the key)', async () => {
    const result = await runCli(['validate', '-c', writeConfig({
      source: { url: pgServer.url },
      sinks: [{ type: 'redis', url: master.url, waitReplicas: 1, waitTimeoutMs: 5000, timeoutSeconds: 5 }],
    })]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /sinks\[0\]\.waitTimeoutMs/);
  });
});
