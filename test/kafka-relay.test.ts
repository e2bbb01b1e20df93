// PostgreSQL → walrelay → a real Apache Kafka broker (and Redis at the same
// time): topics, keys, headers, per-key order, and no loss while the broker
// is down for 20 seconds.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { writeConfig, runCli, spawnRelay, waitForStreamLength, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { parseLsn } from '../relay/lsn.js';
import { confirmedFlush } from './harness/slot.js';

interface Received {
  topic: string;
  partition: number;
  key: string | null;
  value: any;
  headers: Record<string, string>;
}

async function consumeAll(brokers: string[], topics: string[], expected: number, timeoutMs = 120_000): Promise<Received[]> {
  const kafka = new Kafka({ brokers, clientId: 'walrelay-test', logLevel: logLevel.NOTHING });
  // The relay creates topics on first use: subscribe once they exist.
  const admin = kafka.admin();
  await admin.connect();
  await waitFor(async () => {
    const existing = new Set(await admin.listTopics());
    return topics.every((topic) => existing.has(topic));
  }, { what: `topics ${topics.join(', ')}`, timeoutMs: 60_000 });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `test-${Date.now()}-${Math.random()}` });
  const received: Received[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => { resolveDone = resolve; });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }: { topic: string; partition: number; message: KafkaMessage }) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
      received.push({ topic, partition, key: message.key?.toString() ?? null, value: JSON.parse(message.value!.toString()), headers });
      if (received.length >= expected) resolveDone();
    },
  });
  const timer = setTimeout(resolveDone, timeoutMs);
  await done;
  clearTimeout(timer);
  await consumer.disconnect();
  return received;
}

describe('Kafka sink end to end (PostgreSQL 18, Apache Kafka 4)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let kafka: TestKafka;
  let client: Redis;
  let relay: RelayProcess;


  before(async () => {
    [pgServer, redis, kafka] = await Promise.all([startPostgres('pg18'), startRedis(), startKafka()]);
    client = redis.client();
    await pgServer.query(`
      CREATE TABLE customers (id int PRIMARY KEY, name text);
      CREATE TABLE orders (id int, region text, status text, PRIMARY KEY (region, id));
      CREATE TABLE outage (id int PRIMARY KEY, note text);`);
    const configFile = writeConfig({
      source: { url: pgServer.url, tables: ['public.customers', 'public.orders', 'public.outage'] },
      sinks: [
        { type: 'kafka', brokers: kafka.brokers, topic: 'cdc.{schema}.{table}', createTopics: { partitions: 3, replicationFactor: 1 } },
        { type: 'redis', url: redis.url, tables: ['public.outage'] },
      ],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop(), kafka?.stop()]);
  });

  it('lands changes of two tables on their topics with JSON keys, headers and per-key order', async () => {
    await pgServer.query(`
      INSERT INTO customers SELECT i, 'customer ' || i FROM generate_series(1, 50) i;
      INSERT INTO orders SELECT i, CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, 'new' FROM generate_series(1, 50) i;
      UPDATE orders SET status = 'paid' WHERE id <= 25;
      UPDATE orders SET status = 'shipped' WHERE id <= 10;
      DELETE FROM customers WHERE id > 40;`);
    const received = await consumeAll(kafka.brokers, ['cdc.public.customers', 'cdc.public.orders'], 50 + 50 + 25 + 10 + 10);
    assert.equal(received.length, 145);
    const customers = received.filter((record) => record.topic === 'cdc.public.customers');
    const orders = received.filter((record) => record.topic === 'cdc.public.orders');
    assert.equal(customers.length, 60);
    assert.equal(orders.length, 85);
    const sample = orders.find((record) => record.value.key.id === 4)!;
    assert.equal(sample.key, JSON.stringify(sample.value.key), 'the record key is the JSON of the event key');
    assert.equal(sample.key, '{"id":4,"region":"eu"}');
    assert.equal(sample.headers['walrelay-op'], 'insert');
    assert.equal(sample.headers['walrelay-lsn'], sample.value.lsn);
    assert.equal(sample.headers['walrelay-id'], sample.value.id);
    const deletion = customers.find((record) => record.value.op === 'delete')!;
    assert.equal(deletion.headers['walrelay-op'], 'delete');

    // Per key: insert, then paid, then shipped, in that order, all on one partition.
    const byKey = new Map<string, Received[]>();
    for (const record of orders) byKey.set(record.key!, [...(byKey.get(record.key!) ?? []), record]);
    for (const [key, records] of byKey) {
      assert.equal(new Set(records.map((record) => record.partition)).size, 1, `key ${key} spread over partitions`);
      const statuses = records.map((record) => record.value.new.status);
      const id = JSON.parse(key).id;
      const expected = id <= 10 ? ['new', 'paid', 'shipped'] : id <= 25 ? ['new', 'paid'] : ['new'];
      assert.deepEqual(statuses, expected, `order of ${key}`);
    }

    if (existsSync('/usr/bin/kcat')) {
      // A non-Node consumer sees the same keys on the same partitions.
      const output = execFileSync('/usr/bin/kcat', ['-C', '-b', kafka.brokers[0], '-t', 'cdc.public.orders', '-o', 'beginning', '-e', '-q', '-f', '%p %k\\n'], { encoding: 'utf8' });
      const kcatPartitions = new Map<string, number>();
      for (const line of output.trim().split('\n')) {
        const space = line.indexOf(' ');
        kcatPartitions.set(line.slice(space + 1), Number(line.slice(0, space)));
      }
      for (const [key, records] of byKey) assert.equal(kcatPartitions.get(key), records[0].partition, `kcat sees ${key} elsewhere`);
    } else {
      assert.fail('kcat is not installed (.ci/run installs it): cannot check a non-Node consumer');
    }
  });

  it('splits large rows into requests the broker accepts (message.max.bytes 1 MiB)', async () => {
    await pgServer.query(`INSERT INTO customers SELECT 5000 + i, repeat(md5(i::text), 700) FROM generate_series(1, 200) i`);
    const received = await consumeAll(kafka.brokers, ['cdc.public.customers'], 60 + 200);
    const large = received.filter((record) => record.value.new?.id > 5000);
    assert.equal(new Set(large.map((record) => record.value.new.id)).size, 200);
    assert.equal(large[0].value.new.name.length, 22_400);
  });

  it('stops with KAFKA_TOPIC_MISSING when the topic is absent and createTopics is off', async () => {
    const configFile = writeConfig({
      source: { url: pgServer.url, slot: 'strict', publication: 'strict', tables: ['public.customers'] },
      sinks: [{ type: 'kafka', brokers: kafka.brokers, topic: 'absent.{table}' }],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    const strict = spawnRelay(configFile);
    await strict.waitForLog(/"msg":"streaming"/);
    await pgServer.query(`INSERT INTO customers VALUES (1000, 'late')`);
    assert.equal(await strict.exited, 1);
    assert.match(strict.logs(), /KAFKA_TOPIC_MISSING: topic absent\.customers does not exist.*set createTopics/);
    await runCli(['teardown', '-c', configFile]);
  });

  it('holds the checkpoint while the broker is down for 20 seconds and loses nothing', async () => {
    const writer = new pg.Client({ connectionString: pgServer.url });
    await writer.connect();
    try {
      await writer.query(`INSERT INTO outage SELECT i, 'before' FROM generate_series(1, 500) i`);
      await waitForStreamLength(client, 'walrelay:public.outage', 500);
      // Kafka must have acknowledged the first 500 too: until then they occupy the
      // relay's in-flight batches, and backpressure rightly holds Redis back as well.
      const [[, last]] = await client.xrevrange('walrelay:public.outage', '+', '-', 'COUNT', 1);
      const lastLsn = parseLsn(JSON.parse(last[1]).lsn);
      await waitFor(async () => (await confirmedFlush(pgServer)) > lastLsn, { what: 'Kafka to acknowledge the first 500 rows', timeoutMs: 60_000 });
      await kafka.pause();
      await writer.query(`INSERT INTO outage SELECT i, 'during' FROM generate_series(501, 1000) i`);
      // Redis receives rows that Kafka cannot: the checkpoint must wait for both sinks.
      await waitForStreamLength(client, 'walrelay:public.outage', 501);
      await relay.waitForLog(/sink delivery failed; retrying/);
      const confirmedDuringOutage = await confirmedFlush(pgServer);
      await new Promise((resolve) => setTimeout(resolve, 20_000));
      assert.equal(await confirmedFlush(pgServer), confirmedDuringOutage, 'the LSN moved while Kafka was down');
      await kafka.resume();
      await writer.query(`INSERT INTO outage SELECT i, 'after' FROM generate_series(1001, 2000) i`);
    } finally {
      await writer.end();
    }
    const received = await consumeAll(kafka.brokers, ['cdc.public.outage'], 2000);
    const byId = new Map<number, string>();
    for (const record of received) {
      const id = record.value.new.id as number;
      const seen = byId.get(id);
      if (seen) assert.equal(seen, record.value.id, `row ${id} re-delivered with a different id`);
      byId.set(id, record.value.id);
    }
    assert.equal(byId.size, 2000, `${2000 - byId.size} rows missing from Kafka`);
    assert.ok((await confirmedFlush(pgServer)) > 0n);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });
});
