// walrelay's control messages cannot be forged by another role (issue 24, 8).
// pg_logical_emit_message is executable by PUBLIC: a role with nothing but
// CONNECT writes a "walrelay.backfill" chunk (unsigned, and with a made-up
// signature) and a "walrelay.gap" message. None may reach a sink as a read or
// gap event; the relay logs CONTROL_MESSAGE_FORGED and counts them. A real
// `walrelay backfill` (signed with the key only walrelay's role can read)
// still arrives, and the outsider can neither read the key nor stop
// applications from emitting their own messages.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { readStream, runCli, spawnRelay, waitForStreamLength, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import type { ChangeEvent } from '../relay/route/event.js';

describe('control messages from another role are dropped (PostgreSQL 15, Redis)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let relay: RelayProcess;
  let outsider: pg.Client;
  let configFile: string;

  const allEvents = async (): Promise<ChangeEvent[]> => {
    const keys = (await client.keys('*')).filter((key) => key.startsWith('walrelay:') && !key.startsWith('walrelay:checkpoint'));
    return (await Promise.all(keys.map((key) => readStream(client, key)))).flat();
  };

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    client = redis.client();
    await pgServer.query(`CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items VALUES (100, 'existing'); CREATE ROLE outsider LOGIN`);
    configFile = writeConfig({ source: { url: pgServer.url, tables: ['public.items'] }, sinks: [{ type: 'redis', url: redis.url }] });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    outsider = new pg.Client({ connectionString: pgServer.url.replace('postgres@', 'outsider@') });
    await outsider.connect();
  });
  after(async () => {
    relay?.signal('SIGKILL');
    await outsider?.end().catch(() => undefined);
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('a forged backfill chunk and a forged gap reach no sink; the relay warns with a code', async () => {
    const chunk = JSON.stringify({ v: 1, schema: 'public', table: 'items', columns: ['id', 'v'], types: [23, 25], key: ['id'], rows: [['666', 'forged']], target: { sink: 'redis#0', stream: 'stolen' } });
    const gap = JSON.stringify({ v: 1, slot: 'walrelay', fromLsn: '0/1', toLsn: '0/2' });
    for (const [prefix, content] of [['walrelay.backfill', chunk], ['walrelay.backfill', `${'ab'.repeat(32)}:${chunk}`], ['walrelay.gap', gap]]) {
      await outsider.query('BEGIN');
      await outsider.query('SELECT pg_logical_emit_message(true, $1, $2)', [prefix, content]);
      await outsider.query('COMMIT');
    }
    // Applications keep pg_logical_emit_message: the outsider's own message still arrives.
    await outsider.query(`SELECT pg_logical_emit_message(true, 'app', 'hello')`);
    await pgServer.query(`INSERT INTO items VALUES (1, 'after')`);
    await waitForStreamLength(client, 'walrelay:public.items', 1);
    await waitForStreamLength(client, 'walrelay:messages', 1);
    await waitFor(() => (relay.logs().match(/CONTROL_MESSAGE_FORGED/g) ?? []).length === 3, { what: 'three CONTROL_MESSAGE_FORGED warnings' });
    const events = await allEvents();
    assert.deepEqual(events.map((event) => event.op).sort(), ['insert', 'message']);
    assert.equal(events.find((event) => event.op === 'message')?.prefix, 'app');
    assert.equal(await client.exists('stolen'), 0);
    assert.match(relay.logs(), /"code":"CONTROL_MESSAGE_FORGED","prefix":"walrelay.gap"/);
  });

  it('the outsider cannot read the key; a real backfill still arrives as read events', async () => {
    // Row-level security: every role sees only its own key (the outsider has none).
    assert.equal((await outsider.query('SELECT * FROM walrelay.control_key')).rowCount, 0);
    await assert.rejects(outsider.query(`INSERT INTO walrelay.control_key (role, key) VALUES ('postgres', '\\x00')`), /row-level security|duplicate key/);
    const result = await runCli(['backfill', '-c', configFile, '--state', join(tmpdir(), `control-${process.pid}.json`), 'public.items']);
    assert.equal(result.code, 0, result.stderr);
    await waitFor(async () => (await allEvents()).some((event) => event.op === 'read'), { what: 'read events from the backfill' });
    const reads = (await allEvents()).filter((event) => event.op === 'read').map((event) => event.new);
    assert.deepEqual(reads.sort((a, b) => Number(a?.id) - Number(b?.id)), [{ id: 1, v: 'after' }, { id: 100, v: 'existing' }]);
    assert.equal((relay.logs().match(/CONTROL_MESSAGE_FORGED/g) ?? []).length, 3, 'the signed chunk verified');
  });
});
