// Column policies per sink: a dropped column never leaves walrelay, a hashed
// one is a keyed HMAC (joins still work), a masked one is "****" — in every
// format (walrelay, debezium, cloudevents), in old rows, and in backfill
// "read" events; dropping a key column is refused before anything streams.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { CLI, writeConfig, runCli, readStream, waitForStreamLength } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { freePort } from './harness/ports.js';
import { WebSocket } from 'ws';
import { parseLsn } from '../relay/lsn.js';

const HASH_KEY = 'test-hash-key';
/** The key comes from the environment here; `columnHashKey` in the file works too. */
const hashEnv = { WALRELAY_COLUMN_HASH_KEY: HASH_KEY };
const hmac = (text: string) => createHmac('sha256', HASH_KEY).update(text).digest('hex');
const policy = { 'public.users.ssn': 'drop', 'public.users.email': 'hash', 'public.users.note': 'mask' };

describe('column policies (PostgreSQL 15, Redis, stdout, websocket)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let relay: ChildProcess | undefined;
  let stdout = '';
  let configFile: string;
  let socket: WebSocket | undefined;
  const frames: any[] = [];

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    client = redis.client();
    const wsPort = await freePort();
    await pgServer.query(`
      CREATE TABLE users (id int PRIMARY KEY, email text, ssn text, note text, big text);
      ALTER TABLE users REPLICA IDENTITY FULL;
      INSERT INTO users VALUES (1, 'old@example.com', '111-11-1111', 'existing', 'x');`);
    configFile = writeConfig({
      source: { url: pgServer.url, tables: ['public.users'] },
      sinks: [
        { type: 'redis', url: redis.url, columns: policy },
        { type: 'redis', url: redis.url, stream: 'dbz:{schema}.{table}', format: 'debezium', columns: policy },
        { type: 'redis', url: redis.url, stream: 'raw:{schema}.{table}' },
        { type: 'stdout', format: 'cloudevents', columns: { 'public.*.ssn': 'drop', 'public.users.e*': 'hash', '*.users.note': 'mask' } },
        { type: 'websocket', port: wsPort, auth: 'none', columns: policy },
      ],
    });
    assert.equal((await runCli(['setup', '-c', configFile], hashEnv)).code, 0);
    relay = spawn(process.execPath, [CLI, 'run', '-c', configFile], { env: { ...process.env, ...hashEnv, WALRELAY_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let logs = '';
    relay.stdout!.on('data', (chunk) => { stdout += chunk; });
    relay.stderr!.on('data', (chunk) => { logs += chunk; });
    await waitFor(() => /"msg":"streaming"/.test(logs), { what: `the relay streaming (logs: ${logs})` });
    socket = new WebSocket(`ws://127.0.0.1:${wsPort}/`);
    socket.on('message', (data) => frames.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => { socket!.once('open', resolve); socket!.once('error', reject); });
    socket.send(JSON.stringify({ type: 'subscribe', id: 's', table: 'public.users' }));
    await waitFor(() => frames.some((frame) => frame.type === 'subscribed'), { what: 'the websocket subscription' });
  });

  after(async () => {
    socket?.terminate();
    relay?.kill('SIGKILL');
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('drops, hashes and masks columns of streamed changes in every format, old rows included', async () => {
    await pgServer.query(`INSERT INTO users VALUES (2, 'ann@example.com', '222-22-2222', 'secret note', 'y')`);
    await pgServer.query(`UPDATE users SET email = 'ann@example.org' WHERE id = 2`);
    await pgServer.query(`DELETE FROM users WHERE id = 2`);
    await waitForStreamLength(client, 'walrelay:public.users', 3);
    const [insert, update, remove] = await readStream(client, 'walrelay:public.users');
    assert.deepEqual(insert.new, { id: 2, email: hmac('ann@example.com'), note: '****', big: 'y' });
    assert.deepEqual(insert.key, { id: 2 });
    assert.deepEqual(update.old, { id: 2, email: hmac('ann@example.com'), note: '****', big: 'y' });
    assert.deepEqual(update.new, { id: 2, email: hmac('ann@example.org'), note: '****', big: 'y' });
    assert.deepEqual(remove.old, { id: 2, email: hmac('ann@example.org'), note: '****', big: 'y' });
    assert.equal(insert.lsn.length > 0 && insert.commitLsn !== null, true, 'the rest of the event is intact');

    await waitForStreamLength(client, 'dbz:public.users', 3);
    // Debezium's Redis layout: field = key JSON, value = value JSON; a delete's tombstone has the value "default".
    const debezium = (await client.xrange('dbz:public.users', '-', '+')).filter(([, fields]) => fields[1] !== 'default').map(([, fields]) => JSON.parse(fields[1]));
    assert.deepEqual(debezium[0].after, { id: 2, email: hmac('ann@example.com'), note: '****', big: 'y' });
    assert.deepEqual(debezium[1].before, { id: 2, email: hmac('ann@example.com'), note: '****', big: 'y' });
    assert.equal(JSON.stringify(debezium).includes('222-22-2222'), false);

    await waitFor(() => stdout.split('\n').filter(Boolean).length >= 3, { what: 'three stdout lines' });
    const cloud = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
    assert.deepEqual(cloud[0].data.new, { id: 2, email: hmac('ann@example.com'), note: '****', big: 'y' });
    assert.equal(stdout.includes('222-22-2222'), false, 'the ssn never reaches stdout');
    assert.equal(stdout.includes('secret note'), false);

    await waitFor(() => frames.filter((frame) => frame.type === 'change').length >= 3, { what: 'three websocket changes' });
    const changes = frames.filter((frame) => frame.type === 'change').map((frame) => frame.event);
    assert.deepEqual(changes[0].new, { id: 2, email: hmac('ann@example.com'), note: '****', big: 'y' });
    assert.deepEqual(changes[2].old, { id: 2, email: hmac('ann@example.org'), note: '****', big: 'y' });

    // A sink without policies still gets the whole row.
    const [raw] = await readStream(client, 'raw:public.users');
    assert.equal(raw.new!.ssn, '222-22-2222');
  });

  it('applies the policies to backfill read events', async () => {
    const backfill = await runCli(['backfill', '-c', configFile, 'public.users'], hashEnv);
    assert.equal(backfill.code, 0, backfill.stderr);
    await waitForStreamLength(client, 'walrelay:public.users', 4);
    const read = (await readStream(client, 'walrelay:public.users')).find((event) => event.op === 'read')!;
    assert.deepEqual(read.new, { id: 1, email: hmac('old@example.com'), note: '****', big: 'x' });
    await waitFor(() => stdout.includes('"type":"io.walrelay.read"'), { what: 'the read event on stdout' });
    assert.equal(stdout.includes('111-11-1111'), false);
    await waitForStreamLength(client, 'dbz:public.users', 4);
    assert.equal(JSON.stringify(await client.xrange('dbz:public.users', '-', '+')).includes('111-11-1111'), false);
  });

  it('refuses a policy that drops a key column, naming it (exit 2)', async () => {
    const file = writeConfig({ source: { url: pgServer.url, slot: 'other', tables: ['public.users'] }, sinks: [{ type: 'stdout', columns: { 'public.users.id': 'drop' } }] });
    const run = await runCli(['run', '-c', file]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /COLUMN_POLICY_DROPS_KEY.*sinks\[0\]\.columns.*key column id of public\.users/);
    const validate = await runCli(['validate', '-c', file]);
    assert.equal(validate.code, 2, `validate catches it too: ${validate.stdout}${validate.stderr}`);
    assert.match(validate.stderr, /COLUMN_POLICY_DROPS_KEY/);
  });

  it('refuses a hash policy without a key (exit 2)', async () => {
    const file = writeConfig({ source: { url: pgServer.url }, sinks: [{ type: 'stdout', columns: { 'public.users.email': 'hash' } }] });
    const validate = await runCli(['validate', '-c', file]);
    assert.equal(validate.code, 2);
    assert.match(validate.stderr, /sinks\[0\]\.columns: a hash policy needs a key/);
    assert.equal((await runCli(['validate', '-c', file], { WALRELAY_COLUMN_HASH_KEY: 'k' })).code, 0);
  });
});

describe('column policies: a key dropped on a table published later (PostgreSQL 18)', () => {
  let pgServer: TestPostgres;

  before(async () => {
    pgServer = await startPostgres('pg18');
  });

  after(async () => {
    await pgServer?.stop();
  });

  it('stops with COLUMN_POLICY_DROPS_KEY (exit 2) on its first event and confirms nothing past it', async () => {
    // ALL TABLES: the table does not exist when walrelay starts, so the startup check cannot see it.
    const file = writeConfig({ source: { url: pgServer.url }, sinks: [{ type: 'stdout', columns: { 'public.late.id': 'drop' } }] });
    assert.equal((await runCli(['setup', '-c', file])).code, 0);
    const child = spawn(process.execPath, [CLI, 'run', '-c', file], { env: { ...process.env, WALRELAY_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => { stdout += chunk; });
    child.stderr!.on('data', (chunk) => { stderr += chunk; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let beforeInsert = 0n;
    try {
      await waitFor(() => /"msg":"streaming"/.test(stderr), { what: `the relay streaming (logs: ${stderr})` });
      await pgServer.query(`CREATE TABLE late (id int PRIMARY KEY, v text)`);
      const [{ lsn }] = await pgServer.query(`SELECT pg_current_wal_insert_lsn()::text AS lsn`); // the harness may commit asynchronously
      beforeInsert = parseLsn(lsn);
      await pgServer.query(`INSERT INTO late VALUES (1, 'a')`);
      assert.equal(await exited, 2, stderr);
    } finally {
      child.kill('SIGKILL');
    }
    assert.match(stderr, /COLUMN_POLICY_DROPS_KEY/);
    assert.match(stderr, /key column id of public\.late/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    assert.equal(stdout, '', 'nothing of the table was written');
    const [{ lsn: after }] = await pgServer.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'walrelay'`);
    assert.ok(parseLsn(after) <= beforeInsert, `the slot did not move past the refused change (confirmed ${after}, insert after ${beforeInsert.toString(16)})`);
  });
});
