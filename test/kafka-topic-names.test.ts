// Kafka topic names from table names: Kafka allows only [a-zA-Z0-9._-] (at
// most 249 characters), PostgreSQL allows almost anything in a quoted name.
// A table "Order Items" must reach topic ..._Order_Items (Debezium's rule:
// every other character becomes "_"), and a name Kafka still refuses must
// stop walrelay with a clear error (exit 1, code and hint) instead of a
// retry loop that never ends while WAL piles up. (source.tables takes no
// spaces: the publication is FOR ALL TABLES here.)
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { consumeToEnd } from './harness/kafka-consume.js';
import { writeConfig, runCli, spawnRelay } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { Kafka, logLevel } from 'kafkajs';

describe('Kafka topic names from table names', () => {
  let pgServer: TestPostgres;
  let kafka: TestKafka;

  before(async () => {
    [pgServer, kafka] = await Promise.all([startPostgres('pg18'), startKafka()]);
    await pgServer.query(`CREATE TABLE "Order Items" (id int PRIMARY KEY, "näme" text)`);
  });

  after(async () => {
    await Promise.all([pgServer?.stop(), kafka?.stop()]);
  });

  it('a table "Order Items" goes to topic topics.public.Order_Items', async () => {
    const configFile = writeConfig({
      source: { url: pgServer.url, slot: 'names', publication: 'names' },
      sinks: [{ type: 'kafka', name: 'names', brokers: kafka.brokers, topic: 'topics.{schema}.{table}', createTopics: { partitions: 1, replicationFactor: 1 } }],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    const relay = spawnRelay(configFile);
    try {
      await relay.waitForLog(/"msg":"streaming"/, 60_000);
      await pgServer.query(`INSERT INTO "Order Items" VALUES (1, 'a')`);
      const admin = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        await waitFor(async () => (await admin.listTopics()).includes('topics.public.Order_Items'), { what: 'topic topics.public.Order_Items', timeoutMs: 30_000 });
      } finally {
        await admin.disconnect();
      }
      await waitFor(async () => (await consumeToEnd(kafka.brokers, ['topics.public.Order_Items'])).length === 1, { what: 'the insert in the topic', timeoutMs: 30_000, intervalMs: 500 });
      const [record] = await consumeToEnd(kafka.brokers, ['topics.public.Order_Items']);
      assert.equal(JSON.parse(record.value).table, 'Order Items', 'the event still names the table as PostgreSQL does');
    } finally {
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    }
  });

  it('a topic name Kafka refuses (longer than 249 characters) stops walrelay with KAFKA_TOPIC_INVALID, exit 1', async () => {
    const configFile = writeConfig({
      source: { url: pgServer.url, slot: 'names_long', publication: 'names' },
      sinks: [{ type: 'kafka', name: 'long', brokers: kafka.brokers, topic: `${'x'.repeat(250)}.{table}`, createTopics: { partitions: 1, replicationFactor: 1 } }],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    const relay = spawnRelay(configFile);
    try {
      await relay.waitForLog(/"msg":"streaming"/, 60_000);
      await pgServer.query(`INSERT INTO "Order Items" VALUES (2, 'b')`);
      const code = await Promise.race([relay.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 30_000))]);
      assert.equal(code, 1, `walrelay kept retrying a topic Kafka refuses; logs:\n${relay.logs().slice(-2000)}`);
      assert.match(relay.logs(), /KAFKA_TOPIC_INVALID: .*x{249}/);
      assert.match(relay.logs(), /topic/);
      assert.doesNotMatch(relay.logs(), /\n\s+at /, 'no stack trace');
    } finally {
      if (relay.child.exitCode === null && relay.child.signalCode === null) relay.signal('SIGKILL');
      await relay.exited;
    }
  });
});
