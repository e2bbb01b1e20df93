// Blue-green projection rebuild: `walrelay backfill --sink NAME
// --stream-template T` sends the current rows to one sink's new streams only,
// while live changes keep flowing to every sink; a projection built from the
// new stream plus the live stream (last id per key wins) equals the table.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, runCli, spawnRelay, readStream, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import type { ChangeEvent } from '../relay/route/event.js';

describe('projection rebuild with backfill --sink (PostgreSQL 15, Redis)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let relay: RelayProcess;
  let configFile: string;

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    client = redis.client();
    await pgServer.query(`
      CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
      INSERT INTO accounts SELECT i, 100 FROM generate_series(1, 300) i;`);
    configFile = writeConfig({
      source: { url: pgServer.url, tables: ['public.accounts'] },
      sinks: [
        { type: 'redis', name: 'projection', url: redis.url, stream: 'v1:{schema}.{table}' },
        { type: 'redis', name: 'audit', url: redis.url, stream: 'audit:{schema}.{table}' },
      ],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('re-emits current rows into the new stream of one sink only, ordered against live changes per key', async () => {
    // Writers keep changing rows while the rebuild reads them.
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      while (writing) {
        const id = 1 + (writes % 300);
        await pgServer.query(`UPDATE accounts SET balance = balance + 1 WHERE id = $1`, [id]);
        if (writes % 50 === 49) await pgServer.query(`DELETE FROM accounts WHERE id = $1`, [id]);
        writes++;
      }
    })();
    const backfill = await runCli(['backfill', '-c', configFile, '--chunk-rows', '40', '--sink', 'projection', '--stream-template', 'v2:{schema}.{table}', 'public.accounts']);
    writing = false;
    await writer;
    assert.equal(backfill.code, 0, backfill.stderr);
    await pgServer.query(`UPDATE accounts SET balance = 0 WHERE id = 2`); // a change after the rebuild: the switch-over must see it

    const lastLive = (await pgServer.query(`SELECT count(*)::int AS n FROM accounts`))[0].n;
    assert.ok(lastLive > 0);
    await waitFor(async () => (await readStream(client, 'v1:public.accounts')).some((event) => event.key!.id === 2 && event.new?.balance === 0), { what: 'the last live change on v1' });
    const reads = await readStream(client, 'v2:public.accounts');
    const live = await readStream(client, 'v1:public.accounts');
    const audit = await readStream(client, 'audit:public.accounts');
    assert.ok(reads.length > 0 && reads.every((event) => event.op === 'read'), 'the new stream holds the read events');
    assert.equal(live.filter((event) => event.op === 'read').length, 0, 'the live stream of the rebuilt sink gets no read events');
    assert.equal(audit.filter((event) => event.op === 'read').length, 0, 'other sinks get no read events');
    assert.equal(audit.length, live.length, 'other sinks carry on with every live change');

    // The switch-over: the new projection = the read events and the live changes, last id per key wins.
    const projection = new Map<number, { id: string; row: ChangeEvent['new'] }>();
    for (const event of [...reads, ...live]) {
      const key = Number(event.key!.id);
      const current = projection.get(key);
      if (current && current.id > event.id) continue;
      projection.set(key, { id: event.id, row: event.op === 'delete' ? null : event.new });
    }
    const rows = await pgServer.query<{ id: number; balance: number }>(`SELECT id, balance FROM accounts ORDER BY id`);
    const built = [...projection.entries()].filter(([, value]) => value.row !== null).sort(([a], [b]) => a - b).map(([, value]) => value.row);
    assert.deepEqual(built, rows);
  });

  it('refuses an unknown sink and a stream template without --sink (exit 2)', async () => {
    const unknown = await runCli(['backfill', '-c', configFile, '--sink', 'nope', 'public.accounts']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--sink: no sink is named nope.*projection, audit/);
    const lone = await runCli(['backfill', '-c', configFile, '--stream-template', 'x:{table}', 'public.accounts']);
    assert.equal(lone.code, 2);
    assert.match(lone.stderr, /--stream-template: needs --sink/);
  });
});
