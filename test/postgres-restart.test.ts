// PostgreSQL restarted under the relay (pg_ctl stop -m fast, and -m
// immediate: crash recovery, the slot back at its last checkpoint), and the
// relay's connections to it cut, while a writer keeps committing: the relay
// reconnects by itself and every committed row arrives (duplicates only as
// identical re-deliveries). On PostgreSQL 15 and 18; the relay reaches
// PostgreSQL through a TCP proxy, so that the network can be cut.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startTcpProxy, type TcpProxy } from './harness/tcp-proxy.js';
import { writeConfig, runCli, spawnRelay, waitForStreamLength, type RelayProcess } from './harness/relay.js';
import { startRowWriter, committedIds, assertEveryRowDelivered, type RowWriter } from './harness/row-writer.js';
import { waitFor } from './harness/wait.js';

describe('PostgreSQL restarted or cut off mid-stream', () => {
  let redis: TestRedis;
  let client: Redis;

  before(async () => {
    redis = await startRedis();
    client = redis.client();
  });

  after(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  for (const flavor of PG_FLAVORS) {
    describe(`PostgreSQL ${flavor.slice(2)}`, () => {
      let pgServer: TestPostgres;
      let proxy: TcpProxy;
      let relay: RelayProcess | null = null;
      let writer: RowWriter | null = null;
      const stream = `restart-${flavor}:rows`;

      /** Waits for the relay to stream again after a fault, and for new rows to arrive through it. */
      const waitForRecovery = async (sessionsBefore: number) => {
        await waitFor(() => streamingSessions() > sessionsBefore, { what: 'the relay to stream again', timeoutMs: 60_000 });
        const length = await client.xlen(stream);
        await waitForStreamLength(client, stream, length + 100);
      };
      const streamingSessions = () => (relay!.logs().match(/"msg":"streaming"/g) ?? []).length;

      before(async () => {
        // synchronous_commit on: a commit PostgreSQL acknowledged survives an immediate shutdown.
        pgServer = await startPostgres(flavor, { synchronous_commit: 'on' });
        proxy = await startTcpProxy(pgServer.port);
        await pgServer.query('CREATE TABLE rows (id int PRIMARY KEY, note text)');
        const configFile = writeConfig({
          source: { url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, timeoutSeconds: 3 },
          sinks: [{ type: 'redis', url: redis.url, stream: `restart-${flavor}:{table}`, timeoutSeconds: 3 }],
        });
        const setup = await runCli(['setup', '-c', configFile]);
        assert.equal(setup.code, 0, setup.stderr);
        relay = spawnRelay(configFile);
        await relay.waitForLog(/"msg":"streaming"/);
        writer = startRowWriter(pgServer.url, 'rows');
        await waitForStreamLength(client, stream, 200);
      });

      after(async () => {
        await writer?.stop();
        relay?.signal('SIGKILL');
        await proxy?.close();
        await pgServer?.stop();
      });

      it('reconnects after pg_ctl stop -m fast and start', async () => {
        const sessions = streamingSessions();
        await pgServer.restart('fast');
        await waitForRecovery(sessions);
        assert.match(relay!.logs(), /replication interrupted; resuming from the confirmed LSN/);
      });

      it('reconnects after pg_ctl stop -m immediate (crash recovery) and start', async () => {
        const sessions = streamingSessions();
        await pgServer.restart('immediate');
        await waitForRecovery(sessions);
      });

      it('reconnects after its network connections to PostgreSQL are cut', async () => {
        const sessions = streamingSessions();
        proxy.cut();
        await waitForRecovery(sessions);
      });

      it('lost no committed row through all of it, and the relay still stops cleanly', async () => {
        const acknowledged = await writer!.stop();
        writer = null;
        assert.ok(acknowledged.size > 0);
        const committed = await committedIds((sql) => pgServer.query(sql), 'rows');
        for (const id of acknowledged) assert.ok(committed.has(id), `acknowledged row ${id} is not in the table`);
        const { events, duplicates } = await assertEveryRowDelivered(client, stream, committed);
        console.log(`# ${flavor}: ${committed.size} rows, ${events} events (${duplicates} identical re-deliveries)`);
        relay!.signal('SIGTERM');
        assert.equal(await relay!.exited, 0);
        relay = null;
      });
    });
  }
});
