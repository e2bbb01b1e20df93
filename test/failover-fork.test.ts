// A failover to an asynchronous standby whose WAL forked below walrelay's
// position (docs/failover.md, "A standby promoted behind walrelay").
//
// PostgreSQL 18 primary and standby as in failover.test.ts, but without
// synchronized_standby_slots (the setting that makes the primary hold walrelay
// back until the standby has the WAL), and with the standby's connection to
// the primary through a TCP proxy. The proxy is paused: the standby receives
// nothing more, while the primary commits rows that walrelay delivers and
// confirms. Then the primary is killed, the held-back stream dropped, and the
// standby promoted: its new timeline starts at the fork point, below walrelay's
// confirmed position. Rows committed on the new primary land in WAL between
// the fork point and walrelay's position.
//
// walrelay must resume from the new primary's slot (synchronized, so at or
// below the fork point), not from its own position: every row the new primary
// has must arrive. It logs TIMELINE_FORKED naming the fork point. The rows
// only the old primary had were delivered before the failover and cannot be
// taken back: the known consequence of promoting an asynchronous standby
// (checked here to be exactly those rows).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { startPrimaryAndStandby, type PgPair, type PgNode } from './harness/pg-pair.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, runCli, spawnRelay, readStream, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { parseLsn } from '../relay/lsn.js';

/** Commits rows `ids` one per transaction on `node`; returns the LSN after the last commit. */
async function insertRows(node: PgNode, ids: number[]): Promise<string> {
  const client = new pg.Client({ connectionString: node.url });
  await client.connect();
  try {
    for (const id of ids) await client.query('INSERT INTO items VALUES ($1, $2)', [id, `row ${id}`]);
    return (await client.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
  } finally {
    await client.end();
  }
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

describe('failover to a standby whose WAL forked below walrelay\'s position (no synchronized_standby_slots)', () => {
  let pair: PgPair;
  let redis: TestRedis;
  let client: Redis;
  let relay: RelayProcess | null = null;

  before(async () => {
    [pair, redis] = await Promise.all([startPrimaryAndStandby({ synchronizedStandbySlots: false, standbyViaProxy: true }), startRedis()]);
    client = redis.client();
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pair?.stop(), redis?.stop()]);
  });

  it('resumes from the new primary\'s slot: every row it has arrives, and TIMELINE_FORKED names the fork point', async () => {
    const { primary, standby, upstream } = pair;
    const hostA = `127.0.0.1:${primary.port}`;
    const hostB = `127.0.0.1:${standby.port}`;
    await primary.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
    const config = writeConfig({
      source: { url: `postgres://postgres@${hostA},${hostB}/postgres`, slot: 'relay_fork', publication: 'relay_fork', tables: ['public.items'], timeoutSeconds: 5 },
      sinks: [
        { type: 'redis', url: redis.url, stream: 'fork:{schema}.{table}', messageStream: 'fork:messages', name: 'redis' },
        // Printed only (see the report at the end): an exactly-once sink's checkpoint is an event id, which a fork reuses.
        { type: 'redis', url: redis.url, stream: 'eo:{schema}.{table}', messageStream: 'eo:messages', exactlyOnce: true, name: 'redis-eo' },
      ],
    });
    const setup = await runCli(['setup', '-c', config]);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /warning: synchronized_standby_slots is empty/);
    relay = spawnRelay(config);
    await relay.waitForLog(/"msg":"streaming"/);

    // Shared history: rows 1-100 on both servers, the failover slot synchronized to the standby.
    await insertRows(primary, range(1, 100));
    await waitFor(async () => {
      await primary.query('SELECT pg_log_standby_snapshot()');
      const [slot] = await standby.query(`SELECT synced, temporary FROM pg_replication_slots WHERE slot_name = 'relay_fork'`);
      return slot?.synced === true && slot.temporary === false && (await client.xlen('fork:public.items')) >= 100;
    }, { what: 'relay_fork synchronized to the standby and 100 rows delivered', timeoutMs: 60_000, intervalMs: 200 });
    await waitFor(async () => (await standby.query('SELECT count(*)::int AS n FROM items'))[0].n === 100, { what: 'the standby to replay rows 1-100' });

    // The standby hears nothing more; the primary commits rows 1001-1300, which walrelay delivers and confirms.
    upstream!.pause();
    const lastLsn = await insertRows(primary, range(1001, 300));
    await waitFor(async () => {
      const [slot] = await primary.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'relay_fork'`);
      return parseLsn(slot.lsn) >= parseLsn(lastLsn) && (await client.xlen('fork:public.items')) >= 400;
    }, { what: 'walrelay to deliver and confirm rows 1001-1300', timeoutMs: 30_000 });
    const [{ lsn: walrelayConfirmed }] = await primary.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'relay_fork'`);

    // The primary dies; what the proxy held back for the standby is dropped; the standby is promoted.
    await primary.kill9();
    upstream!.cut();
    upstream!.resume(); // the standby's reconnection attempts now fail at once (the primary is gone)
    await standby.promote();
    const [{ timeline }] = await standby.query('SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS timeline');
    assert.equal(timeline, '00000002');
    const [{ history }] = await standby.query(`SELECT pg_read_file('pg_wal/00000002.history') AS history`);
    const forkPoint = /^1\t([0-9A-F]+\/[0-9A-F]+)\t/m.exec(history)?.[1];
    assert.ok(forkPoint, `timeline 2's history: ${history}`);
    const onNewPrimary = new Set((await standby.query<{ id: number }>('SELECT id FROM items')).map((row) => row.id));
    const forkedAway = range(1001, 300).filter((id) => !onNewPrimary.has(id));
    assert.ok(parseLsn(forkPoint) < parseLsn(walrelayConfirmed), `the fork point ${forkPoint} is below walrelay's confirmed ${walrelayConfirmed}`);
    assert.ok(forkedAway.length > 0, 'the standby lacks some rows walrelay delivered (the scenario forked)');

    // Rows on the new primary, until its WAL is well past walrelay's old position: many land between fork and position.
    await relay.waitForLog(/"code":"SOURCE_SWITCHED"/, 30_000);
    let nextId = 5001;
    let newLsn = '0/0';
    while (parseLsn(newLsn) <= parseLsn(walrelayConfirmed)) {
      newLsn = await insertRows(standby, range(nextId, 20));
      nextId += 20;
    }
    newLsn = await insertRows(standby, range(nextId, 20));
    const lastId = nextId + 19;
    const rows = (await standby.query<{ id: number }>('SELECT id FROM items ORDER BY id')).map((row) => row.id);
    await waitFor(async () => (await readStream(client, 'fork:public.items')).some((event) => Number(event.key?.id) === lastId), { what: `row ${lastId} in Redis`, timeoutMs: 30_000 });
    await waitFor(async () => (await readStream(client, 'eo:public.items')).some((event) => Number(event.key?.id) === lastId), { what: `row ${lastId} in the exactly-once stream`, timeoutMs: 30_000 });

    const delivered = new Set((await readStream(client, 'fork:public.items')).map((event) => Number(event.key?.id)));
    const missing = rows.filter((id) => !delivered.has(id));
    const postPromotion = rows.filter((id) => id >= 5001);
    console.log(`# fork: timeline 2 forked at ${forkPoint}, walrelay had confirmed ${walrelayConfirmed}; ${postPromotion.length} rows written on the new primary (to ${newLsn}), ` +
      `${missing.length} of its rows missing in Redis; ${forkedAway.length} rows delivered from the old primary's lost timeline`);
    assert.equal(missing.length, 0, `every row of the new primary arrives (none skipped between the fork point and walrelay's position); missing: ${missing.slice(0, 5).join(', ')}…`);
    const extra = [...delivered].filter((id) => !onNewPrimary.has(id) && id < 5001).sort((a, b) => a - b);
    assert.deepEqual(extra, forkedAway, 'nothing else was delivered than the new primary\'s rows and the old primary\'s rows it lost (delivered before the failover)');
    assert.match(relay.logs(), new RegExp(`"code":"TIMELINE_FORKED"[^\\n]*"forkLsn":"${forkPoint.replace('/', '\\/')}"[^\\n]*"exactlyOnceSinks":\\["redis-eo"\\]`));
    console.log(`# fork: ${relay.logs().split('\n').find((line) => line.includes('"TIMELINE_FORKED"'))}`);
    assert.match(relay.logs(), new RegExp(`"code":"SOURCE_SWITCHED","from":"${hostA}","to":"${hostB}"`));

    const exactlyOnce = new Set((await readStream(client, 'eo:public.items')).map((event) => Number(event.key?.id)));
    console.log(`# fork: the exactly-once Redis sink lacks ${rows.filter((id) => !exactlyOnce.has(id)).length} of the new primary's rows`);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0, relay.logs());
  });
});
