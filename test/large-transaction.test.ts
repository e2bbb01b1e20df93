// A 1,000,000-row single transaction reaches Redis while the relay's memory
// stays bounded: events stream out before the commit is seen, and a slow
// sink pauses the socket instead of filling memory.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, spawnRelay, runCli, waitForStreamLength, type RelayProcess } from './harness/relay.js';

const ROWS = 1_000_000;
/** Generous: the relay holds a few batches, not the transaction (bench/ tracks the real figure). */
const RSS_BOUND_MB = 400;

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]);
  return Math.round(kb / 1024);
}

describe('a 1,000,000-row transaction', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let relay: RelayProcess;

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    client = redis.client();
    await pgServer.query('CREATE TABLE big (id int PRIMARY KEY, payload text)');
    const configFile = writeConfig({ source: { url: pgServer.url, tables: ['public.big'] }, sinks: [{ type: 'redis', url: redis.url }] });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('reaches Redis whole with the relay RSS bounded', async () => {
    await pgServer.query(`INSERT INTO big SELECT i, md5(i::text) FROM generate_series(1, ${ROWS}) i`);
    await waitForStreamLength(client, 'walrelay:public.big', ROWS, 600_000);
    const peak = peakRssMb(relay.child.pid!);
    console.log(`# relay peak RSS through a ${ROWS}-row transaction: ${peak} MB`);
    assert.ok(peak < RSS_BOUND_MB, `peak RSS ${peak} MB`);

    const seen = new Set<number>();
    let start = '-';
    for (;;) {
      const entries = await client.xrange('walrelay:public.big', start, '+', 'COUNT', 50_000);
      for (const [, fields] of entries) seen.add(JSON.parse(fields[1]).new.id);
      if (entries.length < 50_000) break;
      start = '(' + entries[entries.length - 1][0];
    }
    assert.equal(seen.size, ROWS);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });
});
