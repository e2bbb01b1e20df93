// Zombie fencing on an exactly-once Redis sink. Two walrelays share one slot
// (the documented hot standby). The active one is paused (SIGSTOP) with a
// write on its way to Redis (held in a proxy); PostgreSQL drops its
// replication connection, the standby takes the slot and delivers the same
// changes. Then the paused one resumes and its late write reaches Redis: the
// checkpoint compare must refuse it, so every event id is in its stream once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startTcpProxy, type TcpProxy } from './harness/tcp-proxy.js';
import { freePort } from './harness/ports.js';
import { writeConfig, runCli, spawnRelay, readStream, waitForStreamLength, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';

const STREAM = 'walrelay:public.accounts';

describe('zombie fencing: exactly-once Redis sink, two walrelays on one slot, the active one paused', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let proxy: TcpProxy;
  let client: Redis;
  const relays: RelayProcess[] = [];

  before(async () => {
    // A stalled receiver loses its walsender after 2 s, so the standby can take the slot quickly.
    [pgServer, redis] = await Promise.all([startPostgres('pg18', { wal_sender_timeout: '2s' }), startRedis()]);
    proxy = await startTcpProxy(await freePort(), redis.port);
    client = redis.client();
    await pgServer.query(`CREATE TABLE accounts (id int PRIMARY KEY, v int NOT NULL)`);
  });

  after(async () => {
    for (const relay of relays) { relay.signal('SIGCONT'); relay.signal('SIGKILL'); }
    client?.disconnect();
    await proxy?.close();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it("refuses the paused instance's late write after the standby took over", async () => {
    const config = (url: string) => writeConfig({
      source: { url: pgServer.url, tables: ['public.accounts'] },
      sinks: [{ type: 'redis', url, exactlyOnce: true }],
    });
    const viaProxy = config(`redis://127.0.0.1:${proxy.port}`);
    assert.equal((await runCli(['setup', '-c', viaProxy])).code, 0);
    const active = spawnRelay(viaProxy);
    relays.push(active);
    await active.waitForLog(/"msg":"streaming"/);
    const standby = spawnRelay(config(redis.url));
    relays.push(standby);
    await standby.waitForLog(/SLOT_IN_USE/);

    await pgServer.query(`INSERT INTO accounts SELECT i, 1 FROM generate_series(1, 100) i`);
    await waitForStreamLength(client, STREAM, 100);

    // The next write of the active instance stays in the proxy: sent, not yet arrived.
    proxy.hold();
    await pgServer.query(`UPDATE accounts SET v = 2 WHERE id <= 50`);
    await pgServer.query(`UPDATE accounts SET v = 3 WHERE id <= 25`);
    await waitFor(() => proxy.heldBytes > 0, { what: 'the active walrelay to send its next write' });
    active.signal('SIGSTOP');

    await standby.waitForLog(/"msg":"streaming"/, 120_000);
    await waitForStreamLength(client, STREAM, 175, 120_000);

    // The zombie wakes up and its write lands late.
    active.signal('SIGCONT');
    proxy.release();
    await active.waitForLog(/redis exactly-once: skipped events the streams already have/, 60_000);

    await pgServer.query(`UPDATE accounts SET v = v + 10 WHERE id > 90`);
    await waitForStreamLength(client, STREAM, 185, 60_000);

    const events = await readStream(client, STREAM);
    const ids = events.map((event) => event.id);
    assert.equal(new Set(ids).size, ids.length, `${ids.length - new Set(ids).size} events appended twice`);
    assert.equal(events.length, 185);
    // Per key, replaying the stream gives the table.
    const replay = new Map<number, number>();
    for (const event of events) replay.set((event.new as { id: number }).id, (event.new as { v: number }).v);
    const table = await pgServer.query(`SELECT id, v FROM accounts ORDER BY id`);
    assert.deepEqual([...replay].sort((a, b) => a[0] - b[0]), table.map((row: { id: number; v: number }) => [row.id, row.v]));
  });
});
