// Nothing committed is lost across SIGTERM, kill -9, a sink that goes down,
// and adjacent commit records; re-deliveries carry the same id.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, spawnRelay, runCli, readStream, waitForStreamLength, type RelayProcess } from './harness/relay.js';
import type { ChangeEvent } from '../relay/route/event.js';
import { parseLsn } from '../relay/lsn.js';
import { waitFor } from './harness/wait.js';
import { confirmedFlush } from './harness/slot.js';

/** Every row id 1..count arrived; an id delivered twice came with the same event id and body. */
function assertExactlyOnceModuloRedelivery(events: ChangeEvent[], count: number): number {
  const byRow = new Map<number, string>();
  let duplicates = 0;
  for (const event of events) {
    const rowId = event.new!.id as number;
    const body = JSON.stringify(event);
    const seen = byRow.get(rowId);
    if (seen !== undefined) {
      duplicates++;
      assert.equal(body, seen, `row ${rowId} was delivered twice with different events`);
    }
    byRow.set(rowId, body);
  }
  const missing: number[] = [];
  for (let id = 1; id <= count; id++) if (!byRow.has(id)) missing.push(id);
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} committed rows never arrived`);
  console.log(`# ${events.length} events for ${count} rows (${duplicates} identical re-deliveries)`);
  return duplicates;
}

/** Per key, events arrive in commit order (ids sort in commit order). */
function assertCommitOrder(events: ChangeEvent[]): void {
  const firstSeen = new Map<string, number>();
  let previous = '';
  for (const event of events) {
    // A re-delivery starts over from the confirmed point, so order is checked over first appearances.
    if (firstSeen.has(event.id)) continue;
    firstSeen.set(event.id, 1);
    assert.ok(event.id > previous, `event ${event.id} arrived after ${previous}`);
    previous = event.id;
  }
}

describe('recovery (PostgreSQL 15, real processes and signals)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let configFile: string;
  let relay: RelayProcess | null = null;


  const startRelay = async (): Promise<RelayProcess> => {
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    return relay;
  };

  /** Inserts ids from..to in transactions of `perTx` rows, one connection, as fast as it can. */
  const write = async (table: string, from: number, to: number, perTx: number): Promise<void> => {
    const writer = new pg.Client({ connectionString: pgServer.url });
    await writer.connect();
    try {
      for (let start = from; start <= to; start += perTx) {
        const end = Math.min(to, start + perTx - 1);
        await writer.query(`INSERT INTO ${table} SELECT i, 'row ' || i FROM generate_series(${start}, ${end}) i`);
      }
    } finally {
      await writer.end();
    }
  };

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    client = redis.client();
    await pgServer.query(`
      CREATE TABLE adjacent (id int PRIMARY KEY, note text);
      CREATE TABLE term (id int PRIMARY KEY, note text);
      CREATE TABLE killed (id int PRIMARY KEY, note text);
      CREATE TABLE sinkdown (id int PRIMARY KEY, note text);`);
    configFile = writeConfig({
      source: { url: pgServer.url },
      sinks: [{ type: 'redis', url: redis.url }],
      pipeline: { batchEvents: 500 },
    });
    const setup = await runCli(['setup', '-c', configFile]);
    assert.equal(setup.code, 0, setup.stderr);
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('does not lose the second of two adjacent commits after kill -9 between them', async () => {
    await startRelay();
    let confirmedAtKill = 0n;
    const first = new pg.Client({ connectionString: pgServer.url });
    const second = new pg.Client({ connectionString: pgServer.url });
    await Promise.all([first.connect(), second.connect()]);
    try {
      // Both rows are written before either commits, so the two commit records follow each other in WAL.
      await first.query('BEGIN');
      await first.query(`INSERT INTO adjacent VALUES (1, 'first')`);
      await second.query('BEGIN');
      await second.query(`INSERT INTO adjacent VALUES (2, 'second')`);
      await first.query('COMMIT');
      await waitForStreamLength(client, 'walrelay:public.adjacent', 1);
      const [firstEvent] = await readStream(client, 'walrelay:public.adjacent');
      const deadline = Date.now() + 20_000;
      while ((await confirmedFlush(pgServer)) <= parseLsn(firstEvent.commitLsn!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const confirmed = await confirmedFlush(pgServer);
      assert.ok(confirmed > parseLsn(firstEvent.commitLsn!), 'the first commit was never confirmed');
      relay!.signal('SIGKILL');
      await relay!.exited;
      confirmedAtKill = await confirmedFlush(pgServer);
      await second.query('COMMIT');
    } finally {
      await Promise.all([first.end(), second.end()]);
    }
    await startRelay();
    await waitForStreamLength(client, 'walrelay:public.adjacent', 2);
    const events = await readStream(client, 'walrelay:public.adjacent');
    const secondEvent = events.find((event) => event.new!.id === 2)!;
    assert.ok(secondEvent, 'the second transaction was lost');
    // Confirming past the second commit's start (lsn + 1) is what would have skipped it.
    assert.ok(parseLsn(secondEvent.commitLsn!) >= confirmedAtKill, 'the slot was confirmed past the second commit');
    console.log(`# commit records adjacent: ${events[0].commitLsn} then ${secondEvent.commitLsn}`);
    relay!.signal('SIGTERM');
    assert.equal(await relay!.exited, 0);
  });

  it('resumes after SIGTERM mid-stream with every committed row and exits 0', async () => {
    await startRelay();
    const total = 20_000;
    const writing = write('term', 1, total, 50);
    await waitForStreamLength(client, 'walrelay:public.term', 2_000);
    relay!.signal('SIGTERM');
    assert.equal(await relay!.exited, 0, relay!.logs().slice(-2000));
    assert.match(relay!.logs(), /stopped streaming/);
    // The slot holds the end of everything delivered before the stop, so nothing is sent twice.
    const delivered = await readStream(client, 'walrelay:public.term');
    const lastCommit = delivered.reduce((max, event) => { const commit = parseLsn(event.commitLsn!); return commit > max ? commit : max; }, 0n);
    assert.ok(await confirmedFlush(pgServer) > lastCommit, `the slot stayed behind the last delivered commit ${delivered.at(-1)!.commitLsn}`);
    await startRelay();
    await writing;
    await waitForStreamLength(client, 'walrelay:public.term', total);
    const events = await readStream(client, 'walrelay:public.term');
    // A clean stop finishes the open transaction and confirms it: nothing is sent twice.
    assert.equal(assertExactlyOnceModuloRedelivery(events, total), 0);
    assertCommitOrder(events);
    relay!.signal('SIGTERM');
    assert.equal(await relay!.exited, 0);
  });

  it('loses nothing when killed with SIGKILL mid-stream, re-delivering with identical ids', async () => {
    await startRelay();
    const total = 20_000;
    const writing = write('killed', 1, total, 50);
    await waitForStreamLength(client, 'walrelay:public.killed', 3_000);
    relay!.signal('SIGKILL');
    await relay!.exited;
    await startRelay();
    await writing;
    await waitForStreamLength(client, 'walrelay:public.killed', total);
    relay!.signal('SIGTERM');
    assert.equal(await relay!.exited, 0);
    const events = await readStream(client, 'walrelay:public.killed');
    assertExactlyOnceModuloRedelivery(events, total);
    assertCommitOrder(events);
  });

  it('runs a second instance as a hot standby that takes over the slot when the first is killed', async () => {
    await startRelay();
    const primary = relay!;
    const standby = spawnRelay(configFile);
    await standby.waitForLog(/SLOT_IN_USE/);
    await write('term', 20_001, 20_100, 50);
    await waitForStreamLength(client, 'walrelay:public.term', 20_100);
    primary.signal('SIGKILL');
    await primary.exited;
    await write('term', 20_101, 20_200, 50);
    relay = standby;
    await standby.waitForLog(/"msg":"streaming"/, 60_000);
    await waitFor(async () => (await readStream(client, 'walrelay:public.term')).some((event) => event.new!.id === 20_200), { what: 'the standby to deliver row 20200', timeoutMs: 60_000 });
    standby.signal('SIGTERM');
    assert.equal(await standby.exited, 0);
  });

  it('waits for a Redis that is down, without confirming, and delivers everything when it returns', async () => {
    await startRelay();
    await write('sinkdown', 1, 1_000, 100);
    await waitForStreamLength(client, 'walrelay:public.sinkdown', 1_000);
    // SHUTDOWN SAVE keeps the streams in dump.rdb, which the restarted server loads.
    await redis.shutdownSaving();
    await write('sinkdown', 1_001, 2_000, 100);
    await relay!.waitForLog(/sink delivery failed; retrying/);
    const confirmedWhileDown = await confirmedFlush(pgServer);
    await write('sinkdown', 2_001, 3_000, 100);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal(await confirmedFlush(pgServer), confirmedWhileDown, 'the LSN moved while the only sink was down');
    await redis.restart();
    client.disconnect();
    client = redis.client();
    await waitForStreamLength(client, 'walrelay:public.sinkdown', 3_000);
    relay!.signal('SIGTERM');
    assert.equal(await relay!.exited, 0);
    assertExactlyOnceModuloRedelivery(await readStream(client, 'walrelay:public.sinkdown'), 3_000);
  });
});
