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
// pg_terminate_backend.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startTcpProxy, type TcpProxy } from './harness/answer-proxy.js';
import { freePort } from './harness/ports.js';
import { setupAndSpawnRelay, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { confirmedFlush, waitUntilConfirmed } from './harness/slot.js';

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
});
