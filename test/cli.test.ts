// The command line as an operator meets it: exit codes 0 / 1 / 2 and
// messages that name the key or the fix.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { execFileSync } from 'node:child_process';
import { writeConfig, runCli, CLI } from './harness/relay.js';

describe('configuration errors exit 2 and name the key path', () => {
  const base = { source: { url: 'postgres://u@127.0.0.1:1/app' }, sinks: [{ type: 'stdout' }] };

  it('accepts a valid file', async () => {
    const result = await runCli(['validate', '-c', writeConfig(base)]);
    assert.equal(result.code, 0, result.stderr);
  });

  it('names sinks[1].brokers when it is not a list of host:port', async () => {
    const file = writeConfig({ ...base, sinks: [{ type: 'stdout' }, { type: 'kafka', brokers: 'localhost' }] });
    const result = await runCli(['validate', '-c', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /sinks\[1\]\.brokers: expected an array of host:port strings/);
  });

  it('names a Redis URL that cannot be used (bad port, broken IPv6 brackets) at validate, not first at run', async () => {
    for (const [url, message] of [
      ['redis://127.0.0.1:notaport', /sinks\[0\]\.url: port "notaport" is not a TCP port number/],
      ['redis://127.0.0.1:99999', /sinks\[0\]\.url: port "99999" is not a TCP port number/],
      ['redis://[::1', /sinks\[0\]\.url: not a valid URL/],
    ] as const) {
      const result = await runCli(['validate', '-c', writeConfig({ ...base, sinks: [{ type: 'redis', url }] })]);
      assert.equal(result.code, 2, `${url}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    }
    const good = await runCli(['validate', '-c', writeConfig({ ...base, sinks: [{ type: 'redis', url: 'rediss://user:p%40ss@[::1]:6380/2' }] })]);
    assert.doesNotMatch(good.stderr, /sinks\[0\]\.url/, good.stderr);
  });

  it('rejects an unknown key by its path', async () => {
    const result = await runCli(['validate', '-c', writeConfig({ ...base, source: { ...base.source, slott: 'x' } })]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /source\.slott: unknown key/);
  });

  it('checks an edge configuration (a feed and websocket sinks, no source) as an edge\'s', async () => {
    const edge = { feed: { redis: { url: 'redis://127.0.0.1:1' }, name: 'walrelay.feed' }, sinks: [{ type: 'websocket', auth: 'none' }] };
    const valid = await runCli(['validate', '-c', writeConfig(edge)]);
    assert.equal(valid.code, 0, valid.stderr);
    assert.match(valid.stdout, /edge configuration is valid: 1 websocket sink\(s\), feed walrelay\.feed in Redis/);
    const typo = await runCli(['validate', '-c', writeConfig({ ...edge, feed: { ...edge.feed, catchUpRead: 2 } })]);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /feed\.catchUpRead: unknown key/);
  });

  it('reports a missing required key', async () => {
    const result = await runCli(['validate', '-c', writeConfig({ sinks: [{ type: 'stdout' }] })]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /source/);
  });

  it('reads YAML, WALRELAY_CONFIG and DATABASE_URL', async () => {
    const file = writeConfig({ source: { slot: 'from_file' }, sinks: [{ type: 'stdout' }] });
    const result = await runCli(['validate'], { WALRELAY_CONFIG: file, DATABASE_URL: 'postgres://u@127.0.0.1:1/app' });
    assert.equal(result.code, 0, result.stderr);
  });

  it('applies environment overrides and validates them like the file', async () => {
    const result = await runCli(['validate', '-c', writeConfig(base)], { WALRELAY_SOURCE__SLOT: 'Not A Slot' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /source\.slot:/);
    const ok = await runCli(['validate', '-c', writeConfig(base)], { WALRELAY_PIPELINE__BATCH_EVENTS: '100', WALRELAY_SINKS__0__FORMAT: 'debezium' });
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('exits 2 without a configuration file', async () => {
    const result = await runCli(['validate']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /WALRELAY_CONFIG/);
  });

  it('exits 2 on an unknown command', async () => {
    const result = await runCli(['frobnicate']);
    assert.equal(result.code, 2);
  });
});

describe('setup, status and teardown against PostgreSQL 15', () => {
  let logical: TestPostgres;
  let replica: TestPostgres;

  before(async () => {
    [logical, replica] = await Promise.all([startPostgres('pg15'), startPostgres('pg15', { wal_level: 'replica' })]);
    await logical.query('CREATE TABLE orders (id int PRIMARY KEY, status text); CREATE TABLE nokey (v int)');
  });

  after(async () => {
    await Promise.all([logical?.stop(), replica?.stop()]);
  });

  it("fails with the fix when wal_level is not logical", async () => {
    const file = writeConfig({ source: { url: replica.url }, sinks: [{ type: 'stdout' }] });
    const result = await runCli(['setup', '-c', file]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /wal_level is 'replica'; run ALTER SYSTEM SET wal_level = logical and restart PostgreSQL/);
  });

  it('refuses to run before setup, saying to run setup', async () => {
    const file = writeConfig({ source: { url: logical.url, slot: 'not_set_up' }, sinks: [{ type: 'stdout' }] });
    const result = await runCli(['run', '-c', file]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /walrelay setup/);
  });

  it('sets up idempotently, reports status as JSON, and tears down', async () => {
    const file = writeConfig({ source: { url: logical.url, tables: ['public.orders', 'public.nokey'] }, sinks: [{ type: 'stdout' }] });
    const first = await runCli(['setup', '-c', file]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /created publication walrelay/);
    assert.match(first.stdout, /created replication slot walrelay/);
    assert.match(first.stdout, /public\.nokey has no primary key/);
    const second = await runCli(['setup', '-c', file]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /replication slot walrelay exists/);

    await logical.query(`INSERT INTO orders VALUES (1, 'new')`);
    const status = await runCli(['status', '-c', file, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout);
    assert.equal(parsed.slot, 'walrelay');
    assert.equal(parsed.exists, true);
    assert.equal(parsed.active, false);
    assert.match(parsed.confirmedFlushLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.ok(parsed.lagBytes > 0, 'an unconsumed insert shows as lag');
    assert.equal(parsed.walStatus, 'reserved');
    assert.deepEqual(parsed.publicationTables, ['public.nokey', 'public.orders']);

    const text = await runCli(['status', '-c', file]);
    assert.match(text.stdout, /confirmed_flush_lsn:/);

    const teardown = await runCli(['teardown', '-c', file]);
    assert.equal(teardown.code, 0, teardown.stderr);
    assert.match(teardown.stdout, /dropped replication slot walrelay/);
    assert.match(teardown.stdout, /dropped publication walrelay/);
    const after = await runCli(['status', '-c', file, '--json']);
    assert.equal(after.code, 1);
    assert.equal(JSON.parse(after.stdout).exists, false);
  });
});

describe('output through a pipe', () => {
  it('config-schema prints all of its JSON into a pipe (nothing lost at exit)', () => {
    // More than a pipe holds (64 KiB): what the reader has not taken yet waits in walrelay, which must not exit before it is out.
    for (let run = 1; run <= 5; run++) {
      const json = execFileSync('sh', ['-c', `"${process.execPath}" "${CLI}" config-schema | cat`], { encoding: 'utf8', maxBuffer: 8 << 20 });
      assert.ok(json.length > 65_536, `run ${run}: ${json.length} bytes`);
      assert.doesNotThrow(() => JSON.parse(json), `run ${run}: the whole JSON arrived (${json.length} bytes)`);
    }
  });
});
