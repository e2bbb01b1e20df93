// format: debezium with debezium.schemas: true against golden files that the
// live comparison with Debezium's PostgreSQL connector 3.6.1 in a Kafka
// Connect worker (JsonConverter, schemas.enable=true) wrote (npm run
// test:kafka-connect -- --update-golden regenerates them): real PostgreSQL,
// real walrelay, Redis in Debezium's layout (field = key, value = value,
// "default" for a tombstone), keys and values with their schemas byte for
// byte; no JVM. The scenario covers every mapped type, NOT NULL columns with
// and without defaults, a key-only delete, and a change of a table's shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PG_FLAVORS, startPostgres } from './harness/postgres.js';
import { startRedis } from './harness/redis.js';
import { startRelayInProcess } from './harness/relay.js';
import { comparisonDatabase, createScenarioDatabase, differences } from './debezium/compare.js';
import { SCENARIO_SETUP } from './harness/debezium-scenario.js';
import { CONNECT_SETTINGS, CONNECT_SETUP, CONNECT_STEPS, CONNECT_TABLES, connectPrefix } from './kafka-connect/scenario.js';
import { collectRedis, normalizeConnect, symbolizeConnect } from './kafka-connect/compare.js';
import type { StreamEntry } from './debezium/capture.js';
import pg from 'pg';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'golden', 'kafka-connect');

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

for (const flavor of PG_FLAVORS) {
  test(`debezium.schemas matches Kafka Connect's golden records (Debezium's connector, JsonConverter with schemas), every compared setting (${flavor})`, { timeout: 180_000 }, async () => {
    const postgres = await startPostgres(flavor);
    const redis = await startRedis();
    let relay: Awaited<ReturnType<typeof startRelayInProcess>> | undefined;
    try {
      const url = await createScenarioDatabase(postgres.url, 'golden');
      await run(url, CONNECT_SETUP.slice(SCENARIO_SETUP.length).map((sql) => [sql]));
      relay = await startRelayInProcess({
        source: { url, tables: CONNECT_TABLES },
        sinks: CONNECT_SETTINGS.map(({ name, decimalHandlingMode, timePrecisionMode }) => ({
          type: 'redis', url: redis.url, format: 'debezium', debezium: { topicPrefix: connectPrefix(name), decimalHandlingMode, timePrecisionMode, schemas: true },
        })),
      });
      await run(url, CONNECT_STEPS);
      const client = redis.client();
      try {
        for (const { name: mode } of CONNECT_SETTINGS) {
          const actual = symbolizeConnect(normalizeConnect(await collectRedis(client, connectPrefix(mode), `walrelay (${mode})`)));
          // The golden files were written against the live comparison's database.
          const expected = (JSON.parse(readFileSync(join(GOLDEN, `${mode}.json`), 'utf8')) as StreamEntry[])
            .map((entry) => ({ ...entry, value: entry.value.replace(`"db":"${comparisonDatabase(mode)}"`, '"db":"golden"') }));
          const found = differences(expected, actual);
          assert.deepEqual(found, [], `walrelay (${mode}) differs from Kafka Connect's golden records in ${found.length} places:\n${found.slice(0, 30).join('\n')}`);
          assert.ok(expected.length >= 40, `the golden file has ${expected.length} records; the scenario makes more`);
        }
      } finally {
        client.disconnect();
      }
    } finally {
      await relay?.stop().catch(() => undefined);
      await redis.stop();
      await postgres.stop();
    }
  });
}
