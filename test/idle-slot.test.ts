// An idle relay must not pin WAL: while the published tables are quiet and
// another database, or an unpublished table of the same database, writes
// heavily, the slot's confirmed_flush_lsn and restart_lsn keep advancing.
// Also scrapes the slot-health metrics (walrelay_slot_retained_wal_bytes,
// walrelay_slot_wal_status) from /metrics of the running relay.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startRelayInProcess, waitForStreamLength } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import type { RunningRelay } from '../relay/ops/daemon.js';
import { parseLsn } from '../relay/lsn.js';
import { Metrics } from '../relay/ops/metrics.js';

describe('slot health metrics', () => {
  it('mark the current wal_status with 1, the others with 0, and count no retained WAL for a lost or missing slot', async () => {
    const metrics = new Metrics();
    metrics.observeSlotHealth('reserved', 1234);
    let text = await metrics.registry.metrics();
    assert.match(text, /walrelay_slot_retained_wal_bytes 1234\n/);
    assert.match(text, /walrelay_slot_wal_status\{status="reserved"\} 1\n/);
    metrics.observeSlotHealth('lost', null);
    text = await metrics.registry.metrics();
    assert.match(text, /walrelay_slot_wal_status\{status="lost"\} 1\n/);
    assert.match(text, /walrelay_slot_wal_status\{status="reserved"\} 0\n/);
    assert.match(text, /walrelay_slot_retained_wal_bytes 0\n/);
    metrics.observeSlotHealth(null, null);
    text = await metrics.registry.metrics();
    assert.match(text, /walrelay_slot_wal_status\{status="missing"\} 1\n/);
    assert.match(text, /walrelay_slot_wal_status\{status="lost"\} 0\n/);
  });
});

/** Writes about `megabytes` MB of WAL through `url` in a few transactions. */
async function writeHeavily(url: string, table: string, megabytes: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let i = 0; i < megabytes; i++) await client.query(`INSERT INTO ${table} SELECT g, repeat('x', 900) FROM generate_series(1, 1000) g`);
  } finally {
    await client.end();
  }
}

for (const flavor of PG_FLAVORS) {
  describe(`an idle relay does not pin WAL (${flavor})`, () => {
    let pgServer: TestPostgres;
    let redis: TestRedis;
    let client: Redis;
    let relay: RunningRelay;
    let metricsUrl: string;

    const slot = async () => (await pgServer.query(`SELECT restart_lsn::text AS restart, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = 'walrelay'`))[0];
    const currentLsn = async () => parseLsn((await pgServer.query('SELECT pg_current_wal_lsn()::text AS lsn'))[0].lsn);

    /** Waits until both slot positions are at or past `mark`, asking for a checkpoint (which logs the running transactions the slot's restart_lsn moves on) each time. */
    const slotReaches = (mark: bigint, what: string) => waitFor(async () => {
      await pgServer.query('CHECKPOINT');
      const row = await slot();
      return parseLsn(row.confirmed) >= mark && parseLsn(row.restart) >= mark;
    }, { what, timeoutMs: 90_000, intervalMs: 500 });

    before(async () => {
      [pgServer, redis] = await Promise.all([startPostgres(flavor), startRedis()]);
      client = redis.client();
      await pgServer.query(`CREATE TABLE orders (id int PRIMARY KEY, status text); CREATE TABLE scratch (id int, body text)`);
      await pgServer.query('CREATE DATABASE other');
      const otherUrl = pgServer.url.replace(/\/postgres$/, '/other');
      const other = new pg.Client({ connectionString: otherUrl });
      await other.connect();
      await other.query('CREATE TABLE busy (id int, body text)');
      await other.end();
      relay = await startRelayInProcess({
        source: { url: pgServer.url, tables: ['public.orders'], slotHealthIntervalSeconds: 1 },
        sinks: [{ type: 'redis', url: redis.url }],
        http: { port: 0 },
      });
      metricsUrl = `http://127.0.0.1:${relay.httpPort}/metrics`;
      await pgServer.query(`INSERT INTO orders VALUES (1, 'new')`);
      await waitForStreamLength(client, 'walrelay:public.orders', 1);
    });

    after(async () => {
      await relay?.stop();
      client?.disconnect();
      await Promise.all([pgServer?.stop(), redis?.stop()]);
    });

    it('advances the slot while another database writes heavily', async () => {
      await writeHeavily(pgServer.url.replace(/\/postgres$/, '/other'), 'busy', 24);
      await slotReaches(await currentLsn(), 'the slot to move past the other database\'s WAL');
    });

    it('advances the slot while the other database is still writing, not only once it is quiet', async () => {
      let writing = true;
      const writer = (async () => {
        while (writing) await writeHeavily(pgServer.url.replace(/\/postgres$/, '/other'), 'busy', 2);
      })();
      try {
        await writeHeavily(pgServer.url.replace(/\/postgres$/, '/other'), 'busy', 8);
        await slotReaches(await currentLsn(), 'the slot to move on during continuous writes');
      } finally {
        writing = false;
        await writer;
      }
    });

    it('advances the slot while an unpublished table of the same database writes heavily', async () => {
      await writeHeavily(pgServer.url, 'scratch', 24);
      await slotReaches(await currentLsn(), 'the slot to move past the unpublished table\'s WAL');
    });

    it('still delivers changes of the published table afterwards', async () => {
      await pgServer.query(`INSERT INTO orders VALUES (2, 'later')`);
      await waitForStreamLength(client, 'walrelay:public.orders', 2);
    });

    it('exports the retained WAL and the wal_status of the slot in /metrics', async () => {
      const scrape = async () => await (await fetch(metricsUrl)).text();
      await waitFor(async () => /walrelay_slot_wal_status\{status="reserved"\} 1\n/.test(await scrape()), { what: 'wal_status reserved in /metrics', timeoutMs: 20_000 });
      const text = await scrape();
      for (const status of ['extended', 'unreserved', 'lost']) assert.match(text, new RegExp(`walrelay_slot_wal_status\\{status="${status}"\\} 0\\n`));
      // Retained WAL follows the slot: while a long transaction holds restart_lsn back, it grows past what was written.
      const holder = new pg.Client({ connectionString: pgServer.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`INSERT INTO orders VALUES (3, 'held open')`);
        await writeHeavily(pgServer.url, 'scratch', 12);
        const retained = async () => Number(/walrelay_slot_retained_wal_bytes (\d+)/.exec(await scrape())?.[1] ?? -1);
        await waitFor(async () => (await retained()) > 8_000_000, { what: 'walrelay_slot_retained_wal_bytes above 8 MB while a transaction is open', timeoutMs: 30_000 });
        await holder.query('COMMIT');
        await waitForStreamLength(client, 'walrelay:public.orders', 3);
        await waitFor(async () => {
          await pgServer.query('CHECKPOINT');
          return (await retained()) < 4_000_000;
        }, { what: 'walrelay_slot_retained_wal_bytes to fall once the transaction committed', timeoutMs: 90_000, intervalMs: 500 });
      } finally {
        await holder.end();
      }
    });
  });
}
