// Temporary: capture Debezium's rendering of the scenario.
import { writeFileSync } from 'node:fs';
import { startPostgres } from '../harness/postgres.js';
import { startRedis } from '../harness/redis.js';
import { startDebezium } from '../harness/debezium.js';
import { SCENARIO_SETUP, SCENARIO_STEPS, SCENARIO_TABLES } from '../harness/debezium-scenario.js';
import { readDebeziumStreams } from './capture.js';

const pgdb = await startPostgres('pg15');
const redis = await startRedis();
try {
  for (const sql of SCENARIO_SETUP) await pgdb.query(sql);
  const t0 = Date.now();
  const dbz = await startDebezium({ postgresUrl: pgdb.url, redisUrl: redis.url, topicPrefix: 'dbz', slot: 'dbz', publication: 'dbz', tables: SCENARIO_TABLES, decimalHandlingMode: (process.env.MODE as any) ?? 'precise' });
  console.log('started in', Date.now() - t0);
  try {
    for (const step of SCENARIO_STEPS) {
      await pgdb.query('BEGIN');
      for (const sql of step) await pgdb.query(sql);
      await pgdb.query('COMMIT');
    }
    const client = redis.client();
    await new Promise((r) => setTimeout(r, 15000));
    const keys = await client.keys('*');
    console.log(keys);
    const entries = await readDebeziumStreams(client, keys.filter((k) => k.startsWith('dbz')));
    writeFileSync(process.env.OUT ?? '/tmp/dbz-out.json', JSON.stringify(entries, null, 1));
    client.disconnect();
  } finally {
    writeFileSync('/tmp/dbz-log.txt', dbz.logs());
    await dbz.stop();
  }
} finally {
  await redis.stop();
  await pgdb.stop();
}
