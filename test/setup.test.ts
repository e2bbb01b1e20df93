// Setup for a least-privilege role: --print-sql gives the DBA what to run,
// setup checks privileges before changing anything and names the fix, is
// idempotent with partitioned tables, and PostgreSQL errors reach the operator
// with a code and a hint.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { writeConfig, runCli, spawnRelay } from './harness/relay.js';
import { controlKeyTableSql } from '../relay/route/control-message.js';
import { checkServerVersion } from '../relay/setup/preflight.js';
import { fromPgError } from '../relay/setup/pg-errors.js';
import type { WalrelayError } from '../relay/errors.js';

describe('server version and error translation', () => {
  it('refuses PostgreSQL older than 14 with a code and a hint', () => {
    assert.throws(() => checkServerVersion(130011, '13.11'), (error: WalrelayError) =>
      error.code === 'PG_VERSION_UNSUPPORTED' && /13\.11/.test(error.message) && /14 or newer/.test(error.hint ?? ''));
    assert.doesNotThrow(() => checkServerVersion(140000, '14.0'));
  });

  it('maps SQLSTATEs and network errors to codes with hints', () => {
    const cases: [Record<string, string>, string, boolean][] = [
      [{ code: '42501' }, 'PERMISSION_DENIED', false],
      [{ code: '28P01' }, 'SOURCE_AUTH', false],
      [{ code: '3D000' }, 'DATABASE_MISSING', false],
      [{ code: '42P01' }, 'TABLE_MISSING', false],
      [{ code: '55006' }, 'OBJECT_IN_USE', true],
      [{ code: '53300' }, 'TOO_MANY_CONNECTIONS', true],
      [{ code: '42601' }, 'SQL_ERROR', false],
      [{ code: 'ECONNREFUSED' }, 'SOURCE_UNREACHABLE', true],
    ];
    for (const [fields, code, retriable] of cases) {
      const error = fromPgError(Object.assign(new Error('boom'), fields), 'doing it');
      assert.equal(error.code, code, JSON.stringify(fields));
      assert.equal(error.retriable, retriable, code);
      assert.ok(error.hint, `${code} has a hint`);
      assert.match(error.message, /^doing it: boom/);
    }
  });
});

describe('setup --print-sql', () => {
  it('prints the grants and the publication for the configured role, database and tables, offline', async () => {
    const file = writeConfig({
      source: { url: 'postgres://relay:pw@127.0.0.1:1/shop', publication: 'feed', slot: 'feed_slot', tables: ['public.orders', 'sales.Invoices'], publishViaPartitionRoot: true },
      sinks: [{ type: 'stdout' }],
    });
    const result = await runCli(['setup', '--print-sql', '-c', file]);
    assert.equal(result.code, 0, result.stderr);
    const statements = result.stdout.split('\n').filter((line) => !line.startsWith('--'));
    // The key table of control messages (docs/security.md), created only when missing.
    const controlKeyBlock = controlKeyTableSql();
    assert.deepEqual(statements, [
      'ALTER ROLE relay REPLICATION;',
      'GRANT CONNECT ON DATABASE shop TO relay;',
      'CREATE PUBLICATION feed FOR TABLE public.orders, sales."Invoices" WITH (publish_via_partition_root = true);',
      ...controlKeyBlock,
      'GRANT USAGE ON SCHEMA public TO relay;',
      'GRANT USAGE ON SCHEMA sales TO relay;',
      'GRANT SELECT, UPDATE ON public.orders, sales."Invoices" TO relay;',
      '',
    ]);
    assert.match(result.stdout, /superuser/);
    assert.match(result.stdout, /feed_slot/);
  });
});

for (const flavor of PG_FLAVORS) {
  describe(`setup as a least-privilege role (${flavor})`, () => {
    let server: TestPostgres;
    const roleUrl = (role: string) => server.url.replace('postgres@', `${role}:pw@`);
    const config = (role: string, source: Record<string, unknown>) =>
      writeConfig({ source: { url: roleUrl(role), ...source }, sinks: [{ type: 'stdout' }] });

    before(async () => {
      server = await startPostgres(flavor);
      await server.query(`
        CREATE ROLE relay LOGIN PASSWORD 'pw';
        CREATE TABLE orders (id int PRIMARY KEY, status text);
        CREATE TABLE customers (id int PRIMARY KEY, name text);
        INSERT INTO orders VALUES (1, 'new'), (2, 'paid');
        CREATE TABLE parted (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
        CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
        CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');`);
    });

    after(async () => {
      await server?.stop();
    });

    it('stops before changing anything when the role may not create the publication, naming the SQL', async () => {
      await server.query('ALTER ROLE relay REPLICATION');
      const file = config('relay', { tables: ['public.orders'], slot: 'lp_slot', publication: 'lp_pub' });
      const result = await runCli(['setup', '-c', file]);
      assert.equal(result.code, 1, result.stdout);
      assert.match(result.stderr, /PUBLICATION_PRIVILEGE: cannot create publication lp_pub: relay lacks CREATE on database postgres; relay does not own public\.orders/);
      assert.match(result.stderr, /CREATE PUBLICATION lp_pub FOR TABLE public\.orders;/);
      assert.match(result.stderr, /--print-sql/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
      assert.equal((await server.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'lp_slot'`)).length, 0, 'no slot was created');
    });

    it('works as the role once a superuser ran the --print-sql output, and again (idempotent)', async () => {
      const file = config('relay', { tables: ['public.orders', 'public.customers'], slot: 'lp_slot', publication: 'lp_pub', snapshot: 'initial' });
      const sql = await runCli(['setup', '--print-sql', '-c', file]);
      assert.equal(sql.code, 0, sql.stderr);
      await server.query('ALTER ROLE relay NOREPLICATION');
      await server.query(sql.stdout);
      const first = await runCli(['setup', '-c', file]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /publication lp_pub exists/);
      assert.match(first.stdout, /created replication slot lp_slot/);
      assert.match(first.stdout, /public\.orders: 2 rows, done/);
      const second = await runCli(['setup', '-c', file]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /replication slot lp_slot exists/);
      const status = await runCli(['status', '--json', '-c', file]);
      assert.equal(status.code, 0, status.stderr);
      assert.deepEqual(JSON.parse(status.stdout).publicationTables, ['public.customers', 'public.orders']);
      const teardown = await runCli(['teardown', '-c', file]);
      assert.equal(teardown.code, 0, teardown.stderr);
      assert.match(teardown.stdout, /kept publication lp_pub/);
    });

    it('names a table of source.tables that does not exist, instead of a publication ownership error', async () => {
      const file = config('relay', { tables: ['public.orders', 'public.ordres'], slot: 'lp_slot', publication: 'lp_pub' });
      const result = await runCli(['setup', '-c', file]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /TABLE_MISSING: table public\.ordres does not exist/);
      assert.doesNotMatch(result.stderr, /must be owner/);
    });

    it('gives the ALTER PUBLICATION for its owner when the existing publication lacks a configured table', async () => {
      await server.query('CREATE TABLE extra (id int PRIMARY KEY); GRANT SELECT, UPDATE ON extra TO relay');
      const file = config('relay', { tables: ['public.orders', 'public.extra'], slot: 'lp_slot', publication: 'lp_pub' });
      const result = await runCli(['setup', '-c', file]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /PUBLICATION_MISMATCH: publication lp_pub does not match the configuration: it does not publish public\.extra/);
      assert.match(result.stderr, /ALTER PUBLICATION lp_pub ADD TABLE public\.extra;/);
      assert.equal((await server.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'lp_slot'`)).length, 0);
    });

    it('checks backfill privileges before creating the slot of snapshot: initial', async () => {
      await server.query(`CREATE PUBLICATION ro_pub FOR TABLE orders; REVOKE UPDATE ON orders FROM relay`);
      const file = config('relay', { tables: ['public.orders'], slot: 'ro_slot', publication: 'ro_pub', snapshot: 'initial' });
      const result = await runCli(['setup', '-c', file]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /BACKFILL_PRIVILEGE: role relay may not backfill public\.orders/);
      assert.match(result.stderr, /GRANT SELECT, UPDATE ON public\.orders TO relay;/);
      assert.equal((await server.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'ro_slot'`)).length, 0, 'no slot without its snapshot');
      await server.query('GRANT UPDATE ON orders TO relay');
    });

    for (const viaRoot of [false, true]) {
      it(`is idempotent with a partitioned table (publishViaPartitionRoot: ${viaRoot})`, async () => {
        const names = { slot: `parted_${viaRoot}`, publication: `parted_${viaRoot}` };
        const file = writeConfig({ source: { url: server.url, tables: ['public.parted', 'public.orders'], publishViaPartitionRoot: viaRoot, ...names }, sinks: [{ type: 'stdout' }] });
        const first = await runCli(['setup', '-c', file]);
        assert.equal(first.code, 0, first.stderr);
        const second = await runCli(['setup', '-c', file]);
        assert.equal(second.code, 0, second.stderr);
        assert.doesNotMatch(second.stdout, /added/);
        assert.match(second.stdout, /replication slot .* exists/);
        assert.equal((await runCli(['teardown', '-c', file])).code, 0);
      });
    }

    it('accepts a partition whose partitioned table is published', async () => {
      await server.query('CREATE PUBLICATION root_pub FOR TABLE parted');
      const file = writeConfig({ source: { url: server.url, tables: ['public.parted_eu'], publication: 'root_pub', slot: 'root_slot' }, sinks: [{ type: 'stdout' }] });
      const result = await runCli(['setup', '-c', file]);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stdout, /added/);
      assert.equal((await runCli(['teardown', '-c', file])).code, 0);
    });

    it('warns in validate and at run start about sink patterns that match no published table', async () => {
      const names = { publication: 'cov_pub', slot: 'cov_slot', tables: ['public.orders', 'public.customers'] };
      const good = writeConfig({ source: { url: server.url, ...names }, sinks: [{ type: 'stdout', tables: ['public.*'] }] });
      assert.equal((await runCli(['setup', '-c', good])).code, 0);
      const clean = await runCli(['validate', '-c', good]);
      assert.equal(clean.code, 0, clean.stderr);
      assert.doesNotMatch(clean.stdout, /warning|note/);
      assert.match(clean.stdout, /checked against PostgreSQL at 127\.0\.0\.1:\d+: tables, patterns and column policies match/);

      const typo = writeConfig({
        source: { url: server.url, ...names, tables: ['public.orders', 'public.custmers'] },
        sinks: [{ type: 'stdout', name: 'out', tables: ['public.ordrs', 'public.*', '*.audit_log'] }],
      });
      const validate = await runCli(['validate', '-c', typo]);
      assert.equal(validate.code, 0, validate.stderr);
      assert.match(validate.stdout, /warning: source\.tables: table public\.custmers does not exist/);
      assert.match(validate.stdout, /warning: sinks\[0\]\.tables: "public\.ordrs" matches no table of publication cov_pub \(published: public\.customers, public\.orders\); sink out receives nothing for it/);
      assert.match(validate.stdout, /"\*\.audit_log" matches no table/);
      assert.doesNotMatch(validate.stdout, /"public\.\*" matches/);

      const relay = spawnRelay(typo);
      try {
        await relay.waitForLog(/sinks\[0\]\.tables: \\"public\.ordrs\\" matches no table/);
        await relay.waitForLog(/"msg":"streaming"/);
      } finally {
        relay.signal('SIGTERM');
      }
      assert.equal(await relay.exited, 0);
      assert.equal((await runCli(['teardown', '-c', good])).code, 0);
    });

    it('says when validate could not reach PostgreSQL, and still exits 0', async () => {
      const result = await runCli(['validate', '-c', writeConfig({ source: { url: 'postgres://u@127.0.0.1:1/app' }, sinks: [{ type: 'stdout' }] })]);
      assert.equal(result.code, 0);
      assert.match(result.stdout, /note: tables and patterns not checked against PostgreSQL/);
    });

    it('gives connection and permission errors of every command a code and a hint', async () => {
      const missingDb = writeConfig({ source: { url: server.url.replace(/\/postgres$/, '/nosuchdb') }, sinks: [{ type: 'stdout' }] });
      for (const command of ['setup', 'status', 'teardown']) {
        const result = await runCli([command, '-c', missingDb]);
        assert.equal(result.code, 1, command);
        assert.match(result.stderr, /DATABASE_MISSING: .*database "nosuchdb" does not exist.*; check the database name in source\.url/, command);
      }
      await server.query('CREATE ROLE stranger LOGIN');
      const stranger = writeConfig({ source: { url: roleUrl('stranger'), slot: 'lp_slot', publication: 'lp_pub' }, sinks: [{ type: 'stdout' }] });
      const setup = await runCli(['setup', '-c', stranger]);
      assert.match(setup.stderr, /NO_REPLICATION_PRIVILEGE: role stranger lacks the REPLICATION privilege; .*ALTER ROLE "stranger" REPLICATION/);
      const backfill = await runCli(['backfill', '-c', stranger, '--state', `${server.dataDir}/../bf.json`, 'public.orders']);
      assert.equal(backfill.code, 1);
      assert.match(backfill.stderr, /BACKFILL_PRIVILEGE: role stranger may not backfill public\.orders.*GRANT SELECT, UPDATE ON public\.orders TO stranger;/);
    });
  });
}
