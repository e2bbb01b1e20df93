// The live Kafka Connect comparison (npm run test:kafka-connect): the real
// Debezium PostgreSQL connector 3.6.1 in a real Kafka Connect worker
// (JsonConverter, schemas.enable=true) and walrelay (format: debezium,
// debezium.schemas: true) on the same database and DML, both writing to one
// Kafka under different topic names; every record's key and value compared
// byte for byte after removing only the payload's processing time and
// source.version. With --update-golden (or WALRELAY_UPDATE_GOLDEN=1) it also
// writes test/golden/kafka-connect/<mode>.json, which the fast suite
// (test/debezium-connect-golden.test.ts) compares walrelay against without a JVM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres, type PgFlavor } from '../harness/postgres.js';
import { startKafka } from '../harness/kafka.js';
import { startRelayInProcess } from '../harness/relay.js';
import { waitFor } from '../harness/wait.js';
import { connectAvailable, CONNECT_HOME, debeziumPostgresConnector, startConnect } from '../harness/kafka-connect.js';
import { SCENARIO_LAST_KEY, SCENARIO_LAST_STREAM_SUFFIX } from '../harness/debezium-scenario.js';
import { comparisonDatabase, databaseUrl, differences } from '../debezium/compare.js';
import { CONNECT_SETTINGS, CONNECT_SETUP, CONNECT_STEPS, CONNECT_TABLES, connectPrefix } from './scenario.js';
import { normalizeConnect, readTopics, symbolizeConnect } from './compare.js';
import type { StreamEntry } from '../debezium/capture.js';

const UPDATE_GOLDEN = process.argv.includes('--update-golden') || process.env.WALRELAY_UPDATE_GOLDEN === '1';
export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'golden', 'kafka-connect');
const FLAVOR = (process.env.WALRELAY_PG ?? 'pg15') as PgFlavor;
/** walrelay's topics: the same records under another name (the schema names keep the prefix). */
const WALRELAY_TOPICS = 'wr';



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

async function collectTopics(brokers: string[], prefix: string, what: string): Promise<StreamEntry[]> {
  let entries: StreamEntry[] = [];
  await waitFor(async () => {
    entries = await readTopics(brokers, prefix);
    return entries.some((entry) => entry.stream === SCENARIO_LAST_STREAM_SUFFIX && entry.key.endsWith(`"payload":${SCENARIO_LAST_KEY}}`));
  }, { what: `${what}: the scenario's last event`, timeoutMs: 180_000, intervalMs: 1000 });
  return entries;
}

test(`format: debezium with schemas equals Debezium's PostgreSQL connector in Kafka Connect byte for byte (${FLAVOR})`, { timeout: 1_200_000 }, async () => {
  assert.ok(connectAvailable(), `Kafka Connect is not in ${CONNECT_HOME}: run scripts/kafka-connect.sh`);
  const postgres = await startPostgres(FLAVOR);
  const kafka = await startKafka();
  let connect: Awaited<ReturnType<typeof startConnect>> | undefined;
  try {
    connect = await startConnect(kafka.brokers);
    const found: string[] = [];
    for (const [index, { name: mode, decimalHandlingMode, timePrecisionMode }] of CONNECT_SETTINGS.entries()) {
      const database = comparisonDatabase(mode);
      const admin = new pg.Client({ connectionString: postgres.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${database}`).finally(() => admin.end());
      const url = databaseUrl(postgres.url, database);
      await run(url, CONNECT_SETUP.map((sql) => [sql]));
      const prefix = connectPrefix(mode);
      await connect.addConnector(`debezium-${mode}`, debeziumPostgresConnector({ postgresUrl: url, topicPrefix: prefix, slot: `debezium_${index}`, publication: 'debezium', tables: CONNECT_TABLES, decimalHandlingMode, timePrecisionMode }));
      const relay = await startRelayInProcess({
        source: { url, slot: `walrelay_${index}`, publication: 'walrelay', tables: CONNECT_TABLES },
        sinks: [{
          type: 'kafka', brokers: kafka.brokers, format: 'debezium', createTopics: { partitions: 1, replicationFactor: 1 },
          topic: `${WALRELAY_TOPICS}_${prefix}.{schema}.{table}`, messageTopic: `${WALRELAY_TOPICS}_${prefix}.message`,
          debezium: { topicPrefix: prefix, decimalHandlingMode, timePrecisionMode, schemas: true },
        }],
      });
      try {
        await run(url, CONNECT_STEPS);
        const expected = normalizeConnect(await collectTopics(kafka.brokers, prefix, 'Kafka Connect'));
        if (process.env.WALRELAY_DUMP) writeFileSync(join(process.env.WALRELAY_DUMP, `${mode}-connect.json`), JSON.stringify(expected, null, 1));
        const actual = normalizeConnect(await collectTopics(kafka.brokers, `${WALRELAY_TOPICS}_${prefix}`, 'walrelay'));
        if (UPDATE_GOLDEN) {
          mkdirSync(GOLDEN_DIR, { recursive: true });
          writeFileSync(join(GOLDEN_DIR, `${mode}.json`), JSON.stringify(symbolizeConnect(expected), null, 1) + '\n');
        }
        if (process.env.WALRELAY_DUMP) writeFileSync(join(process.env.WALRELAY_DUMP, `${mode}.json`), JSON.stringify({ expected, actual }, null, 1));
        // Every setting is compared before failing: one live run shows every difference.
        const differs = differences(expected, actual);
        if (differs.length > 0) found.push(`walrelay (${mode}) differs from Kafka Connect in ${differs.length} places:`, ...differs.slice(0, 40));
        assert.ok(expected.length >= 30, `Kafka Connect wrote ${expected.length} records; the scenario makes more`);
      } finally {
        await relay.stop().catch(() => undefined);
        await connect.removeConnector(`debezium-${mode}`);
      }
    }
    assert.deepEqual(found, [], found.join('\n'));
  } catch (error) {
    if (connect) process.stderr.write(connect.logs().slice(-20_000));
    throw error;
  } finally {
    await connect?.stop();
    await kafka.stop();
    await postgres.stop();
  }
});
