// Zombie fencing on exactly-once Redis and Kafka sinks. Two walrelays share
// one slot (the documented hot standby). The active one is paused (SIGSTOP)
// with writes on their way to Redis and Kafka (held in proxies); PostgreSQL
// drops its replication connection, the standby takes the slot and delivers
// the same changes (its new transactional epoch fences the paused one). Then
// the paused one resumes and its late writes arrive: Redis's checkpoint
// compare refuses them, Kafka refuses the old epoch (and the paused one,
// retrying, finds the standby's checkpoint and skips everything), so every
// event id is in the Redis stream once and once for read_committed readers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { consumeToEnd } from './harness/kafka-consume.js';
import { startTcpProxy, type TcpProxy } from './harness/answer-proxy.js';
import { freePort } from './harness/ports.js';
import { writeConfig, runCli, spawnRelay, readStream, waitForStreamLength, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { waitUntilConfirmed } from './harness/slot.js';

const STREAM = 'walrelay:public.accounts';

describe('zombie fencing: exactly-once Redis and Kafka sinks, two walrelays on one slot, the active one paused', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let kafka: TestKafka;
  let proxy: TcpProxy;
  let kafkaProxy: TcpProxy;
  let kafkaViaProxy: string;
  let client: Redis;
  const relays: RelayProcess[] = [];

  before(async () => {
    // A stalled receiver loses its walsender after 2 s, so the standby can take the slot quickly.
    // Kafka: clients bootstrapping on the second listener are sent to its proxy; the others connect directly.
    const [secondPort, kafkaProxyPort] = [await freePort(), await freePort()];
    kafkaProxy = await startTcpProxy(kafkaProxyPort, secondPort);
    kafkaViaProxy = `127.0.0.1:${kafkaProxyPort}`;
    [pgServer, redis, kafka] = await Promise.all([
      startPostgres('pg18', { wal_sender_timeout: '2s' }), startRedis(), startKafka({ secondListener: { port: secondPort, advertisedPort: kafkaProxyPort } }),
    ]);
    proxy = await startTcpProxy(await freePort(), redis.port);
    client = redis.client();
    await pgServer.query(`CREATE TABLE accounts (id int PRIMARY KEY, v int NOT NULL)`);
  });

  after(async () => {
    for (const relay of relays) { relay.signal('SIGCONT'); relay.signal('SIGKILL'); }
    client?.disconnect();
    await proxy?.close();
    await kafkaProxy?.close();
    await Promise.all([pgServer?.stop(), redis?.stop(), kafka?.stop()]);
  });

  it("refuses the paused instance's late writes after the standby took over", async () => {
    const config = (url: string, broker: string) => writeConfig({
      source: { url: pgServer.url, tables: ['public.accounts'] },
      sinks: [
        { type: 'redis', name: 'zombie-redis', url, exactlyOnce: true },
        { type: 'kafka', brokers: [broker], topic: 'zombie.{table}', createTopics: { partitions: 3, replicationFactor: 1 }, exactlyOnce: true, name: 'zombie-kafka' },
      ],
    });
    const viaProxy = config(`redis://127.0.0.1:${proxy.port}`, kafkaViaProxy);
    assert.equal((await runCli(['setup', '-c', viaProxy])).code, 0);
    const active = spawnRelay(viaProxy);
    relays.push(active);
    await active.waitForLog(/"msg":"streaming"/);
    const standby = spawnRelay(config(redis.url, kafka.brokers[0]));
    relays.push(standby);
    await standby.waitForLog(/SLOT_IN_USE/);

    await pgServer.query(`INSERT INTO accounts SELECT i, 1 FROM generate_series(1, 100) i`);
    await waitForStreamLength(client, STREAM, 100);

    // Both sinks have the first 100 (the slot confirmed them): nothing of them is in flight any more.
    await waitUntilConfirmed(pgServer, 'walrelay', { what: 'the first 100 changes confirmed', timeoutMs: 60_000 });
    // The next writes of the active instance stay in the proxies: sent, not yet arrived.
    proxy.hold();
    kafkaProxy.hold();
    await pgServer.query(`UPDATE accounts SET v = 2 WHERE id <= 50`);
    await pgServer.query(`UPDATE accounts SET v = 3 WHERE id <= 25`);
    await waitFor(() => proxy.heldBytes > 0, { what: 'the active walrelay to send its next write to Redis' });
    await waitFor(() => kafkaProxy.heldBytes > 0, { what: 'the active walrelay to send its next write to Kafka' });
    active.signal('SIGSTOP');

    await standby.waitForLog(/"msg":"streaming"/, 120_000);
    await waitForStreamLength(client, STREAM, 175, 120_000);

    // The zombie wakes up and its write lands late.
    await standby.waitForLog(/kafka exactly-once: read the last committed checkpoint/, 60_000);
    active.signal('SIGCONT');
    proxy.release();
    kafkaProxy.release();
    await active.waitForLog(/redis exactly-once: skipped events the streams already have/, 60_000);
    // Kafka refused the old epoch; retrying, the paused one read the standby's checkpoint and skipped what it had.
    // Or its replication session was found dead first: then it dropped the batch (the session that would have
    // confirmed it is gone) and did not retry at all. Either way nothing lands twice (counted below).
    await active.waitForLog(/kafka exactly-once: skipped events Kafka already has|events queued for sinks and not yet acknowledged are dropped/, 60_000);

    await pgServer.query(`UPDATE accounts SET v = v + 10 WHERE id > 90`);
    await waitForStreamLength(client, STREAM, 185, 60_000);

    const events = await readStream(client, STREAM);
    const ids = events.map((event) => event.id);
    assert.equal(new Set(ids).size, ids.length, `${ids.length - new Set(ids).size} events appended twice`);
    assert.equal(events.length, 185);
    // Per key, replaying the stream gives the table.
    const replay = new Map<number, number>();
    for (const event of events) replay.set((event.new as { id: number }).id, (event.new as { v: number }).v);
    const table = await pgServer.query(`SELECT id, v FROM accounts ORDER BY id`);
    assert.deepEqual([...replay].sort((a, b) => a[0] - b[0]), table.map((row: { id: number; v: number }) => [row.id, row.v]));

    // Kafka, read_committed: the same 185 changes, each once.
    await waitFor(async () => (await consumeToEnd(kafka.brokers, ['zombie.accounts'], { readCommitted: true })).length >= 185, { what: '185 committed records in Kafka', timeoutMs: 60_000, intervalMs: 1000 });
    const records = await consumeToEnd(kafka.brokers, ['zombie.accounts'], { readCommitted: true });
    const kafkaIds = records.map((record) => record.headers['walrelay-id']);
    assert.equal(new Set(kafkaIds).size, records.length, `${records.length - new Set(kafkaIds).size} changes twice in Kafka`);
    assert.equal(records.length, 185);
  });
});
