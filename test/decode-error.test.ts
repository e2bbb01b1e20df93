// A message walrelay cannot decode stops the running relay: exit code 1, one
// line naming the error code and the fix, no stack trace, and the slot
// confirmed no further than the last transaction delivered before it. Started
// again on an intact stream, the relay delivers that transaction.
//
// Real PostgreSQL 15 and 18, a real relay process and Redis; a proxy between
// the relay and PostgreSQL damages the message carrying one chosen insert
// (test/harness/corrupting-proxy.ts): inside the pgoutput message, or in the
// replication protocol's XLogData header around it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startCorruptingProxy, XLOGDATA_HEADER } from './harness/corrupting-proxy.js';
import { readStream, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { parseConfig } from '../config/load.js';
import { setupReplication } from '../relay/setup/setup.js';
import { parseLsn } from '../relay/lsn.js';
import pino from 'pino';
import { confirmedFlush } from './harness/slot.js';

const _POISON = Buffer.from('poison');

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
    const relays: RelayProcess[] = [];

    const config = (port: number) => ({
      source: { url: `postgres://postgres@127.0.0.1:${port}/postgres`, slot: 'decode', publication: 'decode', tables: ['public.orders'] },
      sinks: [{ type: 'redis', url: redis.url, stream: 'decode:{schema}.{table}' }],
    });
    const confirmed = () => confirmedFlush(pg, 'decode');

    before(async () => {
      [pg, redis] = await Promise.all([startPostgres(flavor), startRedis()]);
      client = redis.client();
      await pg.query('CREATE TABLE orders (id int PRIMARY KEY, note text)');
      await setupReplication(parseConfig(config(pg.port), {}), pino({ level: 'silent' }));
    });

    after(async () => {
      for (const relay of relays) if (relay.child.exitCode === null && relay.child.signalCode === null) relay.signal('SIGKILL');
      await Promise.all(relays.map((relay) => relay.exited));
      client?.disconnect();
      await Promise.all([pg?.stop(), redis?.stop()]);
    });

    /**
     * Runs the relay through a proxy that applies `damage` to the XLogData
     * message of the insert of `note`; checks that it stops as it must, then
     * that a relay on an intact stream delivers that insert.
     */
    async function stopsAndResumes(id: number, note: string, damage: (body: Buffer) => Buffer, expected: RegExp): Promise<void> {
      const marker = Buffer.from(note);
      const proxy = await startCorruptingProxy(pg.port, (body) => (body[XLOGDATA_HEADER] === 0x49 && body.includes(marker) ? damage(body) : null));
      try {
        const damagedRelay = spawnRelay(writeConfig(config(proxy.port)));
        relays.push(damagedRelay);
        await damagedRelay.waitForLog(/"msg":"streaming"/);

        const goodId = id - 1;
        await pg.query('INSERT INTO orders VALUES ($1, $2)', [goodId, 'good']);
        await waitFor(async () => (await readStream(client, 'decode:public.orders')).some((event) => event.new?.id === goodId), { what: 'the good insert' });
        const good = (await readStream(client, 'decode:public.orders')).find((event) => event.new?.id === goodId)!;
        await waitFor(async () => (await confirmed()) > parseLsn(good.commitLsn!), { what: 'the good transaction to be confirmed' });
        const lastGood = await confirmed();
        const delivered = (await readStream(client, 'decode:public.orders')).length;

        const [{ lsn: beforeDamage }] = await pg.query(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
        await pg.query('INSERT INTO orders VALUES ($1, $2)', [id, note]);
        const code = await within(damagedRelay.exited, 60_000, 'the relay to stop on the damaged message');

        assert.equal(proxy.corrupted, 1, 'exactly one message was damaged');
        assert.equal(code, 1);
        const stderr = damagedRelay.logs();
        const line = stderr.split('\n').find((text) => text.startsWith('walrelay: '));
        assert.ok(line, `a one-line error on stderr; got:\n${stderr}`);
        assert.match(line, expected);
        assert.match(line, /confirmed nothing past the last delivered transaction; start it again to resume from there/);
        assert.doesNotMatch(stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
        assert.equal((await readStream(client, 'decode:public.orders')).length, delivered, 'nothing of the damaged transaction was delivered');
        const after = await confirmed();
        assert.ok(after >= lastGood && after <= parseLsn(beforeDamage),
          `confirmed_flush_lsn ${after.toString(16)} must stay between the good commit's end ${lastGood.toString(16)} and the damaged transaction ${beforeDamage}`);
      } finally {
        await proxy.close();
      }

      // Started again without the proxy, the relay resumes at the good commit and delivers the damaged transaction, once.
      const restarted = spawnRelay(writeConfig(config(pg.port)));
      relays.push(restarted);
      await waitFor(async () => (await readStream(client, 'decode:public.orders')).some((event) => event.new?.id === id), { what: 'the damaged transaction, intact' });
      const events = await readStream(client, 'decode:public.orders');
      assert.deepEqual(events.filter((event) => (event.new?.id as number) >= id - 1).map((event) => event.new), [{ id: id - 1, note: 'good' }, { id, note }]);
      restarted.signal('SIGTERM');
      assert.equal(await within(restarted.exited, 30_000, 'the restarted relay to stop on SIGTERM'), 0);
    }

    it('stops on a damaged pgoutput message with the code and the fix, exit 1, confirming nothing past the last good commit; restarted, it delivers the transaction', async () => {
      // The value's kind byte ('t', before its length) becomes 'z'.
      await stopsAndResumes(2, 'poison', (body) => {
        const damaged = Buffer.from(body);
        damaged[body.indexOf(Buffer.from('poison')) - 5] = 0x7a;
        return damaged;
      }, /^walrelay: PGOUTPUT_MALFORMED: pgoutput 'I' message has an unknown tuple column kind 0x7a at offset \d+/);
    });

    it('stops the same way on an XLogData message cut inside its header', async () => {
      await stopsAndResumes(4, 'cut short', (body) => body.subarray(0, 12), /^walrelay: PGOUTPUT_MALFORMED: an XLogData message of 12 bytes/);
    });
  });
}
