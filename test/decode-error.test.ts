// A message walrelay cannot decode stops the running relay: exit code 1, one
// line naming the error code and the fix, no stack trace, and the slot
// confirmed no further than the last transaction delivered before it. Started
// again on an intact stream, the relay delivers that transaction.
//
// Real PostgreSQL 15 and 18, a real relay process and Redis; a proxy between
// the relay and PostgreSQL damages the pgoutput Insert message of one chosen
// transaction (test/harness/corrupting-proxy.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startCorruptingProxy, type CorruptingProxy } from './harness/corrupting-proxy.js';
import { readStream, spawnRelay, waitForStreamLength, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { parseConfig } from '../config/load.js';
import { setupReplication } from '../relay/ops/setup.js';
import { parseLsn } from '../relay/lsn.js';
import pino from 'pino';

const POISON = Buffer.from('poison');

/** Within `ms`, or a failure naming `what` (the relay is a child process that could hang). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); })])
    .finally(() => clearTimeout(timer));
}

for (const flavor of PG_FLAVORS) {
  describe(`a decode error in the running relay on ${flavor}`, () => {
    let pg: TestPostgres;
    let redis: TestRedis;
    let client: Redis;
    let proxy: CorruptingProxy;
    const relays: RelayProcess[] = [];

    const config = (port: number) => ({
      source: { url: `postgres://postgres@127.0.0.1:${port}/postgres`, slot: 'decode', publication: 'decode', tables: ['public.orders'] },
      sinks: [{ type: 'redis', url: redis.url, stream: 'decode:{schema}.{table}' }],
    });
    const confirmed = async () => parseLsn((await pg.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'decode'`))[0].lsn);

    before(async () => {
      [pg, redis] = await Promise.all([startPostgres(flavor), startRedis()]);
      client = redis.client();
      await pg.query('CREATE TABLE orders (id int PRIMARY KEY, note text)');
      await setupReplication(parseConfig(config(pg.port), {}), pino({ level: 'silent' }));
      // The Insert ('I') whose value is "poison" gets an unknown tuple column kind in place of 't'.
      proxy = await startCorruptingProxy(pg.port, (payload) => {
        const at = payload.indexOf(POISON);
        if (payload[0] !== 0x49 || at < 0) return null;
        const damaged = Buffer.from(payload);
        damaged[at - 5] = 0x7a; // the kind byte before the value's length: 'z'
        return damaged;
      });
    });

    after(async () => {
      for (const relay of relays) if (relay.child.exitCode === null && relay.child.signalCode === null) relay.signal('SIGKILL');
      await Promise.all(relays.map((relay) => relay.exited));
      client?.disconnect();
      await proxy?.close();
      await Promise.all([pg?.stop(), redis?.stop()]);
    });

    it('stops with the code and the fix, exit 1, confirming nothing past the last good commit; restarted, it delivers the damaged transaction', async () => {
      const damagedRelay = spawnRelay(writeConfig(config(proxy.port)));
      relays.push(damagedRelay);
      await damagedRelay.waitForLog(/"msg":"streaming"/);

      await pg.query(`INSERT INTO orders VALUES (1, 'good')`);
      await waitForStreamLength(client, 'decode:public.orders', 1);
      const [good] = await readStream(client, 'decode:public.orders');
      await waitFor(async () => (await confirmed()) > parseLsn(good.commitLsn!), { what: 'the good transaction to be confirmed' });
      const lastGood = await confirmed();

      const [{ lsn: beforePoison }] = await pg.query(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
      await pg.query(`INSERT INTO orders VALUES (2, 'poison')`);
      const code = await within(damagedRelay.exited, 60_000, 'the relay to stop on the damaged message');

      assert.equal(proxy.corrupted, 1, 'exactly one message was damaged');
      assert.equal(code, 1);
      const stderr = damagedRelay.logs();
      const line = stderr.split('\n').find((text) => text.startsWith('walrelay: '));
      assert.ok(line, `a one-line error on stderr; got:\n${stderr}`);
      assert.match(line, /^walrelay: PGOUTPUT_MALFORMED: pgoutput 'I' message has an unknown tuple column kind 0x7a at offset \d+/);
      assert.match(line, /confirmed nothing past the last delivered transaction; start it again to resume from there/);
      assert.doesNotMatch(stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
      assert.equal((await readStream(client, 'decode:public.orders')).length, 1, 'nothing of the damaged transaction was delivered');

      const after = await confirmed();
      assert.ok(after >= lastGood && after <= parseLsn(beforePoison),
        `confirmed_flush_lsn ${after.toString(16)} must stay between the good commit's end ${lastGood.toString(16)} and the damaged transaction ${beforePoison}`);

      // Started again without the proxy, the relay resumes at the good commit and delivers the damaged transaction, once.
      const restarted = spawnRelay(writeConfig(config(pg.port)));
      relays.push(restarted);
      await waitForStreamLength(client, 'decode:public.orders', 2);
      const events = await readStream(client, 'decode:public.orders');
      assert.deepEqual(events.map((event) => event.new), [{ id: 1, note: 'good' }, { id: 2, note: 'poison' }]);
      restarted.signal('SIGTERM');
      assert.equal(await within(restarted.exited, 30_000, 'the restarted relay to stop on SIGTERM'), 0);
    });
  });
}
