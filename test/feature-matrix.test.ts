// Features together, not alone: every durable sink (Redis, Kafka, webhook,
// NATS, RabbitMQ) × format (walrelay, debezium, cloudevents) × exactlyOnce
// on/off (Redis and Kafka) × transactionEvents and schemaEvents on/off, all
// as sinks of ONE walrelay (so "several sinks in
// one config" is part of every run), fed one workload: inserts, updates,
// updates that change the key, deletes, an ALTER TABLE in the middle, while
// walrelay is killed (-9) mid-stream and restarted.
//
// Each sink must then hold every change: exactly once with exactlyOnce (and
// in NATS, whose JetStream drops a repeated Nats-Msg-Id), otherwise at least once with any repeat identical to the first copy; and
// per key in commit order (first copies, for at-least-once). Transaction and
// schema events appear exactly when enabled.
//
// npm test runs a short form (a few combinations picked where features
// meet: exactly-once × transaction events, exactly-once × Debezium, ...);
// WALRELAY_MATRIX=full (npm run test:matrix) runs all 84.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { appendFileSync } from 'node:fs';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { consumeToEnd, type ConsumedRecord } from './harness/kafka-consume.js';
import { startNats, createStream, readStreamMessages, type TestNats } from './harness/nats.js';
import { openRabbit, RABBITMQ_URL, type QueueReader, type TestRabbit } from './harness/rabbitmq.js';
import { startWebhookReceiver, type WebhookReceiver } from './harness/webhook-receiver.js';
import { waitFor } from './harness/wait.js';
import { writeConfig, runCli, spawnRelay } from './harness/relay.js';
import { parseConfig } from '../config/load.js';
import { waitUntilConfirmed } from './harness/slot.js';

type SinkType = 'redis' | 'kafka' | 'webhook' | 'nats' | 'rabbitmq';
type Format = 'walrelay' | 'debezium' | 'cloudevents';

interface Combination {
  type: SinkType;
  format: Format;
  exactlyOnce: boolean;
  transactionEvents: boolean;
  schemaEvents: boolean;
}

const FULL = process.env.WALRELAY_MATRIX === 'full';

function allCombinations(): Combination[] {
  const list: Combination[] = [];
  for (const type of ['redis', 'kafka', 'webhook', 'nats', 'rabbitmq'] as const) {
    for (const format of ['walrelay', 'debezium', 'cloudevents'] as const) {
      for (const exactlyOnce of EXACTLY_ONCE_TYPES.includes(type) ? [false, true] : [false]) {
        for (const transactionEvents of [false, true]) {
          for (const schemaEvents of [false, true]) list.push({ type, format, exactlyOnce, transactionEvents, schemaEvents });
        }
      }
    }
  }
  return list;
}

/** The sinks with an exactlyOnce mode. */
const EXACTLY_ONCE_TYPES: SinkType[] = ['redis', 'kafka'];
/** JetStream keeps one copy per Nats-Msg-Id (within its duplicate window), so a NATS stream holds each event once. */
const storesOnce = (c: Combination) => c.exactlyOnce || c.type === 'nats';

/** Where features meet and defects were found (issue 24): the short form in npm test. */
const SHORT: Combination[] = [
  { type: 'redis', format: 'walrelay', exactlyOnce: true, transactionEvents: true, schemaEvents: true },
  { type: 'kafka', format: 'debezium', exactlyOnce: true, transactionEvents: false, schemaEvents: false },
  { type: 'kafka', format: 'walrelay', exactlyOnce: true, transactionEvents: true, schemaEvents: true },
  { type: 'redis', format: 'debezium', exactlyOnce: true, transactionEvents: true, schemaEvents: false },
  { type: 'redis', format: 'cloudevents', exactlyOnce: false, transactionEvents: false, schemaEvents: true },
  { type: 'kafka', format: 'cloudevents', exactlyOnce: false, transactionEvents: true, schemaEvents: false },
  { type: 'webhook', format: 'debezium', exactlyOnce: false, transactionEvents: true, schemaEvents: false },
  { type: 'nats', format: 'debezium', exactlyOnce: false, transactionEvents: false, schemaEvents: true },
  { type: 'rabbitmq', format: 'cloudevents', exactlyOnce: false, transactionEvents: true, schemaEvents: true },
];

const COMBINATIONS = FULL ? allCombinations() : SHORT;
const KILLS = FULL ? 3 : 2;

const label = (c: Combination) => `${c.type} ${c.format}${c.exactlyOnce ? ' exactly-once' : ' at-least-once'}${c.transactionEvents ? ' +transactions' : ''}${c.schemaEvents ? ' +schema' : ''}`;
const prefix = (index: number) => `mx${index}`;

/** The workload, one transaction per entry, and what it changes. */
interface Workload {
  transactions: string[][];
  inserts: number;
  updates: number;
  keyChanges: number;
  deletes: number;
}

function workload(): Workload {
  const transactions: string[][] = [];
  let inserts = 0, updates = 0, keyChanges = 0, deletes = 0;
  for (let t = 0; t < 20; t++) {
    transactions.push([1, 2, 3].map((i) => `INSERT INTO m (id, v, note) VALUES (${t * 3 + i}, 0, 'row ${t * 3 + i}')`));
    inserts += 3;
  }
  for (let id = 1; id <= 20; id++) { transactions.push([`UPDATE m SET v = v + 1 WHERE id = ${id}`]); updates++; }
  for (let id = 21; id <= 30; id++) { transactions.push([`UPDATE m SET id = ${id + 1000}, v = v + 1 WHERE id = ${id}`]); keyChanges++; }
  for (let id = 31; id <= 40; id++) { transactions.push([`DELETE FROM m WHERE id = ${id}`]); deletes++; }
  transactions.push([`ALTER TABLE m ADD COLUMN extra text DEFAULT 'x'`]);
  for (let id = 200; id < 210; id++) { transactions.push([`INSERT INTO m (id, v, note, extra) VALUES (${id}, 0, 'late', 'y${id}')`]); inserts++; }
  // Two changes of one key in one transaction, after the ALTER.
  for (let id = 41; id <= 50; id++) { transactions.push([`UPDATE m SET v = v + 1 WHERE id = ${id}`, `UPDATE m SET v = v + 1, extra = 'z' WHERE id = ${id}`]); updates += 2; }
  for (let id = 51; id <= 55; id++) { transactions.push([`UPDATE m SET id = ${id + 1000} WHERE id = ${id}`]); keyChanges++; }
  for (let id = 56; id <= 60; id++) { transactions.push([`DELETE FROM m WHERE id = ${id}`]); deletes++; }
  return { transactions, inserts, updates, keyChanges, deletes };
}

/** One stored record, as the checks see it. */
interface Item {
  /** The row key this record is about ('' for transaction and schema events). */
  key: string;
  /** Same for every copy of one record, different between records. */
  identity: string;
  /** The record's full content (processing time left out), which copies must share. */
  content: string;
  /** Commit order (walrelay id, or Debezium's source.lsn): non-decreasing per key. */
  order: string;
  /** A row change (counted), or a transaction / schema event (extra). */
  kind: 'change' | 'extra';
}

/**
 * Debezium's processing times differ between copies; so does source.sequence's first LSN (the commit before the
 * event) in a copy delivered again after a restart: walrelay knows it only from the commits it saw since it started
 * (docs/debezium.md). Everything else must not differ.
 */
function withoutProcessingTime(value: Record<string, unknown>): string {
  const { ts_ms: _ms, ts_us: _us, ts_ns: _ns, ...rest } = value;
  if (rest.source && typeof rest.source === 'object') {
    const { sequence, ...source } = rest.source as Record<string, unknown>;
    const lsn = typeof sequence === 'string' ? (JSON.parse(sequence) as unknown[])[1] : sequence;
    return JSON.stringify({ ...rest, source: { ...source, sequenceLsn: lsn } });
  }
  return JSON.stringify(rest);
}

function walrelayItem(json: string, event: { id: string; op: string; key?: unknown }): Item {
  const change = event.op === 'insert' || event.op === 'update' || event.op === 'delete';
  return { key: change ? JSON.stringify(event.key) : '', identity: event.id, content: json, order: event.id, kind: change ? 'change' : 'extra' };
}

/** The records of one topic or stream in order: [key, value (null: tombstone), walrelay-id header if any]. */
function items(format: Format, records: [string | null, string | null][]): Item[] {
  const out: Item[] = [];
  for (const [key, value] of records) {
    if (format === 'walrelay') { out.push(walrelayItem(value!, JSON.parse(value!))); continue; }
    if (format === 'cloudevents') { out.push(walrelayItem(value!, JSON.parse(value!).data)); continue; }
    if (value === null) {
      // A tombstone belongs to the delete just before it.
      const before = out[out.length - 1];
      assert.ok(before && before.key === key, `a tombstone for ${key} not right after its delete`);
      out.push({ key: key!, identity: `${before.identity}+tombstone`, content: `${before.content}+tombstone`, order: before.order, kind: 'change' });
      continue;
    }
    const envelope = JSON.parse(value);
    if (!['c', 'u', 'd', 'r'].includes(envelope.op)) {
      out.push({ key: '', identity: withoutProcessingTime(envelope), content: withoutProcessingTime(envelope), order: '', kind: 'extra' });
      continue;
    }
    // A webhook request carries no record key: the Debezium key (schemas off) is the row's id.
    const recordKey = key ?? JSON.stringify({ id: (envelope.after ?? envelope.before).id });
    const content = withoutProcessingTime(envelope);
    const lsn = String(envelope.source.lsn).padStart(20, '0');
    out.push({ key: recordKey, identity: `${recordKey} ${content}`, content, order: lsn, kind: 'change' });
  }
  return out;
}

describe(`feature matrix (${FULL ? 'full' : 'short form'}: ${COMBINATIONS.length} sinks in one walrelay, kill -9 ×${KILLS})`, () => {
  let pgServer: TestPostgres;
  let kafka: TestKafka;
  let redis: TestRedis;
  let nats: TestNats;
  let rabbit: TestRabbit;
  let exchange: string;
  /** The webhook receiver of each webhook sink (by index), NATS stream names, RabbitMQ queues. */
  const receivers = new Map<number, WebhookReceiver>();
  const queues = new Map<number, QueueReader>();
  let configFile: string;

  before(async () => {
    [pgServer, kafka, redis, nats, rabbit] = await Promise.all([startPostgres('pg18'), startKafka(), startRedis(), startNats(), openRabbit()]);
    await pgServer.query(`CREATE TABLE m (id int PRIMARY KEY, v int NOT NULL, note text)`);
    exchange = rabbit.unique('matrix');
    // The exchange exists before walrelay starts, so that the queues bound to it see every message.
    await rabbit.channel.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    const natsAdmin = await nats.client();
    try {
      for (const [index, c] of COMBINATIONS.entries()) {
        if (c.type === 'webhook') receivers.set(index, await startWebhookReceiver());
        if (c.type === 'nats') await createStream(natsAdmin, prefix(index).toUpperCase(), [`${prefix(index)}.>`]);
        if (c.type === 'rabbitmq') queues.set(index, await rabbit.bindQueue(exchange, `${prefix(index)}.#`));
      }
    } finally {
      await natsAdmin.close();
    }
    const destinations = (c: Combination, index: number) => {
      switch (c.type) {
        case 'redis': return { url: redis.url, stream: `${prefix(index)}.{schema}.{table}`, messageStream: `${prefix(index)}.messages` };
        case 'kafka': return { brokers: kafka.brokers, topic: `${prefix(index)}.{schema}.{table}`, messageTopic: `${prefix(index)}.messages`, createTopics: { partitions: 2, replicationFactor: 1 } };
        case 'webhook': return { url: receivers.get(index)!.url };
        case 'nats': return { servers: [nats.url], subject: `${prefix(index)}.{schema}.{table}`, messageSubject: `${prefix(index)}.messages` };
        case 'rabbitmq': return { url: RABBITMQ_URL, exchange, routingKey: `${prefix(index)}.{schema}.{table}`, messageRoutingKey: `${prefix(index)}.messages` };
      }
    };
    const sinks = COMBINATIONS.map((c, index) => ({
      type: c.type,
      name: prefix(index), // explicit and unique: exactly-once checkpoints are named after it
      format: c.format,
      ...(EXACTLY_ONCE_TYPES.includes(c.type) ? { exactlyOnce: c.exactlyOnce } : {}),
      transactionEvents: c.transactionEvents,
      schemaEvents: c.schemaEvents,
      ...(c.format === 'debezium' ? { debezium: { topicPrefix: prefix(index) } } : {}),
      ...destinations(c, index),
    }));
    const raw = { source: { url: pgServer.url, slot: 'matrix', publication: 'matrix', tables: ['public.m'] }, sinks };
    parseConfig(raw, {}); // every combination is a valid configuration
    configFile = writeConfig(raw);
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
  });

  after(async () => {
    await Promise.all([...receivers.values()].map((receiver) => receiver.close()));
    await rabbit?.cleanUp([exchange]);
    await Promise.all([pgServer?.stop(), kafka?.stop(), redis?.stop(), nats?.stop()]);
  });

  it('each change once (exactly-once) or at least once with identical repeats, in order per key, across kill -9', async (t) => {
    const plan = workload();
    let done = false;
    let writing: Promise<void> | null = null;
    /** The workload runs while walrelays stream and are killed: started once the first one streams. */
    const startWriting = () => (async () => {
      const client = new pg.Client({ connectionString: pgServer.url });
      await client.connect();
      try {
        for (const statements of plan.transactions) {
          await client.query(['BEGIN', ...statements, 'COMMIT'].join(';'));
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      } finally {
        done = true;
        await client.end();
      }
    })();

    const kills: string[] = [];
    try {
      for (let kill = 1; kill <= KILLS; kill++) {
        const relay = spawnRelay(configFile);
        await relay.waitForLog(/"msg":"streaming"/, 90_000);
        writing ??= startWriting();
        const delay = 300 + Math.floor(Math.random() * 1200);
        await new Promise((resolve) => setTimeout(resolve, delay));
        relay.signal('SIGKILL');
        await relay.exited;
        if (process.env.WALRELAY_TEST_LOGS) appendFileSync(process.env.WALRELAY_TEST_LOGS, `--- run ${kill} ---\n${relay.logs()}`);
        kills.push(`${delay} ms${done ? ' (workload already done)' : ' (workload under way)'}`);
      }
    } finally {
      await writing;
    }
    t.diagnostic(`kill -9 after streaming began + ${kills.join(', ')}`);

    const relay = spawnRelay(configFile);
    try {
      // Streaming first: when the killed runs already confirmed everything, the wait below ends at once, and a
      // SIGTERM before walrelay has installed its handlers would end it by the signal, not by its own drain.
      await relay.waitForLog(/"msg":"streaming"/, 90_000);
      await waitUntilConfirmed(pgServer, 'matrix', { what: 'walrelay to confirm every change', timeoutMs: 180_000, intervalMs: 250 });
    } finally {
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    }

    // Kafka: every topic in one read (read_committed: what an exactly-once consumer sees).
    const kafkaTopics = COMBINATIONS.flatMap((c, index) => (c.type !== 'kafka' ? [] : [`${prefix(index)}.public.m`, `${prefix(index)}.messages`, `${prefix(index)}.transaction`]));
    const admin = (await import('kafkajs')).Kafka;
    const existing = new Set(await (async () => {
      const client = new admin({ brokers: kafka.brokers, logLevel: 0 }).admin();
      await client.connect();
      try { return await client.listTopics(); } finally { await client.disconnect(); }
    })());
    const consumed = await consumeToEnd(kafka.brokers, kafkaTopics.filter((topic) => existing.has(topic)), { readCommitted: true });
    const byTopic = new Map<string, ConsumedRecord[]>();
    for (const record of consumed) byTopic.set(record.topic, [...(byTopic.get(record.topic) ?? []), record]);
    const redisClient = redis.client();
    // RabbitMQ: confirmed means queued; the test's consumers receive the last messages a moment later.
    const queued = () => [...queues.values()].reduce((sum, queue) => sum + queue.messages().length, 0);
    let lastCount = -1;
    await waitFor(() => { const now = queued(); const settled = now === lastCount; lastCount = now; return settled; }, { what: 'RabbitMQ queues to settle', timeoutMs: 30_000, intervalMs: 1000 });
    const natsClient = await nats.client();
    const natsMessages = new Map<number, Awaited<ReturnType<typeof readStreamMessages>>>();
    for (const [index, c] of COMBINATIONS.entries()) if (c.type === 'nats') natsMessages.set(index, await readStreamMessages(natsClient, prefix(index).toUpperCase()));
    await natsClient.close();

    const failures: string[] = [];
    const rowChanges = plan.inserts + plan.updates + plan.keyChanges + plan.deletes;
    try {
      for (const [index, c] of COMBINATIONS.entries()) {
        const name = `${prefix(index)} (${label(c)})`;
        /** The records of one destination, per partition for Kafka (order holds within a partition: keys stay in theirs). */
        const read = async (destination: string): Promise<[string | null, string | null][][]> => {
          const table = destination === `${prefix(index)}.public.m`;
          switch (c.type) {
            // One URL takes every event: the table's "destination" is all of them, in arrival order.
            case 'webhook': return table ? [receivers.get(index)!.requests.map((request) => [null, request.body])] : [];
            case 'nats': return [natsMessages.get(index)!.filter((message) => message.subject === destination).map((message) => [message.headers['walrelay-key'] ?? null, message.body])];
            case 'rabbitmq': return [queues.get(index)!.messages().filter((message) => message.fields.routingKey === destination)
              .map((message) => [(message.properties.headers?.['walrelay-key'] as string | undefined) ?? null, message.content.toString('utf8')])];
          }
          if (c.type === 'kafka') {
            const records = byTopic.get(destination) ?? [];
            const partitions = new Map<number, ConsumedRecord[]>();
            for (const record of records) partitions.set(record.partition, [...(partitions.get(record.partition) ?? []), record]);
            return [...partitions.values()].map((list) => list.sort((a, b) => Number(a.offset - b.offset)).map((record) => [record.key, record.tombstone ? null : record.value]));
          }
          const entries = await redisClient.xrange(destination, '-', '+');
          return [entries.map(([, fields]) => (c.format === 'debezium'
            ? [fields[0] === 'default' ? null : fields[0], fields[1] === 'default' ? null : fields[1]]
            : [null, fields[fields.indexOf('event') + 1]]))];
        };
        const table = (await read(`${prefix(index)}.public.m`)).map((list) => items(c.format, list));
        const extras = [
          ...(await read(`${prefix(index)}.messages`)).map((list) => items(c.format, list)),
          // Debezium's transaction topic (<topicPrefix>.transaction).
          ...(c.format === 'debezium' ? (await read(`${prefix(index)}.transaction`)).map((list) => items(c.format, list)) : []),
        ].flat().length + table.flat().filter((item) => item.kind === 'extra').length;

        const changes = table.flat().filter((item) => item.kind === 'change');
        const distinct = new Map<string, string>();
        for (const item of changes) {
          const first = distinct.get(item.identity);
          if (first === undefined) distinct.set(item.identity, item.content);
          else if (first !== item.content) failures.push(`${name}: a repeat of ${item.identity} differs from the first copy`);
        }
        // Debezium: a key change is a delete, its tombstone and a create; a delete has a tombstone (Kafka and Redis only:
        // tombstones matter to compacted topics, so webhooks, NATS and RabbitMQ do not get them).
        const tombstones = c.type === 'kafka' || c.type === 'redis' ? 1 : 0;
        const expected = c.format === 'debezium' ? plan.inserts + plan.updates + (2 + tombstones) * plan.keyChanges + (1 + tombstones) * plan.deletes : rowChanges;
        if (distinct.size !== expected) failures.push(`${name}: ${distinct.size} distinct changes, expected ${expected}`);
        if (storesOnce(c) && changes.length !== distinct.size) failures.push(`${name}: exactly-once, but ${changes.length - distinct.size} repeated`);
        if (storesOnce(c) && c.format !== 'debezium') {
          const ids = table.flat().map((item) => item.identity);
          if (new Set(ids).size !== ids.length) failures.push(`${name}: exactly-once, but a transaction or schema event repeated`);
        }
        for (const list of table) {
          const last = new Map<string, string>();
          const seen = new Set<string>();
          for (const item of list) {
            if (item.kind !== 'change' || seen.has(item.identity)) continue; // order of first copies
            seen.add(item.identity);
            const before = last.get(item.key);
            if (before !== undefined && item.order < before) { failures.push(`${name}: key ${item.key} went back from ${before} to ${item.order}`); break; }
            last.set(item.key, item.order);
          }
        }
        const wantExtras = c.transactionEvents || c.schemaEvents;
        if (wantExtras !== extras > 0) failures.push(`${name}: ${extras} transaction/schema events, expected ${wantExtras ? 'some' : 'none'}`);
        t.diagnostic(`${name}: ${changes.length} records, ${distinct.size} distinct, ${extras} transaction/schema events`);
      }
    } finally {
      redisClient.disconnect();
    }
    assert.deepEqual(failures, []);
  });
});
