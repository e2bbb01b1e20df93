// The live comparison (npm run test:debezium): the real Debezium Server
// 3.6.1 and walrelay on the same database and the same DML, each writing
// Debezium's Redis layout to a Redis of its own; every entry is compared
// byte for byte after removing only the envelope's processing time and
// source.version. With --update-golden (or WALRELAY_UPDATE_GOLDEN=1) it also
// writes test/golden/debezium/<mode>.json, which the fast suite
// (test/debezium-golden.test.ts) compares walrelay against without a JVM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostgres, type PgFlavor } from '../harness/postgres.js';
import { startRedis } from '../harness/redis.js';
import { startRelayInProcess } from '../harness/relay.js';
import { DEBEZIUM_HOME, debeziumAvailable, startDebezium } from '../harness/debezium.js';
import { SCENARIO_TABLES } from '../harness/debezium-scenario.js';
import { COMPARED_SETTINGS, collect, comparisonDatabase, createScenarioDatabase, differences, normalize, runScenarioSteps, symbolizePositions } from './compare.js';

const UPDATE_GOLDEN = process.argv.includes('--update-golden') || process.env.WALRELAY_UPDATE_GOLDEN === '1';
export const GOLDEN_DIR = join(DEBEZIUM_HOME, '..', '..', '..', 'test', 'golden', 'debezium');
const FLAVOR = (process.env.WALRELAY_PG ?? 'pg15') as PgFlavor;
const PREFIX = 'dbz';

for (const { name: mode, decimalHandlingMode, timePrecisionMode } of COMPARED_SETTINGS) {
  test(`walrelay's format: debezium equals Debezium Server 3.6.1 byte for byte (${mode}, ${FLAVOR})`, { timeout: 600_000 }, async () => {
    assert.ok(debeziumAvailable(), `Debezium Server is not in ${DEBEZIUM_HOME}: run scripts/debezium-server.sh (Java 21+ needed)`);
    const postgres = await startPostgres(FLAVOR);
    const debeziumRedis = await startRedis();
    const walrelayRedis = await startRedis();
    let relay: Awaited<ReturnType<typeof startRelayInProcess>> | undefined;
    let debezium: Awaited<ReturnType<typeof startDebezium>> | undefined;
    try {
      const url = await createScenarioDatabase(postgres.url, comparisonDatabase(mode));
      debezium = await startDebezium({ postgresUrl: url, redisUrl: debeziumRedis.url, topicPrefix: PREFIX, slot: 'debezium', publication: 'debezium', tables: SCENARIO_TABLES, decimalHandlingMode, timePrecisionMode });
      relay = await startRelayInProcess({
        source: { url, slot: 'walrelay', publication: 'walrelay', tables: SCENARIO_TABLES },
        sinks: [{ type: 'redis', url: walrelayRedis.url, format: 'debezium', debezium: { topicPrefix: PREFIX, decimalHandlingMode, timePrecisionMode } }],
      });
      await runScenarioSteps(url);
      const debeziumClient = debeziumRedis.client();
      const walrelayClient = walrelayRedis.client();
      try {
        const expected = normalize(await collect(debeziumClient, PREFIX, 'Debezium Server'), PREFIX);
        const actual = normalize(await collect(walrelayClient, PREFIX, 'walrelay'), PREFIX);
        if (UPDATE_GOLDEN) {
          mkdirSync(GOLDEN_DIR, { recursive: true });
          writeFileSync(join(GOLDEN_DIR, `${mode}.json`), JSON.stringify(symbolizePositions(expected), null, 1) + '\n');
        }
        const found = differences(expected, actual);
        assert.deepEqual(found, [], `walrelay differs from Debezium Server in ${found.length} places:\n${found.join('\n')}`);
        assert.ok(expected.length >= 20, `Debezium wrote ${expected.length} entries; the scenario makes more`);
      } finally {
        debeziumClient.disconnect();
        walrelayClient.disconnect();
      }
    } finally {
      await relay?.stop().catch(() => undefined);
      await debezium?.stop();
      await walrelayRedis.stop();
      await debeziumRedis.stop();
      await postgres.stop();
    }
  });
}
