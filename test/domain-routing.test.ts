// Outbox routing and messages routed by prefix, on a real Kafka broker and
// Redis: Debezium-compatible domain events (topic, key, value, id and type
// headers), nothing for outbox updates and deletes, message content parsed
// when it is JSON.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { readStream, waitForStreamLength, setupAndSpawnRelay, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';

interface Received {
  topic: string;
  key: string | null;
  value: unknown;
  headers: Record<string, string>;
}

/** Reads topics from the beginning until `expected` records arrived, or until `expected` says so. */
async function consume(brokers: string[], topics: string[], expected: number | ((received: Received[]) => boolean)): Promise<Received[]> {
  const enough = typeof expected === 'number' ? (received: Received[]) => received.length >= expected : expected;
  const kafka = new Kafka({ brokers, clientId: 'walrelay-test', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await waitFor(async () => {
    const existing = new Set(await admin.listTopics());
    return topics.every((topic) => existing.has(topic));
  }, { what: `topics ${topics.join(', ')}`, timeoutMs: 60_000 });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `test-${Date.now()}-${Math.random()}` });
  const received: Received[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }: { topic: string; message: KafkaMessage }) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
        received.push({ topic, key: message.key?.toString() ?? null, value: JSON.parse(message.value!.toString()), headers });
      },
    });
    await waitFor(() => enough(received), { what: `${typeof expected === 'number' ? expected : 'the expected'} records on ${topics.join(', ')}`, timeoutMs: 90_000 });
  } finally {
    await consumer.disconnect();
  }
  return received;
}

describe('outbox and message routing (PostgreSQL 15, Kafka, Redis)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let kafka: TestKafka;
  let client: Redis;
  let relay: RelayProcess;

  before(async () => {
    [pgServer, redis, kafka] = await Promise.all([startPostgres('pg15'), startRedis(), startKafka()]);
    client = redis.client();
    await pgServer.query(`
      CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb);
      CREATE TABLE shop_outbox (event_id bigint PRIMARY KEY, kind text, agg text, name text, body text, created timestamptz);
      CREATE TABLE orders (id int PRIMARY KEY, status text);`);
    relay = await setupAndSpawnRelay({
      source: { url: pgServer.url, tables: ['public.outbox', 'public.shop_outbox', 'public.orders'] },
      outbox: [
        { table: 'public.outbox' },
        { table: 'public.shop_outbox', columns: { id: 'event_id', aggregatetype: 'kind', aggregateid: 'agg', type: 'name', payload: 'body', timestamp: 'created' }, destination: 'shop.{aggregatetype}.{name}' },
      ],
      messages: [{ prefix: 'billing', destination: 'domain.{prefix}' }],
      sinks: [
        { type: 'kafka', brokers: kafka.brokers, createTopics: { partitions: 1, replicationFactor: 1 }, transactionEvents: true },
        { type: 'redis', url: redis.url },
        { type: 'redis', name: 'once', url: `${redis.url}/1`, exactlyOnce: true }, // the same entries through the exactly-once script
      ],
    });
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop(), kafka?.stop()]);
  });

  it('turns outbox inserts into domain events, and outbox updates and deletes into nothing', async () => {
    // The application writes its change and its event in one transaction, and clears the outbox row right away.
    await pgServer.query(`
      BEGIN;
      INSERT INTO orders VALUES (42, 'placed');
      INSERT INTO outbox VALUES ('4d47e190-0402-4048-bc2c-89dd54343cdc', 'order', '42', 'OrderPlaced', '{"id": 42, "lineItems": [{"item": "book", "quantity": 2}]}');
      DELETE FROM outbox WHERE id = '4d47e190-0402-4048-bc2c-89dd54343cdc';
      COMMIT;
      INSERT INTO outbox VALUES ('9c4b0a54-5d6e-4e3b-8f53-0b9b4d2a7c10', 'customer', 'c-7', 'CustomerRenamed', '{"name": "Ann"}');
      UPDATE outbox SET type = 'Changed' WHERE aggregateid = 'c-7';
      INSERT INTO shop_outbox VALUES (1, 'cart', 'cart-1', 'ItemAdded', '{"sku": "A1"}', '2026-11-27 10:00:00+00'), (2, 'cart', 'cart-1', 'Note', 'not json', '2026-11-27 10:00:01+00');
      UPDATE orders SET status = 'paid' WHERE id = 42;`);

    const records = await consume(kafka.brokers, ['outbox.event.order', 'outbox.event.customer', 'shop.cart.ItemAdded', 'shop.cart.Note'], 4);
    const order = records.find((record) => record.topic === 'outbox.event.order')!;
    assert.equal(order.key, '"42"', 'the key is the aggregateid (JSON text, as Debezium\'s JSON converter writes it)');
    assert.deepEqual(order.value, { id: 42, lineItems: [{ item: 'book', quantity: 2 }] }, 'the value is the payload itself');
    assert.equal(order.headers.id, '4d47e190-0402-4048-bc2c-89dd54343cdc');
    assert.equal(order.headers.type, 'OrderPlaced');
    assert.match(order.headers['walrelay-id'], /^[0-9A-F]{16}-\d+/i);
    assert.match(order.headers['walrelay-lsn'], /^[0-9A-F]+\/[0-9A-F]+$/);
    const customer = records.filter((record) => record.topic === 'outbox.event.customer');
    assert.equal(customer.length, 1, 'the update of the outbox row produced nothing');
    assert.equal(customer[0].headers.type, 'CustomerRenamed');
    const item = records.find((record) => record.topic === 'shop.cart.ItemAdded')!;
    assert.deepEqual(item.value, { sku: 'A1' }, 'a text payload holding JSON is passed as is');
    assert.equal(item.key, '"cart-1"');
    assert.equal(item.headers.id, '1');
    assert.equal(Date.parse(item.headers.timestamp), Date.parse('2026-11-27T10:00:00Z'), `timestamp header ${item.headers.timestamp}`);
    const note = records.find((record) => record.topic === 'shop.cart.Note')!;
    assert.equal(note.value, 'not json');

    // Redis: the same domain events as stream entries (fields event, key, id, type, walrelay-id, walrelay-lsn).
    await waitForStreamLength(client, 'outbox.event.order', 1);
    const [[, fields]] = await client.xrange('outbox.event.order', '-', '+');
    const pairs: string[][] = [];
    for (let index = 0; index < fields.length; index += 2) pairs.push([fields[index], fields[index + 1]]);
    const entry = Object.fromEntries(pairs);
    assert.deepEqual(JSON.parse(entry.event), { id: 42, lineItems: [{ item: 'book', quantity: 2 }] });
    assert.equal(entry.key, '"42"');
    assert.equal(entry.id, '4d47e190-0402-4048-bc2c-89dd54343cdc');
    assert.equal(entry.type, 'OrderPlaced');
    assert.equal(entry['walrelay-id'], order.headers['walrelay-id'], 'the same id in every sink');
    const exactlyOnce = client.duplicate({ db: 1 });
    try {
      await waitForStreamLength(exactlyOnce, 'outbox.event.order', 1);
      const [[, onceFields]] = await exactlyOnce.xrange('outbox.event.order', '-', '+');
      assert.deepEqual(onceFields, fields, 'an exactly-once Redis sink writes the same domain entry');
    } finally {
      exactlyOnce.disconnect();
    }

    // The ordinary table's changes still flow; the outbox tables' raw changes do not.
    await waitForStreamLength(client, 'walrelay:public.orders', 2);
    assert.deepEqual((await readStream(client, 'walrelay:public.orders')).map((event) => event.op), ['insert', 'update']);
    assert.equal(await client.exists('walrelay:public.outbox'), 0);
    assert.equal(await client.exists('walrelay:public.shop_outbox'), 0);
    assert.equal(await client.xlen('outbox.event.customer'), 1);
  });

  it('routes transactional logical messages by prefix, parsing JSON content', async () => {
    await pgServer.query(`
      BEGIN;
      SELECT pg_logical_emit_message(true, 'billing', '{"invoice": 7, "total": "19.90"}');
      SELECT pg_logical_emit_message(true, 'billing', 'plain text');
      SELECT pg_logical_emit_message(true, 'audit', 'not routed');
      COMMIT;`);
    const records = await consume(kafka.brokers, ['domain.billing'], 2);
    assert.deepEqual(records.map((record) => record.value), [{ invoice: 7, total: '19.90' }, 'plain text']);
    assert.equal(records[0].headers.prefix, 'billing');
    assert.equal(records[0].key, null);
    assert.ok(records[0].headers['walrelay-id'] < records[1].headers['walrelay-id'], 'ids keep the transaction order');
    await waitForStreamLength(client, 'domain.billing', 2);
    const entries = await client.xrange('domain.billing', '-', '+');
    assert.deepEqual(JSON.parse(entries[0][1][1]), { invoice: 7, total: '19.90' });
    // A prefix without a route stays a plain message event on the message stream.
    await waitForStreamLength(client, 'walrelay:messages', 1);
    const [plain] = await readStream(client, 'walrelay:messages');
    assert.equal(plain.prefix, 'audit');
    assert.equal(plain.content, 'not routed');
  });

  it('brackets a transaction on Kafka with begin and commit counting its domain events and row changes', async () => {
    await pgServer.query(`
      BEGIN;
      INSERT INTO orders VALUES (7, 'placed');
      INSERT INTO orders VALUES (8, 'placed');
      INSERT INTO outbox VALUES ('0b8f3c1e-8a53-4c39-9d55-3a3bd0a0e111', 'order', '7', 'OrderPlaced', '{"id": 7}');
      COMMIT;`);
    const isOurs = (record: Received) => (record.value as { op?: string; tables?: Record<string, number> }).op === 'commit' && (record.value as { tables: Record<string, number> }).tables['public.orders'] === 2;
    const records = await consume(kafka.brokers, ['walrelay.messages'], (received) => received.some(isOurs));
    const commit = records.find(isOurs)!;
    const value = commit.value as { xid: number; eventCount: number; tables: Record<string, number>; commitLsn: string };
    assert.equal(value.eventCount, 3);
    assert.deepEqual(value.tables, { 'public.orders': 2, 'public.outbox': 1 });
    assert.equal(commit.headers['walrelay-op'], 'commit');
    const begin = records.find((record) => (record.value as { op?: string; xid?: number }).op === 'begin' && (record.value as { xid: number }).xid === value.xid)!;
    assert.equal((begin.value as { commitLsn: string }).commitLsn, value.commitLsn);
    assert.ok(begin.headers['walrelay-id'] < commit.headers['walrelay-id']);
  });
});
