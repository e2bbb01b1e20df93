// Backfill and snapshot: initial — current rows as op "read", consistent with
// concurrent writes (the newest event per key always carries the newest row).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { slotGoneError } from '../relay/ops/slot-recovery.js';
import { WalrelayError } from '../relay/errors.js';
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
    assert.deepEqual(Object.values(JSON.parse(readFileSync(state, 'utf8')).tables).map((progress: any) => [progress.table, progress.done]), [['public.accounts', true]]);

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

describe('backfill progress is kept per database and table, next to the configuration (PostgreSQL 15 and 18)', () => {
  let first: TestPostgres;
  let second: TestPostgres;
  let dir: string;

  before(async () => {
    [first, second] = await Promise.all([startPostgres('pg15'), startPostgres('pg18')]);
    await first.query(`CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 3); CREATE TABLE other (id int PRIMARY KEY); CREATE PUBLICATION walrelay FOR TABLE t`);
    await second.query(`CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 5)`);
    dir = mkdtempSync(join(tmpdir(), 'walrelay-state-'));
  });

  after(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
  });

  const configIn = (server: TestPostgres, name: string) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ source: { url: server.url }, sinks: [{ type: 'stdout' }] }));
    return file;
  };

  it('does not skip the same table name in another database, and says why it skips a finished one', async () => {
    const configA = configIn(first, 'a.json');
    const configB = configIn(second, 'b.json');
    const a = await runCli(['backfill', '-c', configA, 'public.t']);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /public\.t: 3 rows, done/);
    assert.ok(existsSync(join(dir, 'walrelay-backfill.json')), 'state file next to the configuration file');
    assert.ok(!existsSync(join(process.cwd(), 'walrelay-backfill.json')), 'nothing written to the working folder');

    const b = await runCli(['backfill', '-c', configB, 'public.t']);
    assert.equal(b.code, 0, b.stderr);
    assert.match(b.stdout, /public\.t: 5 rows, done/, 'another database: not skipped');
    assert.match(b.stdout, /progress for a table of this name in another database/);

    const again = await runCli(['backfill', '-c', configA, 'public.t']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /public\.t: skipped: already backfilled \(3 rows, finished .*\) .*--restart/);
    assert.doesNotMatch(again.stdout, /rows, done/);

    const forced = await runCli(['backfill', '-c', configA, '--restart', 'public.t']);
    assert.match(forced.stdout, /public\.t: 3 rows, done/);
  });

  it('the backfill that a lost slot\'s hint names re-emits tables already backfilled through a slot of that name', async () => {
    // A recreated slot keeps its name, so the progress file still marks the table done: the recovery must not skip it.
    const config = join(dir, 'a.json');
    assert.match((await runCli(['backfill', '-c', config, 'public.t'])).stdout, /public\.t: skipped: already backfilled/);
    for (const code of ['SLOT_LOST', 'SLOT_MISSING']) {
      const hint = slotGoneError(new WalrelayError(code, 'gone'), 'walrelay', true).hint ?? '';
      const command = /"walrelay (backfill [^"]*)"/.exec(hint);
      assert.ok(command, `${code}: the hint names no backfill command: ${hint}`);
      const args = command[1].split(' ').flatMap((word) => (word === 'FILE' ? [config] : word === 'TABLE…' ? ['public.t'] : [word]));
      const result = await runCli(args);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /public\.t: 3 rows, done/, `${code}: walrelay ${args.join(' ')}`);
    }
  });

  it('backfills a table again after it was dropped and created anew', async () => {
    await first.query(`DROP TABLE t; CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 4); ALTER PUBLICATION walrelay ADD TABLE t`);
    const result = await runCli(['backfill', '-c', join(dir, 'a.json'), 'public.t']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /public\.t: 4 rows, done/);
  });

  it('keeps the state where backfill.stateFile says, relative to the configuration file', async () => {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ source: { url: first.url }, sinks: [{ type: 'stdout' }], backfill: { stateFile: 'state/progress.json' } }));
    const result = await runCli(['backfill', '-c', file, 'public.t']);
    assert.equal(result.code, 0, result.stderr);
    const state = JSON.parse(readFileSync(join(dir, 'state', 'progress.json'), 'utf8'));
    const [key] = Object.keys(state.tables);
    const oid = (await first.query(`SELECT 'public.t'::regclass::oid::int AS oid`))[0].oid;
    const sysid = (await first.query('SELECT system_identifier::text AS id FROM pg_control_system()'))[0].id;
    assert.equal(key, `${sysid}/postgres/walrelay/${oid}`);
  });

  it('ignores a progress file of the old format (keyed by table name only), saying so', async () => {
    const file = join(dir, 'old.json');
    writeFileSync(file, JSON.stringify({ source: { url: first.url }, sinks: [{ type: 'stdout' }], backfill: { stateFile: 'old-state.json' } }));
    writeFileSync(join(dir, 'old-state.json'), JSON.stringify({ 'public.t': { after: null, rows: 100000, done: true } }));
    const result = await runCli(['backfill', '-c', file, 'public.t']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /old-state\.json: written by an older walrelay .*ignoring it and starting over/);
    assert.match(result.stdout, /public\.t: 4 rows, done/);
  });

  it('warns when a backfilled table is not in the publication', async () => {
    const result = await runCli(['backfill', '-c', join(dir, 'a.json'), 'public.other']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /warning: public\.other is not in publication walrelay: .*later changes will not arrive/);
  });
});
