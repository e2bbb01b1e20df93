// Backfill and snapshot: initial — current rows as op "read", consistent with
// concurrent writes (the newest event per key always carries the newest row).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, runCli, spawnRelay, readStream, waitForStreamLength, type RelayProcess } from './harness/relay.js';

describe('backfill (PostgreSQL 15)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let relay: RelayProcess;
  let configFile: string;

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    client = redis.client();
    await pgServer.query(`
      CREATE TABLE accounts (id int PRIMARY KEY, balance numeric, opened timestamptz);
      INSERT INTO accounts SELECT i, i * 10, '2026-01-01 00:00:00.000001+00' FROM generate_series(1, 2500) i;
      CREATE TABLE seeded (id bigint PRIMARY KEY, tags text[]);
      INSERT INTO seeded VALUES (1, '{a,b}'), (2, NULL);
      CREATE TABLE keyless (v text);
      INSERT INTO keyless VALUES ('x'), ('y');`);
    configFile = writeConfig({ source: { url: pgServer.url, snapshot: 'initial', tables: ['public.seeded', 'public.accounts', 'public.keyless'] }, sinks: [{ type: 'redis', url: redis.url }] });
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('snapshot: initial delivers existing rows as read events before later changes', async () => {
    const setup = await runCli(['setup', '-c', configFile]);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /public\.accounts: 2500 rows, done/);
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    await pgServer.query(`INSERT INTO seeded VALUES (3, '{c}')`);
    await waitForStreamLength(client, 'walrelay:public.seeded', 3);
    const seeded = await readStream(client, 'walrelay:public.seeded');
    assert.deepEqual(seeded.map((event) => event.op), ['read', 'read', 'insert']);
    assert.deepEqual(seeded[0].new, { id: '1', tags: ['a', 'b'] });
    assert.deepEqual(seeded[0].key, { id: '1' });
    assert.equal(seeded[0].old, null);
    await waitForStreamLength(client, 'walrelay:public.accounts', 2500);
    const [first] = await readStream(client, 'walrelay:public.accounts');
    assert.deepEqual(first.new, { id: 1, balance: '10', opened: '2026-01-01T00:00:00.000001Z' });
    const keyless = await readStream(client, 'walrelay:public.keyless');
    assert.deepEqual(keyless.map((event) => event.new!.v), ['x', 'y']);
    assert.equal(keyless[0].key, null);
  });

  it('backfills while rows change, never leaving a stale read as the newest event of a key', async () => {
    await client.del('walrelay:public.accounts');
    const state = join(mkdtempSync(join(tmpdir(), 'walrelay-backfill-')), 'state.json');
    let writing = true;
    const writer = (async () => {
      let round = 0;
      while (writing) {
        round++;
        await pgServer.query(`UPDATE accounts SET balance = balance + 1 WHERE id % 97 = ${round % 97}`);
      }
    })();
    const result = await runCli(['backfill', '-c', configFile, '--chunk-rows', '300', '--state', state, 'public.accounts']);
    writing = false;
    await writer;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /public\.accounts: 2500 rows, done/);
    assert.equal(JSON.parse(readFileSync(state, 'utf8'))['public.accounts'].done, true);

    const truth = new Map<number, string>((await pgServer.query('SELECT id, balance::text AS balance FROM accounts')).map((row: any) => [row.id, row.balance]));
    await waitForStreamLength(client, 'walrelay:public.accounts', 2500);
    // Wait for the stream to catch up with the last update, then compare the newest event of every key.
    const deadline = Date.now() + 30_000;
    let stale: string[] = [];
    do {
      const newest = new Map<number, unknown>();
      for (const event of await readStream(client, 'walrelay:public.accounts')) newest.set(event.new!.id as number, event.new!.balance);
      stale = [...truth].filter(([id, balance]) => newest.get(id) !== balance).map(([id]) => String(id));
      if (stale.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } while (Date.now() < deadline);
    assert.deepEqual(stale.slice(0, 10), [], `${stale.length} keys end on a stale value`);
    const reads = (await readStream(client, 'walrelay:public.accounts')).filter((event) => event.op === 'read');
    assert.equal(new Set(reads.map((event) => event.new!.id)).size, 2500);

    const again = await runCli(['backfill', '-c', configFile, '--state', state, 'public.accounts']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already backfilled/);
  });

  it('rejects a table that does not exist', async () => {
    const result = await runCli(['backfill', '-c', configFile, '--state', join(tmpdir(), `none-${process.pid}.json`), 'public.nope']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /public\.nope does not exist/);
  });
});
