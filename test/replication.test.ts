// Every pgoutput message type and every row of the value mapping table,
// end to end: PostgreSQL 15 and 18 → walrelay → Redis Streams.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startRelayInProcess, readStream, waitForStreamLength } from './harness/relay.js';
import type { RunningRelay } from '../relay/ops/daemon.js';
import type { ChangeEvent } from '../relay/route/event.js';

const SCHEMA = `
  CREATE TYPE mood AS ENUM ('happy', 'sad');
  CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
  CREATE TABLE types (
    id serial PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, num numeric, r real, d double precision, b boolean,
    js json, jsb jsonb, t text, vc varchar(20), u uuid, m mood, dt date, tm time, ts timestamp, tstz timestamptz,
    ba bytea, ia integer[], ta text[], ia2 integer[][], ma mood[], pi posint, iv interval, pt point, fnan double precision);
  CREATE TABLE items (id int PRIMARY KEY, name text, big text);
  CREATE TABLE full_items (id int PRIMARY KEY, name text);
  ALTER TABLE full_items REPLICA IDENTITY FULL;
  CREATE TABLE parent_a (id int PRIMARY KEY);
  CREATE TABLE child_b (id int PRIMARY KEY, a_id int REFERENCES parent_a (id));
  CREATE TABLE measurements (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
  CREATE TABLE measurements_eu PARTITION OF measurements FOR VALUES IN ('eu');
  CREATE TABLE adjacent (id int PRIMARY KEY);
`;

/** 9,600 characters of md5 hex: stored out of line (TOAST) even after compression. */
const BIG = `(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i)`;

for (const flavor of PG_FLAVORS) {
  describe(`replication on ${flavor}`, () => {
    let pg: TestPostgres;
    let redis: TestRedis;
    let client: Redis;
    const relays: RunningRelay[] = [];

    const sinkFor = (prefix: string) => ({ type: 'redis', url: redis.url, stream: `${prefix}:{schema}.{table}`, messageStream: `${prefix}:messages` });
    const events = (stream: string) => readStream(client, stream);
    const single = async (stream: string, count = 1): Promise<ChangeEvent[]> => {
      await waitForStreamLength(client, stream, count);
      return events(stream);
    };

    before(async () => {
      [pg, redis] = await Promise.all([startPostgres(flavor), startRedis()]);
      client = redis.client();
      await pg.query(SCHEMA);
      relays.push(await startRelayInProcess({
        source: { url: pg.url, slot: 'leaf', publication: 'leaf' },
        sinks: [sinkFor('leaf')],
      }));
      relays.push(await startRelayInProcess({
        source: { url: pg.url, slot: 'root', publication: 'root', publishViaPartitionRoot: true, tables: ['public.measurements'] },
        sinks: [sinkFor('root')],
      }));
    });

    after(async () => {
      await Promise.all(relays.map((relay) => relay.stop()));
      client?.disconnect();
      await Promise.all([pg?.stop(), redis?.stop()]);
    });

    it('maps every value type as the contract says', async () => {
      await pg.query(`INSERT INTO types (i2, i4, i8, num, r, d, b, js, jsb, t, vc, u, m, dt, tm, ts, tstz, ba, ia, ta, ia2, ma, pi, iv, pt, fnan) VALUES (
        -32768, 2147483647, 9223372036854775807, 12345678901234567890.123456789012345678901234567890, 1.5, 3.141592653589793, true,
        '{"a":[1,2,{"b":null}]}', '{"k": "v", "n": 1}', 'héllo "world"', 'abc', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
        '2026-11-22', '10:00:00.123456', '2026-11-22 10:00:00.123456', '2026-11-22 10:00:00.123456+02', '\\x0aff00',
        '{1,NULL,3}', '{"a b","c\\"d",NULL}', '{{1,2},{3,4}}', '{happy,sad}', 7, '1 day 2 hours', '(1,2)', 'NaN')`);
      await pg.query('INSERT INTO types (id) VALUES (100)');
      const [full, empty] = await single('leaf:public.types', 2);
      assert.equal(full.op, 'insert');
      assert.deepEqual(full.key, { id: 1 });
      assert.deepEqual(full.new, {
        id: 1, i2: -32768, i4: 2147483647, i8: '9223372036854775807',
        num: '12345678901234567890.123456789012345678901234567890', r: 1.5, d: Math.PI, b: true,
        js: { a: [1, 2, { b: null }] }, jsb: { k: 'v', n: 1 }, t: 'héllo "world"', vc: 'abc',
        u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', m: 'happy', dt: '2026-11-22', tm: '10:00:00.123456',
        ts: '2026-11-22T10:00:00.123456', tstz: '2026-11-22T08:00:00.123456Z', ba: 'Cv8A',
        ia: [1, null, 3], ta: ['a b', 'c"d', null], ia2: [[1, 2], [3, 4]], ma: ['happy', 'sad'], pi: 7,
        iv: 'P1DT2H', pt: '(1,2)', fnan: 'NaN',
      });
      assert.equal(full.old, null);
      assert.equal(full.unchanged, undefined);
      assert.match(full.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.match(full.commitLsn!, /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.ok(typeof full.xid === 'number' && full.xid > 0);
      assert.match(full.commitTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.match(full.id, /^[0-9A-F]{16}-\d{10}$/);
      assert.equal(empty.new!.i8, null);
      assert.equal(empty.new!.ia, null);
      assert.equal(empty.new!.js, null);
    });

    it('sends updates without old row under REPLICA IDENTITY DEFAULT, and leaves an unchanged TOASTed column out', async () => {
      await pg.query(`INSERT INTO items VALUES (1, 'first', ${BIG})`);
      await pg.query(`UPDATE items SET name = 'renamed' WHERE id = 1`);
      const [insert, update] = await single('leaf:public.items', 2);
      assert.equal((insert.new!.big as string).length, 9600);
      assert.equal(update.op, 'update');
      assert.deepEqual(update.new, { id: 1, name: 'renamed' });
      assert.deepEqual(update.unchanged, ['big']);
      assert.equal(update.old, null);
      assert.deepEqual(update.key, { id: 1 });
    });

    it('sends the old key when the key changes, and the old key on delete', async () => {
      await pg.query(`UPDATE items SET id = 2 WHERE id = 1`);
      await pg.query(`DELETE FROM items WHERE id = 2`);
      const all = await single('leaf:public.items', 4);
      const [keyChange, deletion] = all.slice(2);
      assert.deepEqual(keyChange.old, { id: 1 });
      assert.deepEqual(keyChange.key, { id: 2 });
      assert.equal(deletion.op, 'delete');
      assert.equal(deletion.new, null);
      assert.deepEqual(deletion.old, { id: 2 });
      assert.deepEqual(deletion.key, { id: 2 });
    });

    it('sends the whole old row under REPLICA IDENTITY FULL', async () => {
      await pg.query(`INSERT INTO full_items VALUES (1, 'a')`);
      await pg.query(`UPDATE full_items SET name = 'b' WHERE id = 1`);
      await pg.query(`DELETE FROM full_items WHERE id = 1`);
      const [, update, deletion] = await single('leaf:public.full_items', 3);
      assert.deepEqual(update.old, { id: 1, name: 'a' });
      assert.deepEqual(update.new, { id: 1, name: 'b' });
      assert.deepEqual(deletion.old, { id: 1, name: 'b' });
    });

    it('sends one truncate event per table with cascade and restart identity', async () => {
      await pg.query(`INSERT INTO parent_a VALUES (1); INSERT INTO child_b VALUES (1, 1)`);
      await pg.query('TRUNCATE parent_a, child_b RESTART IDENTITY CASCADE');
      const parent = (await single('leaf:public.parent_a', 2))[1];
      const child = (await single('leaf:public.child_b', 2))[1];
      for (const event of [parent, child]) {
        assert.equal(event.op, 'truncate');
        assert.equal(event.cascade, true);
        assert.equal(event.restartIdentity, true);
        assert.equal(event.new, null);
      }
      assert.equal(parent.commitLsn, child.commitLsn);
      assert.notEqual(parent.id, child.id);
    });

    it('delivers pg_logical_emit_message, transactional or not', async () => {
      await pg.query(`SELECT pg_logical_emit_message(true, 'app.audit', 'inside a transaction')`);
      await pg.query(`SELECT pg_logical_emit_message(false, 'app.audit', '\\x00ff'::bytea)`);
      const [transactional, immediate] = await single('leaf:messages', 2);
      assert.equal(transactional.op, 'message');
      assert.equal(transactional.prefix, 'app.audit');
      assert.equal(transactional.content, 'inside a transaction');
      assert.equal(transactional.transactional, true);
      assert.ok(transactional.xid! > 0);
      assert.equal(immediate.transactional, false);
      assert.equal(immediate.content, 'AP8=');
      assert.equal(immediate.contentEncoding, 'base64');
      assert.equal(immediate.table, undefined);
    });

    it('keeps a message content\'s leading U+FEFF (byte order mark) as sent', async () => {
      const earlier = (await events('leaf:messages')).length;
      await pg.query(`SELECT pg_logical_emit_message(true, 'app.audit', E'\\uFEFFmarked')`);
      const message = (await single('leaf:messages', earlier + 1))[earlier];
      assert.equal(message.content, '\uFEFFmarked');
      assert.equal(message.contentEncoding, 'utf8');
    });

    it('names partition changes after the partition, or after the root with publish_via_partition_root', async () => {
      await pg.query(`INSERT INTO measurements VALUES (1, 'eu', 5)`);
      const [leaf] = await single('leaf:public.measurements_eu');
      assert.deepEqual(leaf.new, { id: 1, region: 'eu', v: 5 });
      const [root] = await single('root:public.measurements');
      assert.deepEqual(root.new, { id: 1, region: 'eu', v: 5 });
      assert.equal(root.id, leaf.id);
    });

    it('replaces the relation cache after ALTER TABLE', async () => {
      await pg.query(`ALTER TABLE full_items ADD COLUMN added int DEFAULT 4`);
      await pg.query(`INSERT INTO full_items VALUES (9, 'n', 5)`);
      const all = await single('leaf:public.full_items', 4);
      assert.deepEqual(all[3].new, { id: 9, name: 'n', added: 5 });
    });
  });
}
