// Redis exactly-once under a server locale that is not C (issue 24, 1).
// Redis calls setlocale(LC_COLLATE, "") and Lua compares strings with
// strcoll, so a script comparing event ids with `>` orders them by the
// server's locale: under en_US.UTF-8 punctuation is ignored at the first
// level and "<lsn>-0000000000" sorts below "<lsn>-.begin" and
// "<lsn>-.schema". The script must compare bytes: these tests run a server
// under en_US.UTF-8 (checked to be in effect) and one under C, and expect the
// same answer from both.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { HOSTILE_LOCALE, luaCollatesByLocale, startRedis, type TestRedis } from './harness/redis.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { readStream, startRelayInProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { RedisConnection } from '../sinks/redis/connection.js';
import { exactlyOnceCommand, type StreamEntry } from '../sinks/redis/exactly-once.js';
import type { RunningRelay } from '../relay/ops/daemon.js';

/** One transaction's ids with transaction and schema events, in delivery (byte) order. */
const LSN = '00000000016B37D8';
const IDS = [`${LSN}-.begin`, `${LSN}-.schema`, `${LSN}-0000000000`, `${LSN}-0000000000.schema`, `${LSN}-0000000001`, `${LSN}-~commit`];

describe(`redis exactly-once compares ids byte-wise (server under ${HOSTILE_LOCALE} and C)`, () => {
  let hostile: TestRedis;
  let plain: TestRedis;
  let pgServer: TestPostgres;
  const clients: Redis[] = [];

  before(async () => {
    [hostile, plain, pgServer] = await Promise.all([startRedis({ locale: HOSTILE_LOCALE }), startRedis({ locale: 'C' }), startPostgres('pg15')]);
  });
  after(async () => {
    for (const client of clients) client.disconnect();
    await Promise.all([hostile?.stop(), plain?.stop(), pgServer?.stop()]);
  });

  const client = (redis: TestRedis): Redis => {
    const created = redis.client();
    clients.push(created);
    return created;
  };

  it(`the ${HOSTILE_LOCALE} server really collates by locale (so the next tests cannot pass under C by accident)`, async () => {
    assert.equal(await luaCollatesByLocale(client(hostile)), true, 'under en_US.UTF-8, "A-0000000000" < "A-.begin"');
    assert.equal(await luaCollatesByLocale(client(plain)), false, 'under C, "." sorts before "0"');
  });

  for (const [label, server] of [['en_US.UTF-8', () => hostile], ['C', () => plain]] as const) {
    it(`appends every id of a transaction with begin, schema and commit events once (${label})`, async () => {
      const redis = server();
      const connection = new RedisConnection(redis.url, { timeoutMs: 5000, timeoutKey: 'test' });
      try {
        const entries: StreamEntry[] = IDS.map((id) => ({ stream: `ids:${label}`, id, fields: ['event', id] }));
        const checkpoint = `checkpoint:${label}`;
        assert.equal(await connection.execInteger(exactlyOnceCommand(checkpoint, entries, undefined)), IDS.length);
        // The same batch again (a retry whose first attempt landed) appends nothing, as does any earlier id.
        assert.equal(await connection.execInteger(exactlyOnceCommand(checkpoint, entries, undefined)), 0);
        assert.equal(await connection.execInteger(exactlyOnceCommand(checkpoint, entries.slice(2, 3), undefined)), 0);
        const next: StreamEntry = { stream: `ids:${label}`, id: '00000000016B37E0-.begin', fields: ['event', 'next'] };
        assert.equal(await connection.execInteger(exactlyOnceCommand(checkpoint, [next], undefined)), 1);
        const stored = (await client(redis).xrange(`ids:${label}`, '-', '+')).map(([, fields]) => fields[1]);
        assert.deepEqual(stored, [...IDS, 'next']);
        assert.equal(await client(redis).get(checkpoint), next.id);
      } finally {
        connection.close();
      }
    });
  }

  it(`a relay with exactlyOnce, transaction and schema events delivers every row into the ${HOSTILE_LOCALE} server`, async () => {
    await pgServer.query('CREATE TABLE items (id int PRIMARY KEY, v text)');
    let relay: RunningRelay | undefined;
    try {
      relay = await startRelayInProcess({
        source: { url: pgServer.url, tables: ['public.items'] },
        sinks: [{ type: 'redis', name: 'items', url: hostile.url, exactlyOnce: true, transactionEvents: true, schemaEvents: true }],
      });
      await pgServer.query(`BEGIN; INSERT INTO items VALUES (1, 'a'), (2, 'b'); UPDATE items SET v = 'c' WHERE id = 1; COMMIT`);
      await pgServer.query(`INSERT INTO items VALUES (3, 'd')`);
      const redis = client(hostile);
      const streams = ['walrelay:public.items', 'walrelay:messages'];
      const all = async () => (await Promise.all(streams.map((stream) => readStream(redis, stream)))).flat();
      await waitFor(async () => (await all()).filter((event) => event.op === 'commit').length === 2, { what: 'two commit events' });
      const ops = (await all()).sort((a, b) => (a.id < b.id ? -1 : 1)).map((event) => event.op);
      assert.deepEqual(ops, ['begin', 'schema', 'insert', 'insert', 'update', 'commit', 'begin', 'insert', 'commit']);
    } finally {
      await relay?.stop();
    }
  });
});
