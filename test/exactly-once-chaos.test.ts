// exactlyOnce: true on a Kafka sink and a Redis sink at once. Two writers
// change rows without pause while walrelay is killed (-9) twelve times at
// random moments and the Kafka broker is restarted once; a read_committed
// consumer (kafkajs, and Kafka's own Java consumer) must then see every
// committed change exactly once, the Redis stream must hold every event id
// once, and replaying each key's events must give the table.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { appendFileSync } from 'node:fs';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { consumeToEnd } from './harness/kafka-consume.js';
import { javaConsume } from './harness/java-consumer.js';
import { writeConfig, runCli, spawnRelay, readStream } from './harness/relay.js';
import { waitUntilConfirmed } from './harness/slot.js';

const KEYS = 300;
const KILLS = 12;

describe('exactly-once into Kafka and Redis across kill -9 and a broker restart (PostgreSQL 18, Apache Kafka 4, Redis 7)', () => {
  let pgServer: TestPostgres;
  let kafka: TestKafka;
  let redis: TestRedis;
  let configFile: string;

  before(async () => {
    [pgServer, kafka, redis] = await Promise.all([startPostgres('pg18'), startKafka(), startRedis()]);
    await pgServer.query(`CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL)`);
    configFile = writeConfig({
      source: { url: pgServer.url, tables: ['public.items'] },
      sinks: [
        { type: 'kafka', brokers: kafka.brokers, topic: 'eo.{schema}.{table}', createTopics: { partitions: 3, replicationFactor: 1 }, exactlyOnce: true, name: 'eo-kafka' },
        { type: 'redis', name: 'eo-redis', url: redis.url, exactlyOnce: true },
      ],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
  });

  after(async () => {
    await Promise.all([pgServer?.stop(), kafka?.stop(), redis?.stop()]);
  });

  it('every committed change once in Kafka (read_committed) and in Redis; per-key replay equals the table', async (t) => {
    let stop = false;
    let committedChanges = 0;
    const writer = async (seed: number) => {
      const client = new pg.Client({ connectionString: pgServer.url });
      await client.connect();
      let n = seed;
      try {
        while (!stop) {
          const keys = [...new Set(Array.from({ length: 1 + (n % 5) }, (_, i) => 1 + ((n * 31 + i * 97) % KEYS)))].sort((a, b) => a - b);
          n++;
          await client.query('BEGIN');
          let changes = 0;
          for (const key of keys) {
            if (n % 11 === 0) changes += (await client.query('DELETE FROM items WHERE id = $1', [key])).rowCount ?? 0;
            else changes += (await client.query('INSERT INTO items VALUES ($1, 1) ON CONFLICT (id) DO UPDATE SET v = items.v + 1', [key])).rowCount ?? 0;
          }
          await client.query('COMMIT');
          committedChanges += changes;
        }
      } finally {
        await client.end();
      }
    };
    const writers = [writer(1), writer(5000)];
    const kills: string[] = [];
    try {
      for (let kill = 1; kill <= KILLS; kill++) {
        const relay = spawnRelay(configFile);
        await relay.waitForLog(/"msg":"streaming"/, 60_000);
        if (kill === KILLS / 2) {
          // A broker restart under the running relay: transactions in flight fail and are redone under a new epoch.
          await kafka.pause();
          await kafka.resume();
        }
        // A random moment: before, during or after the first transactions of this run.
        const delay = Math.floor(Math.random() * 2500);
        await new Promise((resolve) => setTimeout(resolve, delay));
        relay.signal('SIGKILL');
        await relay.exited;
        if (process.env.WALRELAY_TEST_LOGS) appendFileSync(process.env.WALRELAY_TEST_LOGS, `--- run ${kill} ---\n${relay.logs()}`);
        kills.push(`${delay} ms`);
      }
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    t.diagnostic(`kill -9 after streaming began + ${kills.join(', ')}; ${committedChanges} committed changes`);

    const relay = spawnRelay(configFile);
    try {
      await waitUntilConfirmed(pgServer, 'walrelay', { what: 'walrelay to confirm every change', timeoutMs: 180_000, intervalMs: 250 });
    } finally {
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    }
    assert.match(relay.logs(), /read the last committed checkpoint/);

    const records = await consumeToEnd(kafka.brokers, ['eo.public.items'], { readCommitted: true });
    const java = await javaConsume(kafka.libs, kafka.brokers, 'eo.public.items', true);
    const uncommitted = await javaConsume(kafka.libs, kafka.brokers, 'eo.public.items', false);
    const dup = (list: typeof records) => list.length - new Set(list.map((record) => record.headers['walrelay-id'])).size;
    t.diagnostic(`kafkajs read_committed: ${records.length} records, ${dup(records)} repeated; Java read_committed: ${java.length}, ${dup(java)} repeated; read_uncommitted: ${uncommitted.length}, ${dup(uncommitted)} repeated (aborted attempts)`);
    if (dup(records) > 0) {
      const seen = new Map<string, string>();
      for (const record of records) {
        const id = record.headers['walrelay-id'];
        if (seen.has(id)) { t.diagnostic(`repeat ${id}: first at ${seen.get(id)}, again at ${record.partition}/${record.offset}`); break; }
        seen.set(id, `${record.partition}/${record.offset}`);
      }
    }
    const ids = records.map((record) => record.headers['walrelay-id']);
    assert.equal(new Set(ids).size, records.length, `${records.length - new Set(ids).size} changes seen twice`);
    assert.equal(records.length, committedChanges, 'every committed change is in Kafka');

    const replay = new Map<number, number>();
    const byPartitionOrder = [...records].sort((a, b) => (a.partition - b.partition) || Number(a.offset - b.offset));
    for (const record of byPartitionOrder) {
      const event = JSON.parse(record.value);
      if (event.op === 'delete') replay.delete(event.key.id);
      else replay.set(event.new.id, event.new.v);
    }
    const table = new Map((await pgServer.query(`SELECT id, v FROM items`)).map((row: { id: number; v: number }) => [row.id, row.v]));
    assert.deepEqual(new Map([...replay].sort((a, b) => a[0] - b[0])), new Map([...table].sort((a, b) => a[0] - b[0])));

    const client = redis.client();
    try {
      const stream = await readStream(client, 'walrelay:public.items');
      const streamIds = stream.map((event) => event.id);
      assert.equal(new Set(streamIds).size, stream.length, `${stream.length - new Set(streamIds).size} events twice in the Redis stream`);
      assert.equal(stream.length, committedChanges, 'every committed change is in Redis');
      const redisReplay = new Map<number, number>();
      for (const event of stream) {
        if (event.op === 'delete') redisReplay.delete((event.key as { id: number }).id);
        else redisReplay.set((event.new as { id: number }).id, (event.new as { v: number }).v);
      }
      assert.deepEqual(new Map([...redisReplay].sort((a, b) => a[0] - b[0])), new Map([...table].sort((a, b) => a[0] - b[0])));
    } finally {
      client.disconnect();
    }
  });
});
