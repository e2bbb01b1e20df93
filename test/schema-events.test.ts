// Schema evolution with a real PostgreSQL and relay processes: every row
// change carries schemaVersion; ALTER TABLE … ADD COLUMN produces one schema
// event just before the first change of the new shape; a reconnect does not
// produce another; a process restart announces each table again (README
// "Schema events"); and a relay reading the same WAL later (a copy of the
// slot) produces the same ids, so a re-delivery is identical.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PG_FLAVORS, startPostgres, type TestPostgres } from './harness/postgres.js';
import { runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { readStream } from './harness/relay.js';
import type { ChangeEvent } from '../relay/route/event.js';

function events(relay: RelayProcess): ChangeEvent[] {
  return relay.stdout().split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line));
}

function config(pg: TestPostgres, slot: string, redis?: TestRedis): string {
  // With redis: one sink that takes schema events and one that does not.
  const redisSinks = redis ? [
    { type: 'redis', url: redis.url, stream: 'typed:{schema}.{table}', schemaEvents: true },
    { type: 'redis', url: redis.url, stream: 'plain:{schema}.{table}' },
  ] : [];
  return writeConfig({
    source: { url: pg.url, slot, publication: 'walrelay', tables: ['public.t', 'public.u'] },
    sinks: [{ type: 'stdout', schemaEvents: true }, ...redisSinks],
  });
}

for (const flavor of PG_FLAVORS) describe(`schema events (${flavor})`, () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  const relays: RelayProcess[] = [];

  before(async () => {
    redis = await startRedis();
    pg = await startPostgres(flavor);
    await pg.query('CREATE TABLE t (id int PRIMARY KEY, name text)');
    await pg.query('CREATE TABLE u (id int PRIMARY KEY)');
  });
  after(async () => {
    for (const relay of relays) if (relay.child.exitCode === null) relay.signal('SIGKILL');
    await pg?.stop();
    await redis?.stop();
  });

  function start(file: string): RelayProcess {
    const relay = spawnRelay(file, {}, { keepStdout: true });
    relays.push(relay);
    return relay;
  }

  it('announces each shape once, before its first change, with ids independent of the announcement', async () => {
    const live = config(pg, 'walrelay', redis);
    assert.equal((await runCli(['setup', '-c', live])).code, 0);
    // A second slot at the same position: read later by a fresh relay, it sees the same WAL.
    await pg.query(`SELECT pg_copy_logical_replication_slot('walrelay', 'lagging')`);

    let relay = start(live);
    await relay.waitForLog(/"msg":"streaming"/);
    await pg.query(`INSERT INTO t VALUES (1, 'a')`);
    await pg.query(`INSERT INTO t VALUES (2, 'b')`);
    await waitFor(() => events(relay).filter((event) => event.op === 'insert').length === 2, { what: 'two inserts' });
    const [first, insert1, insert2] = events(relay);
    assert.equal(first.op, 'schema');
    assert.equal(first.id, insert1.id.slice(0, 17) + '.schema', 'the schema event before position 0: the commit LSN, "-" and ".schema"');
    assert.ok(first.id < insert1.id);
    assert.deepEqual(first.columns, [
      { name: 'id', type: 'int4', typeOid: 23, typeMod: -1, key: true },
      { name: 'name', type: 'text', typeOid: 25, typeMod: -1, key: false },
    ]);
    const v1 = first.schemaVersion!;
    assert.match(v1, /^[0-9a-f]{12}$/);
    assert.equal(insert1.schemaVersion, v1);
    assert.equal(insert2.schemaVersion, v1);
    assert.equal(insert2.op, 'insert', 'no schema event for an unchanged shape');

    await pg.query('ALTER TABLE t ADD COLUMN note varchar(20)');
    await pg.query(`BEGIN; INSERT INTO u VALUES (1); INSERT INTO t VALUES (3, 'c', 'n'); UPDATE t SET note = 'm' WHERE id = 1; COMMIT`);
    await waitFor(() => events(relay).some((event) => event.op === 'update'), { what: 'the update after ALTER' });
    const afterAlter = events(relay).slice(3);
    assert.deepEqual(afterAlter.map((event) => `${event.op} ${event.table}`), ['schema u', 'insert u', 'schema t', 'insert t', 'update t']);
    const [, insertU, schemaT, insertT, update] = afterAlter;
    assert.equal(schemaT.id, insertU.id + '.schema', 'the schema event sorts between the position before and its change');
    assert.ok(insertU.id < schemaT.id && schemaT.id < insertT.id);
    assert.equal(insertT.id, insertU.id.slice(0, 17) + '0000000001', 'the schema event takes no position');
    const v2 = schemaT.schemaVersion!;
    assert.notEqual(v2, v1);
    assert.deepEqual(schemaT.columns!.map((column) => [column.name, column.type, column.typeMod, column.key]),
      [['id', 'int4', -1, true], ['name', 'text', -1, false], ['note', 'varchar', 24, false]]);
    assert.equal(insertT.schemaVersion, v2);
    assert.equal(update.schemaVersion, v2);

    // A reconnect: PostgreSQL sends the Relation message again, with the same shape.
    await pg.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name <> 'lagging'`);
    await waitFor(() => (relay.logs().match(/"msg":"streaming"/g) ?? []).length === 2, { what: 'the relay to stream again', timeoutMs: 60_000 });
    await pg.query(`INSERT INTO t VALUES (4, 'd', 'o')`);
    await waitFor(() => events(relay).some((event) => event.new?.id === 4), { what: 'insert 4' });
    const afterReconnect = events(relay).filter((event) => event.id > update.id);
    assert.deepEqual(afterReconnect.map((event) => event.op), ['insert'], 'no schema event after a reconnect');
    assert.equal(afterReconnect[0].schemaVersion, v2);

    // A restart: the new process has announced nothing yet.
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
    const beforeRestart = events(relay);
    relay = start(live);
    await relay.waitForLog(/"msg":"streaming"/);
    await pg.query(`INSERT INTO t VALUES (5, 'e', 'p')`);
    await waitFor(() => events(relay).some((event) => event.new?.id === 5), { what: 'insert 5' });
    const afterRestart = events(relay);
    assert.deepEqual(afterRestart.map((event) => event.op), ['schema', 'insert']);
    assert.equal(afterRestart[0].schemaVersion, v2, 'the same shape has the same version in another process');
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);

    // The same WAL read again from the start: every id, version and column list is the same.
    const lagging = start(config(pg, 'lagging'));
    await waitFor(() => events(lagging).some((event) => event.new?.id === 5), { what: 'the lagging relay to catch up' });
    lagging.signal('SIGTERM');
    await lagging.exited;
    const expected = [...beforeRestart, ...afterRestart.slice(1)];
    assert.deepEqual(events(lagging), expected);

    // Redis: the sink with schemaEvents has them in the table's stream, in order; the other has the same changes without them.
    const client = redis.client();
    try {
      const delivered = [...beforeRestart, ...afterRestart].filter((event) => event.table === 't');
      assert.deepEqual(await readStream(client, 'typed:public.t'), delivered);
      assert.deepEqual(await readStream(client, 'plain:public.t'), delivered.filter((event) => event.op !== 'schema'));
    } finally {
      client.disconnect();
    }
  });
  it('sit inside begin/commit events without being counted, and a dropped column leaves their column list', async () => {
    await pg.query('CREATE TABLE w (id int PRIMARY KEY, secret text)');
    const file = writeConfig({
      source: { url: pg.url, slot: 'with_tx', publication: 'with_tx', tables: ['public.w'] },
      sinks: [{ type: 'stdout', schemaEvents: true, transactionEvents: true, columns: { 'public.w.secret': 'drop' } }],
    });
    assert.equal((await runCli(['setup', '-c', file])).code, 0);
    const relay = start(file);
    await relay.waitForLog(/"msg":"streaming"/);
    await pg.query(`BEGIN; INSERT INTO w VALUES (1, 's'); INSERT INTO w VALUES (2, 't'); COMMIT`);
    await waitFor(() => relay.stdout().includes('"op":"commit"'), { what: 'the commit event' });
    const delivered = events(relay);
    assert.deepEqual(delivered.map((event) => event.op), ['begin', 'schema', 'insert', 'insert', 'commit']);
    for (let i = 1; i < delivered.length; i++) assert.ok(delivered[i - 1].id < delivered[i].id, `${delivered[i - 1].id} < ${delivered[i].id}`);
    assert.deepEqual(delivered[1].columns!.map((column) => column.name), ['id']);
    assert.deepEqual(delivered[2].new, { id: 1 });
    assert.equal((delivered[4] as any).eventCount, 2);
    assert.deepEqual((delivered[4] as any).tables, { 'public.w': 2 });
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });
});
