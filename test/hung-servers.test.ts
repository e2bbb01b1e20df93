// Servers that hang instead of dying: a Redis and a Kafka broker stopped with
// SIGSTOP (sockets open, no replies), and a network partition between the
// relay and PostgreSQL (a proxy that stops forwarding without closing).
// Each must be noticed within its configured timeout (short here: 3 s),
// logged with the key to tune, reported by /readyz, and survived: every
// committed row arrives, and nothing is confirmed that was not acknowledged.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { startTcpProxy, type TcpProxy } from './harness/tcp-proxy.js';
import { writeConfig, runCli, spawnRelay, waitForStreamLength, type RelayProcess } from './harness/relay.js';
import { startRowWriter, committedIds, assertEveryRowDelivered } from './harness/row-writer.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';
import { confirmedFlush } from './harness/slot.js';

const TIMEOUT_SECONDS = 3;
/** A hung server must be reported well before the 30 s default would have: the test's timeout, with room for a loaded machine. */
const NOTICE_WITHIN_MS = TIMEOUT_SECONDS * 5_000;

async function readiness(port: number): Promise<{ status: number; reasons: string[] }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  const body = await response.json() as { reasons: string[] };
  return { status: response.status, reasons: body.reasons };
}

/** Warn lines (pino level 40) whose text matches. */
function warnings(relay: RelayProcess, pattern: RegExp): string[] {
  return relay.logs().split('\n').filter((line) => line.includes('"level":40') && pattern.test(line));
}

async function startRelayOn(sourceUrl: string, sinks: unknown[]): Promise<{ relay: RelayProcess; httpPort: number }> {
  const httpPort = await freePort();
  const configFile = writeConfig({
    source: { url: sourceUrl, timeoutSeconds: TIMEOUT_SECONDS },
    sinks,
    http: { port: httpPort },
  });
  const setup = await runCli(['setup', '-c', configFile]);
  assert.equal(setup.code, 0, setup.stderr);
  const relay = spawnRelay(configFile);
  await relay.waitForLog(/"msg":"streaming"/);
  return { relay, httpPort };
}

describe('hung servers are noticed, reported and survived', () => {
  let pg15: TestPostgres;
  let pg18: TestPostgres;
  let redis: TestRedis;
  let kafka: TestKafka;
  let client: Redis;
  let proxy: TcpProxy | null = null;
  const relays: RelayProcess[] = [];

  before(async () => {
    [pg15, pg18, redis, kafka] = await Promise.all([
      startPostgres('pg15', { synchronous_commit: 'on' }),
      startPostgres('pg18', { synchronous_commit: 'on' }),
      startRedis(),
      startKafka(),
    ]);
    client = redis.client();
  });

  after(async () => {
    redis?.thaw();
    kafka?.thaw();
    for (const relay of relays) relay.signal('SIGKILL');
    client?.disconnect();
    await proxy?.close();
    await Promise.all([pg15?.stop(), pg18?.stop(), redis?.stop(), kafka?.stop()]);
  });

  it('notices a Redis stopped with SIGSTOP, idle or busy, confirms nothing while it hangs, and delivers everything after SIGCONT (PostgreSQL 15)', async () => {
    await pg15.query('CREATE TABLE hung_redis (id int PRIMARY KEY, note text)');
    const { relay, httpPort } = await startRelayOn(pg15.url, [{ type: 'redis', url: redis.url, timeoutSeconds: TIMEOUT_SECONDS }]);
    relays.push(relay);
    const timeoutWarnings = () => warnings(relay, /sinks\[0\]\.timeoutSeconds/);
    assert.equal((await readiness(httpPort)).status, 200);

    // Idle: nothing to write, yet a hung Redis must not look ready.
    redis.freeze();
    try {
      await relay.waitForLog(/"level":40[^\n]*sinks\[0\]\.timeoutSeconds/, NOTICE_WITHIN_MS);
      console.log(`# ${timeoutWarnings()[0]}`);
      assert.match(timeoutWarnings()[0], new RegExp(`127\\.0\\.0\\.1:${redis.port}`), 'the warning names the server');
      const state = await readiness(httpPort);
      assert.equal(state.status, 503);
      assert.match(state.reasons.join('; '), /redis#0.*did not answer/);
    } finally {
      redis.thaw();
    }
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 after SIGCONT', timeoutMs: 30_000 });

    // Busy: a writer commits all along.
    const writer = startRowWriter(pg15.url, 'hung_redis');
    await waitForStreamLength(client, 'walrelay:public.hung_redis', 200);
    const warningsBefore = timeoutWarnings().length;
    let confirmedAtNotice: bigint;
    redis.freeze();
    try {
      await waitFor(() => timeoutWarnings().length > warningsBefore, { what: 'a warning about the hung Redis', timeoutMs: NOTICE_WITHIN_MS });
      assert.equal((await readiness(httpPort)).status, 503);
      // From the first timeout on, nothing Redis said can still arrive: the slot must stay where it is.
      confirmedAtNotice = await confirmedFlush(pg15);
      await waitFor(() => timeoutWarnings().length > warningsBefore + 1, { what: 'the retry to time out as well', timeoutMs: NOTICE_WITHIN_MS * 2 });
      assert.equal(await confirmedFlush(pg15), confirmedAtNotice, 'the slot was confirmed while Redis acknowledged nothing');
    } finally {
      redis.thaw();
    }
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 after SIGCONT', timeoutMs: 60_000 });
    await waitFor(async () => await confirmedFlush(pg15) > confirmedAtNotice, { what: 'the slot to advance after SIGCONT', timeoutMs: 60_000 });
    const acknowledged = await writer.stop();
    const committed = await committedIds((sql) => pg15.query(sql), 'hung_redis');
    for (const id of acknowledged) assert.ok(committed.has(id), `acknowledged row ${id} is not in the table`);
    const { events, duplicates } = await assertEveryRowDelivered(client, 'walrelay:public.hung_redis', committed);
    console.log(`# ${committed.size} rows, ${events} events (${duplicates} identical re-deliveries)`);
    // Idle for longer than the timeout, then paused by backpressure: the healthy replication connection was never taken for dead.
    assert.deepEqual(warnings(relay, /REPLICATION_TIMEOUT|replication interrupted/), []);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });

  it('notices a network partition to PostgreSQL (no packets, no close) and reconnects from the confirmed LSN (PostgreSQL 18)', async () => {
    await pg18.query('CREATE TABLE partitioned_away (id int PRIMARY KEY, note text)');
    proxy = await startTcpProxy(pg18.port);
    const viaProxy = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`;
    const { relay, httpPort } = await startRelayOn(viaProxy, [{ type: 'redis', url: redis.url, stream: 'partition:{table}' }]);
    relays.push(relay);
    const writer = startRowWriter(pg18.url, 'partitioned_away');
    await waitForStreamLength(client, 'partition:partitioned_away', 200);

    proxy.pause();
    try {
      await relay.waitForLog(/"level":40[^\n]*REPLICATION_TIMEOUT[^\n]*source\.timeoutSeconds/, NOTICE_WITHIN_MS);
      console.log(`# ${warnings(relay, /REPLICATION_TIMEOUT/)[0]}`);
      const state = await readiness(httpPort);
      assert.equal(state.status, 503);
      assert.match(state.reasons.join('; '), /replication is not streaming.*REPLICATION_TIMEOUT/);
      // Reconnecting while the partition lasts must not hang either: each attempt gives up and is retried.
      await waitFor(() => warnings(relay, /replication interrupted/).length >= 2, { what: 'a second reconnect attempt to fail during the partition', timeoutMs: NOTICE_WITHIN_MS * 2 });
    } finally {
      proxy.resume();
    }
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 after the partition healed', timeoutMs: 60_000 });
    const acknowledged = await writer.stop();
    const committed = await committedIds((sql) => pg18.query(sql), 'partitioned_away');
    for (const id of acknowledged) assert.ok(committed.has(id), `acknowledged row ${id} is not in the table`);
    const { events, duplicates } = await assertEveryRowDelivered(client, 'partition:partitioned_away', committed);
    console.log(`# ${committed.size} rows, ${events} events (${duplicates} identical re-deliveries)`);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
    await proxy.close();
    proxy = null;
  });

  it('notices a Kafka broker stopped with SIGSTOP after its configured timeout and delivers everything after SIGCONT (PostgreSQL 18)', async () => {
    await pg18.query('CREATE TABLE hung_kafka (id int PRIMARY KEY, note text)');
    const { relay, httpPort } = await startRelayOn(pg18.url, [{
      type: 'kafka', brokers: kafka.brokers, topic: 'hung.{table}', timeoutSeconds: TIMEOUT_SECONDS,
      tables: ['public.hung_kafka'], createTopics: { partitions: 1, replicationFactor: 1 },
    }]);
    relays.push(relay);
    const writer = startRowWriter(pg18.url, 'hung_kafka');
    await readTopic(kafka.brokers, 'hung.hung_kafka', (rows) => rows.ids.size >= 200);

    kafka.freeze();
    let confirmedAtNotice: bigint;
    try {
      await relay.waitForLog(/"level":40[^\n]*sinks\[0\]\.timeoutSeconds/, NOTICE_WITHIN_MS);
      console.log(`# ${warnings(relay, /sinks\[0\]\.timeoutSeconds/)[0]}`);
      const state = await readiness(httpPort);
      assert.equal(state.status, 503);
      assert.match(state.reasons.join('; '), /kafka#0.*hung or unreachable/);
      confirmedAtNotice = await confirmedFlush(pg18);
    } finally {
      kafka.thaw();
    }
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 after SIGCONT', timeoutMs: 90_000 });
    await waitFor(async () => await confirmedFlush(pg18) > confirmedAtNotice, { what: 'the slot to advance after SIGCONT', timeoutMs: 60_000 });
    await writer.stop();
    const committed = await committedIds((sql) => pg18.query(sql), 'hung_kafka');
    const rows = await readTopic(kafka.brokers, 'hung.hung_kafka', (seen) => [...committed].every((id) => seen.ids.has(id)));
    assert.deepEqual(rows.mismatches, [], 'a row was delivered twice with different events');
    for (const id of rows.ids) assert.ok(committed.has(id), `row ${id} was delivered but is not in the table`);
    console.log(`# ${committed.size} rows, ${rows.records} records in Kafka`);
    assert.deepEqual(warnings(relay, /REPLICATION_TIMEOUT|replication interrupted/), []);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });
});

interface TopicRows {
  ids: Set<number>;
  /** Rows that came twice with different values. */
  mismatches: number[];
  records: number;
}

/** Reads a topic from the beginning until `enough` holds (a fresh consumer each time: the broker may have been stopped since). */
async function readTopic(brokers: string[], topic: string, enough: (rows: TopicRows) => boolean): Promise<TopicRows> {
  const kafka = new Kafka({ brokers, clientId: 'walrelay-test', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await waitFor(async () => (await admin.listTopics()).includes(topic), { what: `topic ${topic}`, timeoutMs: 60_000 });
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `hung-${Date.now()}-${Math.random()}` });
  const byRow = new Map<number, string>();
  const rows: TopicRows = { ids: new Set(), mismatches: [], records: 0 };
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const value = message.value!.toString();
        const id = JSON.parse(value).new.id as number;
        const seen = byRow.get(id);
        if (seen !== undefined && seen !== value) rows.mismatches.push(id);
        byRow.set(id, value);
        rows.ids.add(id);
        rows.records++;
      },
    });
    await waitFor(() => enough(rows), { what: `the expected rows in ${topic} (${rows.ids.size} so far)`, timeoutMs: 90_000 });
  } finally {
    await consumer.disconnect();
  }
  return rows;
}
