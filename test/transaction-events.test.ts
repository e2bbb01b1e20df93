// Transaction events: begin and commit around each transaction a sink
// receives, with the commit's counts right across a multi-table transaction
// and across a transaction streamed in many batches before its Commit
// arrived; ids sort strictly in delivery order; Debezium's transaction
// metadata records in the debezium format.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { readStream, waitForStreamLength, setupAndSpawnRelay, type RelayProcess } from './harness/relay.js';
import type { ChangeEvent } from '../relay/route/event.js';

describe('transaction events (PostgreSQL 15, Redis)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let relay: RelayProcess;

  /** Every event the walrelay-format sink wrote, in id order. */
  const allEvents = async (): Promise<ChangeEvent[]> => {
    const streams = ['walrelay:messages', 'walrelay:public.a', 'walrelay:public.b'];
    const events = (await Promise.all(streams.map((stream) => readStream(client, stream)))).flat();
    return events.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  };

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    client = redis.client();
    await pgServer.query(`
      CREATE TABLE a (id int PRIMARY KEY, v text);
      CREATE TABLE b (id int PRIMARY KEY, v text);
      CREATE TABLE c (id int PRIMARY KEY);`);
    relay = await setupAndSpawnRelay({
      source: { url: pgServer.url, tables: ['public.a', 'public.b', 'public.c'] },
      // Small batches: a transaction of 100 rows goes out in many batches before its Commit is read.
      pipeline: { batchEvents: 7 },
      sinks: [
        { type: 'redis', url: redis.url, tables: ['public.a', 'public.b'], transactionEvents: true },
        { type: 'redis', url: redis.url, stream: 'dbz:{schema}.{table}', messageStream: 'dbz:messages', format: 'debezium', transactionEvents: true },
        { type: 'redis', url: redis.url, stream: 'plain:{schema}.{table}', messageStream: 'plain:messages' },
      ],
    });
  });

  after(async () => {
    relay?.signal('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('brackets a multi-table transaction with begin and commit carrying the counts', async () => {
    await pgServer.query(`
      BEGIN;
      INSERT INTO a VALUES (1, 'x'), (2, 'y');
      INSERT INTO b VALUES (1, 'p');
      INSERT INTO c VALUES (1);
      UPDATE a SET v = 'z' WHERE id = 1;
      INSERT INTO b VALUES (2, 'q');
      COMMIT;`);
    await pgServer.query(`INSERT INTO c VALUES (2)`); // nothing of it reaches the first sink: no begin/commit there
    await pgServer.query(`INSERT INTO a SELECT i, 'bulk' FROM generate_series(100, 199) i`);
    await waitForStreamLength(client, 'walrelay:messages', 4);
    const events = await allEvents();
    assert.deepEqual(events.map((event) => event.op), ['begin', 'insert', 'insert', 'insert', 'update', 'insert', 'commit', 'begin', ...Array(100).fill('insert'), 'commit']);
    const [begin, , , , , , commit] = events;
    assert.equal(begin.eventCount, null, 'begin is sent before the count is known');
    assert.equal(commit.eventCount, 5);
    assert.deepEqual(commit.tables, { 'public.a': 3, 'public.b': 2 });
    for (const event of [begin, commit]) {
      assert.equal(event.xid, events[1].xid);
      assert.equal(event.commitLsn, events[1].commitLsn);
      assert.equal(event.commitTime, events[1].commitTime);
    }
    const bulkCommit = events[events.length - 1];
    assert.equal(bulkCommit.eventCount, 100);
    assert.deepEqual(bulkCommit.tables, { 'public.a': 100 });

    // Stream order (delivery order) is id order, strictly: the ids sort.
    const messages = await readStream(client, 'walrelay:messages');
    for (let i = 1; i < messages.length; i++) assert.ok(messages[i - 1].id < messages[i].id, `${messages[i - 1].id} < ${messages[i].id}`);
    const a = await readStream(client, 'walrelay:public.a');
    assert.ok(messages[0].id < a[0].id && a[2].id < messages[1].id, 'begin sorts before, commit after the transaction\'s events');

    // A sink without transactionEvents gets neither begin/commit nor markers.
    await waitForStreamLength(client, 'plain:public.a', 103);
    assert.equal(await client.exists('plain:messages'), 0);
  });

  it('writes Debezium transaction metadata records in the debezium format', async () => {
    await waitForStreamLength(client, 'walrelay.transaction', 6);
    const records = (await client.xrange('walrelay.transaction', '-', '+')).map(([, fields]) => ({ key: fields[fields.indexOf('key') + 1], value: JSON.parse(fields[fields.indexOf('event') + 1]) }));
    assert.deepEqual(records.map((record) => record.value.status), ['BEGIN', 'END', 'BEGIN', 'END', 'BEGIN', 'END']);
    const [begin, end] = records;
    assert.equal(begin.value.event_count, null);
    assert.equal(begin.value.data_collections, null);
    assert.match(begin.value.id, /^\d+:\d+$/);
    assert.equal(end.value.id, begin.value.id);
    assert.equal(begin.key, JSON.stringify({ id: begin.value.id }));
    assert.equal(end.value.event_count, 6);
    assert.deepEqual(end.value.data_collections, [
      { data_collection: 'public.a', event_count: 3 },
      { data_collection: 'public.b', event_count: 2 },
      { data_collection: 'public.c', event_count: 1 },
    ]);
    assert.equal(typeof end.value.ts_ms, 'number');
  });
});
