// The README's Quick start, run as written: its SQL and YAML blocks are read
// from README.md itself, so the README and this test cannot drift apart. The
// server checks passwords (scram-sha-256) for every role but the superuser the
// test prepares it with, and walrelay runs as the non-superuser role the
// Quick start creates.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { runCli, spawnRelay, readStream, waitForStreamLength } from './harness/relay.js';
import { freePort } from './harness/ports.js';

const README = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'README.md');

interface QuickStart {
  sql: string[];
  yaml: string;
  commands: string[][];
  stream: string;
}

/** The fenced blocks of the Quick start section, by language. */
function readQuickStart(): QuickStart {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('## Quick start');
  assert.ok(start >= 0, 'README has a Quick start section');
  const end = text.indexOf('\n## ', start + 1);
  const section = text.slice(start, end);
  const blocks = [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```/gm)].map((match) => ({ lang: match[1], body: match[2] }));
  const shell = blocks.filter((block) => block.lang === 'sh').map((block) => block.body).join('\n');
  const commands = shell.split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line.startsWith('node dist/relay/cli.js '))
    .map((line) => line.slice('node dist/relay/cli.js '.length).split(/\s+/));
  const stream = /redis-cli XRANGE (\S+)/.exec(shell)?.[1];
  assert.ok(stream, 'the Quick start shows where the events are');
  return {
    sql: blocks.filter((block) => block.lang === 'sql').map((block) => block.body),
    yaml: blocks.find((block) => block.lang === 'yaml')!.body,
    commands,
    stream,
  };
}

/** Statements one by one: ALTER SYSTEM may not run inside the implicit transaction of a multi-statement query. */
/** The statements of a block, each ending with `;` at the end of a line (as psql runs them; a DO block holds `;` inside). */
function statements(sql: string): string[] {
  return sql.split('\n').map((line) => line.replace(/(^|\s)--.*$/, '').trim()).join('\n').split(/;\n/).map((part) => part.replace(/;$/, '').trim()).filter(Boolean);
}

for (const flavor of PG_FLAVORS) {
  describe(`README Quick start as written, for a non-superuser with a password (${flavor})`, () => {
    const quick = readQuickStart();
    let server: TestPostgres;
    let redis: TestRedis;
    let client: Redis;
    let app: pg.Client;
    let dir: string;
    let configFile: string;
    let yaml: string;

    before(async () => {
      [server, redis] = await Promise.all([startPostgres(flavor), startRedis()]);
      client = redis.client();
      // Passwords for everyone but the superuser this test prepares the server with.
      writeFileSync(join(server.dataDir, 'pg_hba.conf'), [
        'local all postgres trust',
        'host all postgres 127.0.0.1/32 trust',
        'host all all 127.0.0.1/32 scram-sha-256',
        'host replication all 127.0.0.1/32 scram-sha-256',
        '',
      ].join('\n'));
      await server.query('SELECT pg_reload_conf()');
      await server.query('CREATE DATABASE app');
      app = new pg.Client({ connectionString: server.url.replace(/\/postgres$/, '/app') });
      await app.connect();
      // The application's tables, owned by the superuser (not by walrelay's role).
      await app.query(`
        CREATE TABLE orders (id int PRIMARY KEY, status text);
        CREATE TABLE customers (id int PRIMARY KEY, name text);
        INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace')`);
      dir = mkdtempSync(join(tmpdir(), 'walrelay-quickstart-'));
      const httpPort = await freePort();
      yaml = quick.yaml
        .replace('127.0.0.1:5432', `127.0.0.1:${server.port}`)
        .replace('redis://127.0.0.1:6379', redis.url)
        .replace(/port: 9187/, `port: ${httpPort}`);
      configFile = join(dir, 'walrelay.yaml');
      writeFileSync(configFile, yaml);
    });

    after(async () => {
      await app?.end().catch(() => undefined);
      client?.disconnect();
      await Promise.all([server?.stop(), redis?.stop()]);
    });

    it('has the blocks the test runs', () => {
      assert.equal(quick.sql.length, 2, 'a superuser block and the --print-sql block');
      assert.deepEqual(quick.commands.map((command) => command[0]), ['setup', 'run', 'status', 'backfill']);
      assert.match(yaml, new RegExp(`:${server.port}/app`), 'the YAML names host and port as the test can replace them');
    });

    it('runs the superuser SQL, and the README shows exactly what --print-sql prints', async () => {
      for (const statement of statements(quick.sql[0])) await app.query(statement);
      const printed = await runCli(['setup', '--print-sql', '-c', configFile]);
      assert.equal(printed.code, 0, printed.stderr);
      assert.equal(printed.stdout.trim(), quick.sql[1].trim(), 'the README\'s second SQL block is the --print-sql output for its YAML');
      for (const statement of statements(quick.sql[1])) await app.query(statement);
      const role = (await app.query(`SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = 'walrelay'`)).rows[0];
      assert.deepEqual(role, { rolsuper: false, rolreplication: true });
    });

    it('refuses a wrong password (the server checks them) with a code and a hint', async () => {
      const wrong = join(dir, 'wrong.yaml');
      writeFileSync(wrong, yaml.replace('walrelay:secret@', 'walrelay:wrong@'));
      const result = await runCli(['setup', '-c', wrong]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /SOURCE_AUTH: .*password authentication failed for user "walrelay".*; check the user and password in source\.url/);
    });

    it('runs the commands of the Quick start as the walrelay role', async () => {
      const run = (command: string[]) => runCli(command.map((arg) => (arg === 'walrelay.yaml' ? configFile : arg)));
      const [setup, start, status, backfill] = quick.commands;
      const setupResult = await run(setup);
      assert.equal(setupResult.code, 0, setupResult.stderr);
      assert.match(setupResult.stdout, /publication walrelay exists/);
      assert.match(setupResult.stdout, /created replication slot walrelay/);

      assert.equal(start[0], 'run');
      const relay = spawnRelay(configFile);
      try {
        await relay.waitForLog(/"msg":"streaming"/);
        await app.query(`INSERT INTO orders VALUES (1, 'new')`);
        await waitForStreamLength(client, quick.stream, 1);
        const [event] = await readStream(client, quick.stream);
        assert.deepEqual([event.op, event.new], ['insert', { id: 1, status: 'new' }]);

        const statusResult = await run(status);
        assert.equal(statusResult.code, 0, statusResult.stderr);
        assert.match(statusResult.stdout, /active:\s+true/);

        const backfillResult = await run(backfill);
        assert.equal(backfillResult.code, 0, backfillResult.stderr);
        assert.match(backfillResult.stdout, /public\.customers: 2 rows, done/);
        await waitForStreamLength(client, 'walrelay:public.customers', 2);
        const reads = await readStream(client, 'walrelay:public.customers');
        assert.deepEqual(reads.map((read) => [read.op, read.new]), [['read', { id: 1, name: 'Ada' }], ['read', { id: 2, name: 'Grace' }]]);
      } finally {
        relay.signal('SIGTERM');
      }
      assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    });
  });
}
