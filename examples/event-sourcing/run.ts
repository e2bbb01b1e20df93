// The event-sourcing example, end to end with one command
// (`npm run example:event-sourcing`): an embedded PostgreSQL 18, a Redis
// (redis-server from PATH, or REDIS_URL), walrelay in process, the bank
// application writing events, a balance projection fed from Redis Streams,
// and a blue-green rebuild of that projection into a new stream while the
// application keeps writing, then the switch-over.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import pino from 'pino';
import { Redis } from 'ioredis';
import { parseConfig } from '../../config/load.js';
import { setupReplication } from '../../relay/setup/setup.js';
import { startRelay } from '../../relay/ops/daemon.js';
import { backfillTables } from '../../relay/backfill/backfill.js';
import { freePort, startDemoPostgres } from '../../relay/ops/demo-postgres.js';
import { SCHEMA, balancesInDatabase, runTraffic } from './bank.js';
import { BalanceProjection } from './projection.js';

const LIVE = 'bank:public.events';
const REBUILT = 'bank-v2:public.events';

export async function runExample(say: (line: string) => void): Promise<void> {
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    // The demo's embedded PostgreSQL 18: its own process group, stopped and removed by cleanup.
    const database = await startDemoPostgres(await freePort(), pino({ level: 'silent' }));
    cleanup.unshift(() => database.stop());
    const databaseUrl = database.url;
    const redisUrl = process.env.REDIS_URL ?? await startRedisServer(cleanup);
    say(`PostgreSQL at ${databaseUrl.replace(/:[^:@/]+@/, ':***@')}, Redis at ${redisUrl}`);
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    pool.on('error', () => undefined);
    cleanup.unshift(() => pool.end());
    await pool.query(SCHEMA);

    const kafka = process.env.KAFKA_BROKERS?.split(',');
    const config = parseConfig({
      source: { url: databaseUrl, slot: 'bank', publication: 'bank', tables: ['public.events', 'public.outbox'] },
      outbox: [{ table: 'public.outbox' }], // → stream / topic outbox.event.account, Debezium-style
      sinks: [
        { type: 'redis', name: 'events', url: redisUrl, stream: 'bank:{schema}.{table}' },
        ...(kafka ? [{ type: 'kafka', name: 'kafka', brokers: kafka, topic: 'bank.{schema}.{table}', createTopics: { partitions: 3, replicationFactor: 1 } }] : []),
      ],
      log: { level: 'warn' },
    }, {});
    const logger = pino({ level: 'warn' }, pino.destination(2));
    await setupReplication(config, logger, () => undefined);
    const relay = await startRelay(config, logger);
    cleanup.unshift(() => relay.stop());
    say(`walrelay streaming: events → Redis stream ${LIVE}, outbox → outbox.event.account${kafka ? ', and the same to Kafka' : ''}`);

    const redis = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 });
    cleanup.unshift(async () => redis.disconnect());
    let writing = true;
    const traffic = runTraffic(pool, () => writing);

    // Projection v1, live from the start.
    const v1 = new BalanceProjection(redis);
    await until(async () => { await v1.catchUp(LIVE); return v1.applied >= 200; }, 'projection v1 to apply 200 events');
    say(`projection v1 applied ${v1.applied} events`);

    // Blue-green rebuild: note where the live stream is, re-emit the current rows into a new stream of the same sink.
    const [[noted] = ['0']] = await redis.xrevrange(LIVE, '+', '-', 'COUNT', 1);
    let rows = 0;
    await backfillTables(config, ['public.events'], {
      chunkRows: 100,
      target: { sink: 'events', stream: 'bank-v2:{schema}.{table}' },
      say: (line) => { const done = /(\d+) rows, done/.exec(line); if (done) rows = Number(done[1]); },
    });
    say(`rebuild: backfill --sink events --stream-template bank-v2:{schema}.{table} re-emitted ${rows} rows while the application kept writing`);
    await until(async () => (await redis.xlen(REBUILT)) >= rows, `the ${rows} read events in ${REBUILT}`);

    // Projection v2: the rebuilt stream, then the live stream from the noted position.
    const v2 = new BalanceProjection(redis);
    await v2.catchUp(REBUILT);
    await v2.catchUp(LIVE, noted);
    say(`projection v2 built from ${REBUILT} and ${LIVE} after ${noted}`);

    writing = false;
    const appended = await traffic;
    const truth = await balancesInDatabase(pool);
    await until(async () => {
      await Promise.all([v1.catchUp(LIVE), v2.catchUp(LIVE)]);
      return same(v1.snapshot(), truth) && same(v2.snapshot(), truth);
    }, 'both projections to match the database');
    await until(async () => (await redis.xlen('outbox.event.account')) >= appended, `${appended} domain events on outbox.event.account`);
    say(`${appended} events appended; v1 and v2 both match the database (${Object.keys(truth).length} accounts); ${appended} domain events on outbox.event.account`);

    // The switch-over: readers follow balances:current.
    await v2.publish('balances:v2');
    await redis.set('balances:current', 'balances:v2');
    say('switched: balances:current → balances:v2');
  } finally {
    for (const step of cleanup) await step().catch(() => undefined);
  }
}

function same(a: Record<string, number>, b: Record<string, number>): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function startRedisServer(cleanup: (() => Promise<unknown>)[]): Promise<string> {
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => child.on('error', () => reject(new Error('redis-server not found: install Redis, or set REDIS_URL'))));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  cleanup.push(async () => { child.kill('SIGTERM'); await exited; });
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined); // refused until the server listens
  await Promise.race([failed, until(async () => probe.connect().then(() => true, () => false), 'redis-server', 10_000)]);
  probe.disconnect();
  return `redis://127.0.0.1:${port}`;
}


if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runExample((line) => console.log(line)).then(
    () => process.exit(0),
    (error: Error) => { console.error(`example failed: ${error.message}`); process.exit(1); },
  );
}
