// A Debezium consumer reads walrelay's output unchanged: on Kafka, a kafkajs
// consumer written for Debezium (topic <prefix>.<schema>.<table>, key =
// Debezium's key JSON, value = the envelope, null value = tombstone) gets
// exactly the records the Redis sink writes in Debezium Server's Redis
// layout (which the golden test holds equal to Debezium Server's), and
// rebuilds the tables' current rows from them as it would from Debezium.
// Also: tombstonesOnDelete: false leaves the tombstones out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { startPostgres } from './harness/postgres.js';
import { startRedis } from './harness/redis.js';
import { startKafka } from './harness/kafka.js';
import { startRelayInProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { SCENARIO_TABLES } from './harness/debezium-scenario.js';
import { collect, createScenarioDatabase, runScenarioSteps, withoutProcessingTime } from './debezium/compare.js';

interface KafkaRecord { topic: string; key: string | null; value: string | null }

async function consume(brokers: string[], topics: string[], until: (records: KafkaRecord[]) => boolean): Promise<KafkaRecord[]> {
  const kafka = new Kafka({ brokers, clientId: 'debezium-consumer', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await waitFor(async () => {
    const existing = new Set(await admin.listTopics());
    return topics.every((topic) => existing.has(topic));
  }, { what: `walrelay's topics ${topics.join(', ')}`, timeoutMs: 60_000 });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `debezium-consumer-${topics[0]}` });
  const records: KafkaRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        records.push({ topic, key: message.key?.toString() ?? null, value: message.value === null ? null : message.value.toString() });
      },
    });
    await waitFor(() => until(records), { what: `the scenario's records on ${topics.join(', ')}`, timeoutMs: 120_000 });
  } finally {
    await consumer.disconnect();
  }
  return records;
}

test('a Debezium consumer reads walrelay on Kafka unchanged: same records as the Redis layout, tombstones as null values, tables rebuilt', { timeout: 240_000 }, async () => {
  const [postgres, redis, kafka] = await Promise.all([startPostgres('pg15'), startRedis(), startKafka()]);
  let relay: Awaited<ReturnType<typeof startRelayInProcess>> | undefined;
  try {
    const url = await createScenarioDatabase(postgres.url, 'consumers');
    relay = await startRelayInProcess({
      source: { url, tables: SCENARIO_TABLES },
      sinks: [
        { type: 'kafka', brokers: kafka.brokers, format: 'debezium', debezium: { topicPrefix: 'dbz' }, createTopics: { partitions: 1, replicationFactor: 1 } },
        { type: 'kafka', brokers: kafka.brokers, format: 'debezium', debezium: { topicPrefix: 'quiet', tombstonesOnDelete: false }, createTopics: { partitions: 1, replicationFactor: 1 } },
        { type: 'redis', url: redis.url, format: 'debezium', debezium: { topicPrefix: 'dbz' } },
      ],
    });
    await runScenarioSteps(url);
    const client = redis.client();
    const entries = await collect(client, 'dbz', 'walrelay on Redis');
    client.disconnect();
    const isLast = (record: KafkaRecord) => record.topic.endsWith('.public.dbz_full') && record.key === '{"id":99}';
    const topics = [...new Set(entries.map((entry) => entry.stream))];
    const records = await consume(kafka.brokers, topics, (received) => received.some(isLast) && received.length >= entries.length);

    // Same records, stream by stream, as Debezium Server's Redis layout ("default" = null).
    for (const stream of new Set(entries.map((entry) => entry.stream))) {
      const fromRedis = entries.filter((entry) => entry.stream === stream).map((entry) => [entry.key, withoutProcessingTime(entry.value)]);
      const fromKafka = records.filter((record) => record.topic === stream).map((record) => [record.key ?? 'default', record.value === null ? 'default' : withoutProcessingTime(record.value)]);
      assert.deepEqual(fromKafka, fromRedis, `topic ${stream}`);
    }

    // What a Debezium consumer does with them: apply c/u/r, d and tombstones, t.
    const tables = new Map<string, Map<string, any>>();
    for (const record of records.filter((r) => r.topic !== 'dbz.message')) {
      const rows = tables.get(record.topic) ?? new Map();
      tables.set(record.topic, rows);
      if (record.value === null) { rows.delete(record.key!); continue; }
      const event = JSON.parse(record.value);
      if (event.op === 't') rows.clear();
      else if (event.op === 'd') rows.delete(record.key!);
      else rows.set(record.key!, event.after);
    }
    const full = [...tables.get('dbz.public.dbz_full')!.values()].map((row) => [row.id, row.name]);
    const database = new pg.Client({ connectionString: url });
    await database.connect();
    const expectedFull = (await database.query('SELECT id, name FROM dbz_full ORDER BY id')).rows.map((row) => [row.id, row.name]);
    await database.end();
    assert.deepEqual(full.sort((a, b) => a[0] - b[0]), expectedFull);
    assert.equal(tables.get('dbz.public.dbz_pk')!.size, 0, 'dbz_pk was truncated');
    const messages = records.filter((r) => r.topic === 'dbz.message').map((r) => [r.key, Buffer.from(JSON.parse(r.value!).message.content, 'base64').toString()]);
    assert.deepEqual(messages, [['{"prefix":"walrelay-test"}', 'transactional hello'], ['{"prefix":"walrelay-test"}', 'outside']]);

    const quiet = await consume(kafka.brokers, topics.map((topic) => topic.replace(/^dbz\./, 'quiet.')), (received) => received.some(isLast) && received.length >= records.filter((record) => record.value !== null).length);
    assert.equal(quiet.filter((record) => record.value === null).length, 0, 'tombstonesOnDelete: false sends no tombstones');
    assert.equal(quiet.length, records.filter((record) => record.value !== null).length);
  } finally {
    await relay?.stop().catch(() => undefined);
    await Promise.all([redis.stop(), kafka.stop(), postgres.stop()]);
  }
});
