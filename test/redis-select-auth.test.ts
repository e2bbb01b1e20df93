// A Redis connection whose AUTH or SELECT fails is no connection (issue 24, 3).
// It used to keep the socket: the next write took the fast path and appended
// into database 0 (the server's default) while the LSN was confirmed. Both
// cases against a real redis-server: a database the server does not have
// (databases 16, url …/99), and a password changed on the server after the
// relay connected, then the relay's connection killed so that it must log in
// again. Nothing may land in database 0, the relay stops with a code naming
// the cause, and the slot is not confirmed past the change.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { readStream, runCli, startRelayInProcess, waitForStreamLength, writeConfig } from './harness/relay.js';
import { WalrelayError } from '../relay/errors.js';
import type { RunningRelay } from '../relay/ops/daemon.js';
import { confirmedFlush, walInsertLsn } from './harness/slot.js';

/** Resolves with the error the relay stopped with; fails when it does not stop within `ms`. */
async function stoppedWith(relay: RunningRelay, ms: number): Promise<WalrelayError> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the relay did not stop within ${ms} ms`)), ms); });
  try {
    await Promise.race([relay.done, timeout]);
  } catch (error) {
    if (error instanceof WalrelayError) return error;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  throw new Error('the relay stopped without an error');
}

describe('redis: a failed SELECT or AUTH fails the connection (no fallback to database 0)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let admin: Redis;

  const confirmed = (slot: string) => confirmedFlush(pgServer, slot);
  const walNow = () => walInsertLsn(pgServer);

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis({ password: 'first secret', args: ['--databases', '16'] })]);
    admin = redis.client();
    await pgServer.query('CREATE TABLE sel (id int PRIMARY KEY); CREATE TABLE pw (id int PRIMARY KEY)');
  });
  after(async () => {
    admin?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('a database number the server does not have (…/99): REDIS_SELECT, nothing in database 0, nothing confirmed', async () => {
    const config = {
      source: { url: pgServer.url, slot: 'sel', publication: 'sel', tables: ['public.sel'] },
      sinks: [{ type: 'redis', url: `${redis.url}/99`, timeoutSeconds: 2 }],
    };
    assert.equal((await runCli(['setup', '-c', writeConfig(config)])).code, 0);
    const before = await walNow();
    await pgServer.query('INSERT INTO sel VALUES (1)');
    // Refused at start (the sink dials and pings there); had it started, the first write would have to stop it.
    const error = await startRelayInProcess(config).then((relay) => stoppedWith(relay, 20_000), (refused: unknown) => {
      if (refused instanceof WalrelayError) return refused;
      throw refused;
    });
    await pgServer.query('INSERT INTO sel VALUES (2)');
    assert.equal(error.code, 'REDIS_SELECT', error.describe());
    assert.match(error.describe(), /database 99/);
    assert.match(error.hint ?? '', /databases/);
    assert.equal(await admin.dbsize(), 0, 'nothing was written into database 0');
    assert.ok(await confirmed('sel') <= before, 'the insert is not confirmed');
  });

  it('a password changed on the server, then the connection killed: REDIS_AUTH, nothing more written, nothing confirmed', async () => {
    const relay = await startRelayInProcess({
      source: { url: pgServer.url, slot: 'pw', publication: 'pw', tables: ['public.pw'] },
      sinks: [{ type: 'redis', url: redis.url, timeoutSeconds: 2 }],
    });
    let stopped = false;
    try {
      await pgServer.query('INSERT INTO pw VALUES (1)');
      await waitForStreamLength(admin, 'walrelay:public.pw', 1);
      await admin.config('SET', 'requirepass', 'second secret');
      // Existing connections stay logged in; killing them makes the relay dial and AUTH again, with the old password.
      assert.ok(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')) >= 1);
      const before = await walNow();
      await pgServer.query('INSERT INTO pw VALUES (2)');
      const error = await stoppedWith(relay, 20_000);
      stopped = true;
      assert.equal(error.code, 'REDIS_AUTH', error.describe());
      assert.match(error.hint ?? '', /password/);
      const admin2 = new Redis({ host: '127.0.0.1', port: redis.port, password: 'second secret' });
      try {
        assert.deepEqual((await readStream(admin2, 'walrelay:public.pw')).map((event) => event.new), [{ id: 1 }]);
        assert.deepEqual(await admin2.keys('*'), ['walrelay:public.pw']);
      } finally {
        admin2.disconnect();
      }
      assert.ok(await confirmed('pw') <= before, 'the second insert is not confirmed');
    } finally {
      if (!stopped) await relay.stop().catch(() => undefined);
      await admin.config('SET', 'requirepass', 'first secret').catch(() => undefined);
    }
  });
});
