// Multi-host source.url and source.failoverSlot without a standby
// (docs/failover.md): a listed host that is down is passed over by setup,
// status, backfill and run; PostgreSQL 15 refuses failoverSlot: true with the
// fix and reports no failover under auto; PostgreSQL 18 turns FAILOVER on for
// an existing, idle slot and warns that synchronized_standby_slots is empty.
// A hung host listed first (every process of it stopped: connections are
// accepted by the kernel and never answered) costs status at most
// timeoutSeconds, and run does not wait for it a second time.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, runCli, spawnRelay, waitForStreamLength } from './harness/relay.js';
import { freePort } from './harness/ports.js';

describe('multi-host source.url and failoverSlot', () => {
  let pg15: TestPostgres;
  let pg18: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let deadPort: number;

  before(async () => {
    [pg15, pg18, redis] = await Promise.all([startPostgres('pg15'), startPostgres('pg18'), startRedis()]);
    client = redis.client();
    deadPort = await freePort(); // nothing listens there
  });

  after(async () => {
    client?.disconnect();
    await Promise.all([pg15?.stop(), pg18?.stop(), redis?.stop()]);
  });

  it('passes over a host that is down, for setup, status, backfill and run', async () => {
    await pg15.query('CREATE TABLE mh (id int PRIMARY KEY, note text); INSERT INTO mh VALUES (1, \'before\')');
    const config = writeConfig({
      source: { url: `postgres://postgres@127.0.0.1:${deadPort},127.0.0.1:${pg15.port}/postgres?sslmode=disable&target_session_attrs=read-write`, slot: 'mh', publication: 'mh', tables: ['public.mh'] },
      sinks: [{ type: 'redis', url: redis.url, stream: 'mh:{schema}.{table}' }],
    });
    const setup = await runCli(['setup', '-c', config]);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, new RegExp(`using 127.0.0.1:${pg15.port}, the primary`));
    assert.match(setup.stdout, /created replication slot mh \(pgoutput\)/, 'auto on PostgreSQL 15: no failover');
    const status = await runCli(['status', '--json', '-c', config]);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout);
    assert.deepEqual([parsed.host, parsed.failover, parsed.synchronizedStandbySlots], [`127.0.0.1:${pg15.port}`, false, null]);
    const relay = spawnRelay(config);
    await relay.waitForLog(/"msg":"streaming"/);
    const backfill = await runCli(['backfill', '-c', config, 'public.mh']);
    assert.equal(backfill.code, 0, backfill.stderr);
    await pg15.query(`INSERT INTO mh VALUES (2, 'after')`);
    await waitForStreamLength(client, 'mh:public.mh', 2);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0, relay.logs());
  });

  it('says why when no listed host can be used', async () => {
    const other = await freePort();
    const config = writeConfig({ source: { url: `postgres://postgres@127.0.0.1:${deadPort},127.0.0.1:${other}/postgres`, timeoutSeconds: 2 }, sinks: [{ type: 'stdout' }] });
    const status = await runCli(['status', '-c', config]);
    assert.equal(status.code, 1);
    assert.match(status.stderr, new RegExp(`NO_PRIMARY: no host of source.url is a primary walrelay can use: 127.0.0.1:${deadPort}: .*ECONNREFUSED.*; 127.0.0.1:${other}: `));
    assert.doesNotMatch(status.stderr, /\n\s+at /, 'no stack trace');
  });

  it('refuses failoverSlot: true on PostgreSQL 15, in setup and run, naming the fix', async () => {
    const config = writeConfig({ source: { url: pg15.url, slot: 'mh_true', publication: 'mh', failoverSlot: true }, sinks: [{ type: 'stdout' }] });
    for (const command of ['setup', 'run']) {
      const result = await runCli([command, '-c', config]);
      assert.equal(result.code, 2, `${command}: ${result.stderr}`);
      assert.match(result.stderr, /FAILOVER_UNSUPPORTED: source\.failoverSlot is true, but PostgreSQL 15 has no failover slots/);
      assert.match(result.stderr, /set source\.failoverSlot: auto/);
    }
    assert.equal((await pg15.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'mh_true'`)).length, 0, 'nothing created');
  });

  it('PostgreSQL 18: turns FAILOVER on for an existing idle slot, and warns that synchronized_standby_slots is empty', async () => {
    await pg18.query('CREATE TABLE fo (id int PRIMARY KEY)');
    await pg18.query(`SELECT pg_create_logical_replication_slot('old_slot', 'pgoutput')`);
    const config = writeConfig({ source: { url: `postgres://postgres@127.0.0.1:${deadPort},127.0.0.1:${pg18.port}/postgres`, slot: 'old_slot', publication: 'fo', tables: ['public.fo'] }, sinks: [{ type: 'stdout' }] });
    const setup = await runCli(['setup', '-c', config]);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /replication slot old_slot exists\n/);
    assert.match(setup.stdout, /turned on FAILOVER for existing replication slot old_slot \(source\.failoverSlot: auto\)/);
    assert.match(setup.stdout, /warning: synchronized_standby_slots is empty on the primary: a standby can be promoted behind walrelay/);
    assert.equal((await pg18.query(`SELECT failover FROM pg_replication_slots WHERE slot_name = 'old_slot'`))[0].failover, true);
    const status = await runCli(['status', '--json', '-c', config]);
    const parsed = JSON.parse(status.stdout);
    assert.deepEqual([parsed.failover, parsed.synchronizedStandbySlots], [true, null]);
    assert.match(parsed.warnings.join('\n'), /phantoms/);
    const text = await runCli(['status', '-c', config]);
    assert.match(text.stdout, /failover slot:\s+true/);
    assert.match(text.stdout, /warning: synchronized_standby_slots is empty/);

    // failoverSlot: false creates a plain slot, and says nothing of synchronized_standby_slots.
    const plain = writeConfig({ source: { url: pg18.url, slot: 'plain_slot', publication: 'fo', failoverSlot: false }, sinks: [{ type: 'stdout' }] });
    const plainSetup = await runCli(['setup', '-c', plain]);
    assert.equal(plainSetup.code, 0, plainSetup.stderr);
    assert.match(plainSetup.stdout, /created replication slot plain_slot \(pgoutput\) at/);
    assert.doesNotMatch(plainSetup.stdout, /synchronized_standby_slots/);
    assert.equal((await pg18.query(`SELECT failover FROM pg_replication_slots WHERE slot_name = 'plain_slot'`))[0].failover, false);
  });

  it('PostgreSQL 18: run turns FAILOVER on for a plain slot when it starts streaming', async () => {
    await pg18.query(`SELECT pg_create_logical_replication_slot('run_slot', 'pgoutput')`);
    const config = writeConfig({ source: { url: pg18.url, slot: 'run_slot', publication: 'fo' }, sinks: [{ type: 'stdout' }] });
    const relay = spawnRelay(config);
    await relay.waitForLog(/"msg":"streaming"/);
    assert.match(relay.logs(), /turned on FAILOVER for the replication slot/);
    assert.equal((await pg18.query(`SELECT failover FROM pg_replication_slots WHERE slot_name = 'run_slot'`))[0].failover, true);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0, relay.logs());
  });
  it('a hung host listed first holds up status for timeoutSeconds at most, and run does not wait for it twice', async () => {
    // pg18 hangs; pg15 is the primary (slot and publication mh from the first test).
    const config = writeConfig({
      source: { url: `postgres://postgres@127.0.0.1:${pg18.port},127.0.0.1:${pg15.port}/postgres`, slot: 'mh', publication: 'mh', tables: ['public.mh'], timeoutSeconds: 3 },
      sinks: [{ type: 'redis', url: redis.url, stream: 'hung:{schema}.{table}' }],
    });
    pg18.freeze();
    try {
      const startedAt = Date.now();
      const status = await runCli(['status', '--json', '-c', config]);
      const statusMs = Date.now() - startedAt;
      assert.equal(status.code, 0, status.stderr);
      assert.equal(JSON.parse(status.stdout).host, `127.0.0.1:${pg15.port}`);
      console.log(`# status with a hung first host: ${statusMs} ms (timeoutSeconds 3)`);
      assert.ok(statusMs < 20_000, `status took ${statusMs} ms`);

      const relay = spawnRelay(config);
      await relay.waitForLog(/"msg":"streaming"/, 30_000);
      // Logged once the search for the stream's host began: the time to "streaming" is that search. The hung host
      // already failed to answer the start's checks; it is tried after the others now, not waited for again.
      const time = (msg: string) => JSON.parse(relay.logs().split('\n').find((line) => line.includes(`"msg":"${msg}"`))!).time as number;
      const searchMs = time('streaming') - time('walrelay started');
      console.log(`# run with a hung first host: streaming ${searchMs} ms after the start's checks (timeoutSeconds 3)`);
      assert.ok(searchMs < 3000, `the search for the stream's host took ${searchMs} ms: it waited for the hung host again`);
      await pg15.query(`INSERT INTO mh VALUES (3, 'while the other host hangs')`);
      await waitForStreamLength(client, 'hung:public.mh', 1);
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs());
    } finally {
      pg18.thaw();
    }
  });
});
