// walrelay's format: debezium against golden files that the live comparison
// with the real Debezium Server 3.6.1 wrote (npm run test:debezium --
// --update-golden regenerates them): real PostgreSQL, real walrelay, real
// Redis, Debezium's Redis layout read as a Debezium Redis consumer reads it
// (field = key JSON, value = value JSON, "default" for a tombstone); no JVM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PG_FLAVORS, startPostgres } from './harness/postgres.js';
import { startRedis } from './harness/redis.js';
import { startRelayInProcess } from './harness/relay.js';
import { SCENARIO_TABLES } from './harness/debezium-scenario.js';
import { COMPARED_SETTINGS, collect, comparisonDatabase, createScenarioDatabase, differences, normalize, runScenarioSteps, symbolizePositions } from './debezium/compare.js';
import type { StreamEntry } from './debezium/capture.js';

const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'golden', 'debezium');

for (const flavor of PG_FLAVORS) {
  test(`format: debezium matches Debezium Server's golden output, every compared setting (${flavor})`, { timeout: 180_000 }, async () => {
    const postgres = await startPostgres(flavor);
    const redis = await Promise.all(COMPARED_SETTINGS.map(() => startRedis()));
    let relay: Awaited<ReturnType<typeof startRelayInProcess>> | undefined;
    try {
      const url = await createScenarioDatabase(postgres.url, 'golden');
      relay = await startRelayInProcess({
        source: { url, tables: SCENARIO_TABLES },
        sinks: [
          ...COMPARED_SETTINGS.map(({ decimalHandlingMode, timePrecisionMode }, i) => ({ type: 'redis', url: redis[i].url, format: 'debezium', debezium: { topicPrefix: 'dbz', decimalHandlingMode, timePrecisionMode } })),
          // The first setting again through the exactly-once script (database 1): the same layout, tombstones included.
          { type: 'redis', name: 'once', url: `${redis[0].url}/1`, exactlyOnce: true, format: 'debezium', debezium: { topicPrefix: 'dbz', decimalHandlingMode: COMPARED_SETTINGS[0].decimalHandlingMode, timePrecisionMode: COMPARED_SETTINGS[0].timePrecisionMode } },
        ],
      });
      await runScenarioSteps(url);
      for (const [i, { name: mode }] of COMPARED_SETTINGS.entries()) {
        const client = redis[i].client();
        try {
          const actual = symbolizePositions(normalize(await collect(client, 'dbz', `walrelay (${mode})`), 'dbz'));
          // The golden files were written against the live comparison's database.
          const expected = (JSON.parse(readFileSync(join(GOLDEN, `${mode}.json`), 'utf8')) as StreamEntry[])
            .map((entry) => ({ ...entry, value: entry.value.replace(`"db":"${comparisonDatabase(mode)}"`, '"db":"golden"') }));
          const found = differences(expected, actual);
          assert.deepEqual(found, [], `walrelay (${mode}) differs from Debezium Server's golden output in ${found.length} places:\n${found.join('\n')}`);
          if (i === 0) {
            const exactlyOnce = client.duplicate({ db: 1 });
            try {
              const once = symbolizePositions(normalize(await collect(exactlyOnce, 'dbz', `walrelay exactly-once (${mode})`), 'dbz'));
              const onceFound = differences(expected, once);
              assert.deepEqual(onceFound, [], `walrelay exactly-once (${mode}) differs from Debezium Server's golden output in ${onceFound.length} places:\n${onceFound.join('\n')}`);
            } finally {
              exactlyOnce.disconnect();
            }
          }
        } finally {
          client.disconnect();
        }
      }
    } finally {
      await relay?.stop().catch(() => undefined);
      await Promise.all(redis.map((server) => server.stop()));
      await postgres.stop();
    }
  });
}
