// A replication reconnect to the same server resumes after what walrelay's
// sinks acknowledged, not from the slot's confirmed position, which may lag
// behind it: confirmations are coalesced (one status update per interval
// under a live feed), and one can be lost with the connection. So a
// walsender that dies after its client delivered changes, but before their
// confirmation reached it, must not make the relay deliver them again.
//
// Real PostgreSQL 15, a real walrelay process whose replication connection
// passes through a proxy that holds back everything walrelay sends (the
// status updates never arrive), then the walsender ended with
// pg_terminate_backend. And the other side: when the same address leads to
// another server (a virtual IP or DNS name moved, a restored database),
// walrelay's position means nothing there and the slot's is used: starting
// at it would skip that server's transactions below it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startTcpProxy, type TcpProxy } from './harness/answer-proxy.js';
import { startTcpProxy as startSwitchableProxy } from './harness/tcp-proxy.js';
import { freePort } from './harness/ports.js';
import { runCli, setupAndSpawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { confirmedFlush, waitUntilConfirmed, walInsertLsn } from './harness/slot.js';

interface Line { op: string; new?: { id: number } }

function ids(relay: RelayProcess): number[] {
  return relay.stdout().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Line)
    .filter((event) => event.op === 'insert').map((event) => event.new!.id);
}

describe('replication reconnect to the same server', () => {
  let pg: TestPostgres;
  let proxy: TcpProxy;

  before(async () => {
    pg = await startPostgres('pg15');
    proxy = await startTcpProxy(await freePort(), pg.port);
    await pg.query('CREATE TABLE r (id int PRIMARY KEY)');
  });

  after(async () => {
    await proxy?.close();
    await pg?.stop();
  });

  it('delivers nothing again that the sinks acknowledged, though the slot never heard of it', async () => {
    const relay = await setupAndSpawnRelay({
      source: { url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, slot: 'resume', publication: 'resume', tables: ['public.r'] },
      sinks: [{ type: 'stdout' }],
    }, {}, { keepStdout: true });
    try {
      await pg.query('INSERT INTO r VALUES (1)');
      await waitFor(() => ids(relay).includes(1), { what: 'row 1 on stdout' });
      await waitUntilConfirmed(pg, 'resume');
      const slotBefore = await confirmedFlush(pg, 'resume');

      proxy.hold(); // walrelay's status updates stop reaching the walsender
      for (let id = 2; id <= 11; id++) await pg.query(`INSERT INTO r VALUES (${id})`);
      await waitFor(() => ids(relay).length === 11, { what: 'rows 2-11 on stdout' });
      await new Promise((resolve) => setTimeout(resolve, 500)); // acknowledged and confirmed by walrelay, the confirmations held
      assert.equal(await confirmedFlush(pg, 'resume'), slotBefore, 'the slot did not hear of rows 2-11');

      const streaming = () => relay.logs().match(/"msg":"streaming"/g)?.length ?? 0;
      await pg.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'walrelay'`);
      // Gone before the held bytes are let go: the status updates must not reach the old walsender on its way out.
      await waitFor(async () => (await pg.query(`SELECT 1 FROM pg_stat_replication WHERE application_name = 'walrelay'`)).length === 0, { what: 'the walsender to exit' });
      proxy.release();
      await waitFor(() => streaming() === 2, { what: 'the relay to stream again', timeoutMs: 60_000 });
      await pg.query('INSERT INTO r VALUES (12)');
      await waitFor(() => ids(relay).includes(12), { what: 'row 12 on stdout' });
      assert.deepEqual(ids(relay), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'every row once, in order');
      await waitUntilConfirmed(pg, 'resume');
    } finally {
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    }
  });

  it('another server behind the same address: resumes from that server\'s slot, not from walrelay\'s position', async () => {
    const other = await startPostgres('pg15');
    const moving = await startSwitchableProxy(pg.port);
    const config = (port: number) => ({
      source: { url: `postgres://postgres@127.0.0.1:${port}/postgres`, slot: 'moved', publication: 'moved', tables: ['public.m'] },
      sinks: [{ type: 'stdout' }],
    });
    let relay: RelayProcess | null = null;
    try {
      // walrelay's position on the first server lies far beyond the other server's WAL.
      await pg.query('CREATE TABLE m (id int PRIMARY KEY); CREATE TABLE filler (id int, pad text)');
      await other.query('CREATE TABLE m (id int PRIMARY KEY)');
      await pg.query(`INSERT INTO filler SELECT g, repeat('x', 1000) FROM generate_series(1, 40000) g`);
      assert.equal((await runCli(['setup', '-c', writeConfig(config(other.port))])).code, 0, 'the other server set up like the first');
      relay = await setupAndSpawnRelay(config(moving.port), {}, { keepStdout: true });
      const idsOf = (process: RelayProcess) => ids(process);
      await pg.query('INSERT INTO m VALUES (1)');
      await waitFor(() => idsOf(relay!).includes(1), { what: 'row 1 from the first server' });
      await waitUntilConfirmed(pg, 'moved');
      assert.ok(await confirmedFlush(pg, 'moved') > await walInsertLsn(other) + 0x1000000n, 'walrelay\'s position is beyond the other server\'s WAL');

      const streaming = () => relay!.logs().match(/"msg":"streaming"/g)?.length ?? 0;
      moving.retarget(other.port);
      moving.cut();
      await waitFor(() => streaming() === 2, { what: 'the relay to stream from the other server', timeoutMs: 60_000 });
      await other.query('INSERT INTO m VALUES (101)');
      await waitFor(() => idsOf(relay!).includes(101), { what: 'row 101 from the other server (skipped if walrelay started at its own position)', timeoutMs: 20_000 });
      assert.deepEqual(idsOf(relay), [1, 101]);
      assert.match(relay.logs(), /"code":"OWN_POSITION_UNPROVEN"[^\n]*another PostgreSQL system/, 'the operator is told why walrelay\'s position was not used');
    } finally {
      relay?.signal('SIGTERM');
      if (relay) assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
      await moving.close();
      await other.stop();
    }
  });
});
