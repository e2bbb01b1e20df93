// A 1,000,000-row single transaction reaches Redis while the relay's memory
// stays bounded: events stream out before the commit is seen, and a slow
// sink pauses the socket instead of filling memory.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, spawnRelay, runCli, waitForStreamLength, streamEvents, type RelayProcess } from './harness/relay.js';

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
  let relay: RelayProcess | undefined;
  let configFile: string;

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    client = redis.client();
    await pgServer.query('CREATE TABLE big (id int PRIMARY KEY, payload text); CREATE TABLE interrupted (id int PRIMARY KEY, payload text)');
    // A short drain timeout, so that a stop in the middle of a transaction gives up on reaching its commit.
    configFile = writeConfig({ source: { url: pgServer.url, tables: ['public.big', 'public.interrupted'] }, sinks: [{ type: 'redis', url: redis.url }], pipeline: { drainTimeoutSeconds: 1 } });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  /** Row id → the event ids it arrived with, in order. */
  async function readIds(stream: string): Promise<Map<number, string[]>> {
    const seen = new Map<number, string[]>();
    for await (const event of streamEvents(client, stream)) {
      const row = event.new!.id as number;
      seen.set(row, [...(seen.get(row) ?? []), event.id]);
    }
    return seen;
  }

  it('reaches Redis whole with the relay RSS bounded', async () => {
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    await pgServer.query(`INSERT INTO big SELECT i, md5(i::text) FROM generate_series(1, ${ROWS}) i`);
    await waitForStreamLength(client, 'walrelay:public.big', ROWS, 600_000);
    const peak = peakRssMb(relay.child.pid!);
    console.log(`# relay peak RSS through a ${ROWS}-row transaction: ${peak} MB`);
    assert.ok(peak < RSS_BOUND_MB, `peak RSS ${peak} MB`);

    assert.equal((await readIds('walrelay:public.big')).size, ROWS);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });

  it('stops cleanly in the middle of a large transaction and re-sends it whole after the restart', async () => {
    const rows = 300_000;
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    const writing = pgServer.query(`INSERT INTO interrupted SELECT i, md5(i::text) FROM generate_series(1, ${rows}) i`);
    writing.catch(() => undefined); // awaited below; a failure before that must not go unhandled
    await waitForStreamLength(client, 'walrelay:public.interrupted', 20_000, 120_000);
    const stopping = Date.now();
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    console.log(`# SIGTERM mid-transaction: exited after ${Date.now() - stopping} ms`);
    await writing;
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    const stream = 'walrelay:public.interrupted';
    const deliveredBeforeStop = await client.xlen(stream);
    // The stop gave up on the commit, so the restart sends the whole transaction again after what came before.
    await waitForStreamLength(client, stream, deliveredBeforeStop + rows, 300_000);
    console.log(`# ${deliveredBeforeStop} events before the stop, then the transaction's ${rows} again`);
    const seen = await readIds(stream);
    assert.equal(seen.size, rows);
    for (const [row, ids] of seen) assert.ok(ids.every((id) => id === ids[0]), `row ${row} arrived with different ids ${ids.join(', ')}`);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });
});
