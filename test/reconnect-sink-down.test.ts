// PostgreSQL's replication connection drops twice while the only sink
// (Redis) is down. Each new session receives again everything not yet
// confirmed; the batches the ended sessions had queued for the sink must be
// dropped, not kept: otherwise every reconnect adds another copy of the
// backlog in memory, and when the sink is back it gets the changes once per
// session, each key going back to its first version in between.
//
// Real PostgreSQL 18 (the walsender ended with pg_terminate_backend), a real
// walrelay process, a real Redis shut down and started again.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { readStream, runCli, spawnRelay, writeConfig, waitForStreamLength } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { waitUntilConfirmed } from './harness/slot.js';

const KEYS = 5;
const ROUNDS = 8;

describe('replication reconnects while the sink is down', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg18'), startRedis()]);
    await pgServer.query('CREATE TABLE k (id int PRIMARY KEY, v int NOT NULL)');
  });

  after(async () => {
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('two reconnects, then the sink back: every change once, no key going back, nothing queued per session', async () => {
    const configFile = writeConfig({
      source: { url: pgServer.url, slot: 'reconnect', publication: 'reconnect', tables: ['public.k'] },
      sinks: [{ type: 'redis', name: 'down', url: redis.url, stream: 'rc:{schema}.{table}', timeoutSeconds: 2 }],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    const relay = spawnRelay(configFile);
    const streamingLogs = () => relay.logs().match(/"msg":"streaming"/g)?.length ?? 0;
    try {
      await relay.waitForLog(/"msg":"streaming"/, 60_000);
      await pgServer.query(`INSERT INTO k SELECT g, 0 FROM generate_series(1, ${KEYS}) g`);
      const client = redis.client();
      await waitForStreamLength(client, 'rc:public.k', KEYS);
      client.disconnect();

      await redis.shutdownSaving();
      for (let round = 1; round <= ROUNDS; round++) await pgServer.query(`UPDATE k SET v = ${round}`);
      await relay.waitForLog(/sink delivery failed; retrying/, 30_000);

      for (let reconnect = 1; reconnect <= 2; reconnect++) {
        const before = streamingLogs();
        const ended = await pgServer.query(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_replication WHERE application_name = 'walrelay'`);
        assert.equal(ended.length, 1, 'one walsender serves walrelay');
        await waitFor(() => streamingLogs() > before, { what: `replication session ${reconnect + 1}`, timeoutMs: 60_000 });
        // The new session receives the backlog again (the sink is still down).
        await new Promise((resolve) => setTimeout(resolve, 500));
      }

      await redis.restart();
      await waitUntilConfirmed(pgServer, 'reconnect', { what: 'walrelay to confirm every change', timeoutMs: 60_000, intervalMs: 200 });
    } finally {
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    }

    const client = redis.client();
    const events = await readStream(client, 'rc:public.k');
    client.disconnect();
    const updates = events.filter((event) => event.op === 'update');
    const ids = updates.map((event) => event.id);
    assert.equal(new Set(ids).size, KEYS * ROUNDS, 'every change arrived');
    const last = new Map<number, number>();
    for (const event of updates) {
      const key = (event.key as { id: number }).id;
      const v = (event.new as { v: number }).v;
      assert.ok((last.get(key) ?? 0) < v, `key ${key} went back from v=${last.get(key)} to v=${v}: a dropped session's batch was delivered after a newer one`);
      last.set(key, v);
    }
    assert.equal(updates.length, KEYS * ROUNDS, `${updates.length - KEYS * ROUNDS} repeated: each ended session's queued batches were kept`);
  });
});
