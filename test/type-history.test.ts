// A change decodes by the types its table had when it was written, even when
// walrelay processes it after later DDL changed the column and dropped the
// type (a lagging relay is normal). PostgreSQL 15 and 18 → walrelay → Redis.
//
// What walrelay knows of a type: what it learned while the type existed (the
// published tables' column types when a session starts, and every type a
// Relation message used), kept for the life of the process; and what the
// Type messages say, which PostgreSQL writes with the catalog as it was when
// the change was written (a domain's Type message names its base type).
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { readStream, waitForStreamLength } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { parseConfig } from '../config/load.js';
import { setupReplication } from '../relay/setup/setup.js';
import { startRelay, type RunningRelay } from '../relay/ops/daemon.js';

const TYPES = `
  CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
  CREATE TYPE mood AS ENUM ('happy', 'sad');
`;

/** The same columns, re-typed as text, then the types dropped: the DDL of a migration away from them. */
const RETYPE_AND_DROP = `
  ALTER TABLE history ALTER COLUMN p TYPE text, ALTER COLUMN pa TYPE text, ALTER COLUMN m TYPE text, ALTER COLUMN ma TYPE text;
  DROP DOMAIN posint;
  DROP TYPE mood;
`;

const TYPED_ROW = { id: 1, p: 7, pa: [1, 2], m: 'happy', ma: ['happy', 'sad'] };
const TEXT_ROW = { id: 2, p: '8', pa: '{3}', m: 'sad', ma: '{sad}' };

for (const flavor of PG_FLAVORS) {
  describe(`type history on ${flavor}`, () => {
    let pg: TestPostgres;
    let redis: TestRedis;
    let client: Redis;
    let relay: RunningRelay | null = null;
    let logs = '';

    const config = (slot: string) => parseConfig({
      source: { url: pg.url, slot, publication: slot },
      sinks: [{ type: 'redis', url: redis.url, stream: `${slot}:{schema}.{table}`, timeoutSeconds: 3 }], // a hung Redis is given up on (and the session's batch abandoned) quickly
    }, {});

    /** Starts the relay with its log captured, and returns once it streams (a marker row went through). */
    async function startStreaming(slot: string): Promise<RunningRelay> {
      const logger = pino({ level: 'info' }, new Writable({ write(chunk, _encoding, done) { logs += chunk; done(); } }));
      await setupReplication(config(slot), logger);
      const running = await startRelay(config(slot), logger);
      const marker = await pg.query(`INSERT INTO ready DEFAULT VALUES RETURNING id`);
      await waitFor(async () => (await readStream(client, `${slot}:public.ready`)).some((event) => event.new?.id === marker[0].id),
        { what: 'the relay to stream', timeoutMs: 30_000 });
      return running;
    }

    before(async () => {
      [pg, redis] = await Promise.all([startPostgres(flavor), startRedis()]);
      client = redis.client();
      await pg.query('CREATE TABLE ready (id serial PRIMARY KEY)');
    });

    afterEach(async () => {
      await relay?.stop();
      relay = null;
      await pg.query('DROP TABLE IF EXISTS history; DROP DOMAIN IF EXISTS posint CASCADE; DROP TYPE IF EXISTS mood CASCADE');
    });

    after(async () => {
      client?.disconnect();
      await Promise.all([pg?.stop(), redis?.stop()]);
    });

    it('decodes a change by the types of its time although the same transaction then re-typed the columns and dropped the types', async () => {
      await pg.query(`${TYPES} CREATE TABLE history (id int PRIMARY KEY, p posint, pa posint[], m mood, ma mood[])`);
      relay = await startStreaming('lagging');
      // The relay sees the Relation message of the first insert only after the
      // commit, when the types are gone from pg_type.
      await pg.query(`BEGIN;
        INSERT INTO history VALUES (1, 7, '{1,2}', 'happy', '{happy,sad}');
        ${RETYPE_AND_DROP}
        INSERT INTO history VALUES (2, '8', '{3}', 'sad', '{sad}');
        COMMIT;`);
      await waitForStreamLength(client, 'lagging:public.history', 2);
      const [typed, text] = await readStream(client, 'lagging:public.history');
      assert.deepEqual(typed.new, TYPED_ROW, 'written while the columns were posint, posint[], mood, mood[]');
      assert.deepEqual(text.new, TEXT_ROW, 'written after the columns became text');
    });

    it('keeps what it learned across a reconnect, for changes it must decode again after the types were dropped', async () => {
      await pg.query(`${TYPES} CREATE TABLE history (id int PRIMARY KEY, p posint, pa posint[], m mood, ma mood[])`);
      relay = await startStreaming('reconnect');
      await pg.query(`INSERT INTO history VALUES (1, 7, '{1,2}', 'happy', '{happy,sad}')`);
      await waitForStreamLength(client, 'reconnect:public.history', 1);
      // Redis hangs (SIGSTOP): the next change is decoded but not delivered,
      // so not confirmed. Meanwhile the types go, and the replication
      // connection is cut: the new session decodes the change again.
      const redisPid = Number(/process_id:(\d+)/.exec(await client.info('server'))![1]);
      process.kill(redisPid, 'SIGSTOP');
      try {
        await pg.query(`INSERT INTO history VALUES (3, 9, '{4}', 'sad', '{sad,happy}')`);
        await pg.query(RETYPE_AND_DROP);
        const walsender = `SELECT pid FROM pg_stat_replication WHERE application_name = 'walrelay'`;
        const [old] = await pg.query(walsender);
        await pg.query('SELECT pg_terminate_backend($1)', [old.pid]);
        await waitFor(async () => (await pg.query(walsender)).some((row) => row.pid !== old.pid),
          { what: 'the relay to reconnect', timeoutMs: 30_000 });
      } finally {
        process.kill(redisPid, 'SIGCONT');
      }
      // The change may arrive twice (from the old session and the new one): every copy decodes alike.
      await waitFor(async () => (await readStream(client, 'reconnect:public.history')).filter((event) => event.new?.id === 3).length >= 1,
        { what: 'the change made before the DDL', timeoutMs: 30_000 });
      await pg.query(`INSERT INTO history VALUES (4, '1', '{1}', 'happy', '{happy}')`);
      await waitFor(async () => (await readStream(client, 'reconnect:public.history')).some((event) => event.new?.id === 4),
        { what: 'the change made after the DDL', timeoutMs: 30_000 });
      const events = await readStream(client, 'reconnect:public.history');
      const copies = events.filter((event) => event.new?.id === 3);
      for (const copy of copies) assert.deepEqual(copy.new, { id: 3, p: 9, pa: [4], m: 'sad', ma: ['sad', 'happy'] });
      assert.deepEqual(events.find((event) => event.new?.id === 4)!.new, { id: 4, p: '1', pa: '{1}', m: 'happy', ma: '{happy}' });
    });

    it('decodes a type it never learned by its Type message: a domain by its base type, exactly; an array as text, with a warning', async () => {
      // The relay is not running while the types are created, used and
      // dropped: as after a restart, nothing but the Type messages is left.
      await setupReplication(config('restarted'), pino({ level: 'silent' }));
      await pg.query(`${TYPES} CREATE TABLE history (id int PRIMARY KEY, p posint, pa posint[], m mood, ma mood[])`);
      await pg.query(`INSERT INTO history VALUES (1, 7, '{1,2}', 'happy', '{happy,sad}')`);
      await pg.query(RETYPE_AND_DROP);
      logs = '';
      relay = await startStreaming('restarted');
      await waitForStreamLength(client, 'restarted:public.history', 1);
      const [event] = await readStream(client, 'restarted:public.history');
      assert.deepEqual(event.new, { id: 1, p: 7, pa: '{1,2}', m: 'happy', ma: '{happy,sad}' });
      for (const name of ['public._posint', 'public._mood']) {
        assert.ok(logs.split('\n').some((line) => line.includes('"level":40') && line.includes(name) && /TYPE_UNKNOWN/.test(line)),
          `a warning names ${name}; logs:\n${logs}`);
      }
      assert.ok(!/public\.mood\b[^"]*TYPE_UNKNOWN/.test(logs), 'an enum decodes as text whatever happened to it: no warning');
    });
  });
}
