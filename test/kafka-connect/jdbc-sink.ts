// The consumer that matters (npm run test:kafka-connect): walrelay →
// Kafka (format: debezium, debezium.schemas: true) → a Kafka Connect worker
// running Debezium's JDBC sink connector 3.6.0 (upsert, primary.key.mode=
// record_key, delete.enabled=true) → a second PostgreSQL database. After
// inserts, updates (one of them changing a primary key) and deletes over
// the common types, every target table equals its source table value for
// value. Nothing is stubbed: the sink connector is Debezium's own, reading
// walrelay's records through JsonConverter exactly as it would read the
// Debezium connector's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, type PgFlavor } from '../harness/postgres.js';
import { startKafka } from '../harness/kafka.js';
import { startRelayInProcess } from '../harness/relay.js';
import { waitFor } from '../harness/wait.js';
import { connectAvailable, CONNECT_HOME, startConnect } from '../harness/kafka-connect.js';
import { databaseUrl } from '../debezium/compare.js';

const FLAVOR = (process.env.WALRELAY_PG ?? 'pg15') as PgFlavor;

/** The same tables in source and target (the sink writes into existing tables: schema.evolution=none). */
const TABLES = [
  `CREATE TABLE items (
    id integer PRIMARY KEY,
    name text NOT NULL,
    label varchar(20),
    qty integer,
    big bigint NOT NULL DEFAULT 0,
    small smallint,
    price numeric(10,2),
    ratio double precision,
    score real,
    active boolean NOT NULL DEFAULT true,
    created timestamptz NOT NULL DEFAULT now(),
    happened timestamp,
    happened_ms timestamp(3),
    day date,
    at_time time,
    uid uuid,
    doc jsonb,
    data bytea
  )`,
  'CREATE TABLE tags (code text PRIMARY KEY, note text, weight numeric(6,3))',
  'CREATE TABLE pairs (a integer, b text, v text, PRIMARY KEY (a, b))',
];

/** One transaction per entry. */
const STEPS: string[][] = [
  [`INSERT INTO items VALUES
      (1, 'one', 'first', 10, 9223372036854775807, -32768, 12.34, 0.1, 1.5, true, '2026-11-22 12:00:00.123456+02', '2026-11-22 10:00:00.654321', '2026-11-22 10:00:00.5', '2026-11-22', '10:15:30.123456', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.50], "b": null}', '\\x00ff10'),
      (2, 'two', NULL, NULL, -1, NULL, -0.01, -1.25e-7, NULL, false, '1970-01-01 00:00:00+00', '1960-01-01 00:00:00', NULL, '1969-12-31', '00:00:00', NULL, '[]', ''),
      (3, 'három "quoted"', 'x', 0, 0, 0, 0, 0, 0, true, '2000-02-29 23:59:59.999999-05', NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
    "INSERT INTO items (id, name) VALUES (4, 'defaults')",
    "INSERT INTO tags VALUES ('red', 'warm', 1.5), ('blue', NULL, NULL), ('green', 'go', -99.999)",
    "INSERT INTO pairs VALUES (1, 'x', 'one-x'), (1, 'y', 'one-y'), (2, 'x', 'two-x')"],
  ["UPDATE items SET qty = qty + 1, price = 99.99, doc = '{\"changed\": true}', label = NULL WHERE id = 1",
    "UPDATE items SET name = 'two again', ratio = 1e300, happened = '2026-01-01 00:00:00' WHERE id = 2"],
  // A key change: a delete of the old key and a create of the new.
  ['UPDATE items SET id = 30 WHERE id = 3', "UPDATE tags SET code = 'crimson' WHERE code = 'red'", "UPDATE pairs SET b = 'z' WHERE a = 1 AND b = 'y'"],
  ['DELETE FROM items WHERE id = 2', "DELETE FROM tags WHERE code = 'blue'", 'DELETE FROM pairs WHERE a = 2'],
  ["INSERT INTO items (id, name, data) VALUES (2, 'two reborn', '\\xdeadbeef')", "UPDATE tags SET note = 'cold' WHERE code = 'green'"],
  ["UPDATE items SET uid = 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', at_time = '23:59:59.999999', day = '1900-01-01' WHERE id = 4"],
];

async function rows(url: string, table: string, order: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(`SELECT to_jsonb(t)::text AS row FROM ${table} t ORDER BY ${order}`)).rows.map((row) => row.row as string);
  } finally {
    await client.end();
  }
}

async function run(url: string, statements: string[][]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const step of statements) {
      await client.query('BEGIN');
      for (const sql of step) await client.query(sql);
      await client.query('COMMIT');
    }
  } finally {
    await client.end();
  }
}

test(`walrelay → Kafka → Debezium's JDBC sink connector replicates into another PostgreSQL, every value equal (${FLAVOR})`, { timeout: 900_000 }, async () => {
  assert.ok(connectAvailable(), `Kafka Connect is not in ${CONNECT_HOME}: run scripts/kafka-connect.sh`);
  const postgres = await startPostgres(FLAVOR);
  const kafka = await startKafka();
  let connect: Awaited<ReturnType<typeof startConnect>> | undefined;
  let relay: Awaited<ReturnType<typeof startRelayInProcess>> | undefined;
  try {
    await postgres.query('CREATE DATABASE source');
    await postgres.query('CREATE DATABASE target');
    const source = databaseUrl(postgres.url, 'source');
    const target = databaseUrl(postgres.url, 'target');
    await run(source, TABLES.map((sql) => [sql]));
    await run(target, TABLES.map((sql) => [sql]));
    relay = await startRelayInProcess({
      source: { url: source, tables: ['public.items', 'public.tags', 'public.pairs'] },
      sinks: [{ type: 'kafka', brokers: kafka.brokers, format: 'debezium', createTopics: { partitions: 1, replicationFactor: 1 }, debezium: { topicPrefix: 'src', schemas: true } }],
    });
    await run(source, STEPS);
    connect = await startConnect(kafka.brokers);
    const url = new URL(target);
    await connect.addConnector('jdbc-sink', {
      'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector',
      'tasks.max': '1',
      'topics.regex': 'src\\.public\\..*',
      'connection.url': `jdbc:postgresql://${url.hostname}:${url.port}/target`,
      'connection.username': 'postgres',
      'connection.password': 'unused',
      'insert.mode': 'upsert',
      'primary.key.mode': 'record_key',
      'delete.enabled': 'true',
      'schema.evolution': 'none',
      'collection.name.format': '${source.table}',
      'errors.tolerance': 'none',
    });
    const tables = [['items', 'id'], ['tags', 'code'], ['pairs', 'a, b']];
    const expected = await Promise.all(tables.map(([table, order]) => rows(source, table, order)));
    assert.equal(expected[0].length, 4, 'source items after the steps');
    let actual: string[][] = [];
    try {
      await waitFor(async () => {
        const state = await connect!.status('jdbc-sink') as { tasks?: { state: string; trace?: string }[] };
        const failed = state.tasks?.find((task) => task.state === 'FAILED');
        if (failed) throw new Error(`the JDBC sink task failed: ${failed.trace?.slice(0, 3000)}`);
        actual = await Promise.all(tables.map(([table, order]) => rows(target, table, order)));
        return JSON.stringify(actual) === JSON.stringify(expected);
      }, { what: 'target tables equal to the source tables', timeoutMs: 180_000, intervalMs: 1000 });
    } catch (error) {
      assert.deepEqual(actual, expected, `${(error as Error).message}\n${connect.logs().slice(-6000)}`);
      throw error;
    }
    for (const [i, [table]] of tables.entries()) assert.deepEqual(actual[i], expected[i], `${table} differs`);
  } finally {
    await relay?.stop().catch(() => undefined);
    await connect?.stop();
    await kafka.stop();
    await postgres.stop();
  }
});
