// What a newcomer reads when something is off (issue 14): messages that name
// the environment variable, suggest the key meant, say what a shutdown waits
// for, and name the setting that fixes a busy port.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, runCli, spawnRelay, waitForStreamLength, type RelayProcess } from './harness/relay.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';

const base = { source: { url: 'postgres://u@127.0.0.1:5432/app' }, sinks: [{ type: 'stdout' }] };

describe('configuration messages', () => {
  it('names the environment variable behind a bad value', async () => {
    const result = await runCli(['validate', '-c', writeConfig(base)], { WALRELAY_HTTP__PORT: 'abc' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /WALRELAY_HTTP__PORT sets http\.port: expected a TCP port number/);
  });

  it('refuses a bad WALRELAY_LOG_LEVEL in validate and run (exit 2), naming the variable and the levels', async () => {
    for (const command of ['validate', 'run']) {
      const result = await runCli([command, '-c', writeConfig(base)], { WALRELAY_LOG_LEVEL: 'verbose' });
      assert.equal(result.code, 2, `${command}: ${result.stderr}`);
      assert.match(result.stderr, /WALRELAY_LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal, silent, got 'verbose'/);
      assert.doesNotMatch(result.stderr, /custom levels| {4}at /);
    }
  });

  it('names an exported variable that matches no key, instead of calling it a key of the file', async () => {
    const result = await runCli(['validate', '-c', writeConfig(base)], { WALRELAY_SOURCE__SLOTT: 'x', WALRELAY_TEST_LOG: 'debug' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /WALRELAY_SOURCE__SLOTT sets source\.slott: unknown key; did you mean WALRELAY_SOURCE__SLOT\?/);
    assert.match(result.stderr, /WALRELAY_TEST_LOG sets testLog: unknown key; WALRELAY_\* variables override configuration keys/);
  });

  it('names DATABASE_URL when it is what fills source.url', async () => {
    const result = await runCli(['validate', '-c', writeConfig({ sinks: [{ type: 'stdout' }] })], { DATABASE_URL: 'mysql://u@h/db' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /DATABASE_URL sets source\.url: expected a postgres:\/\/ URL/);
  });

  it('suggests the key meant for a typo, also inside a sink of a given type', async () => {
    const file = writeConfig({ sorce: base.source, sinks: [{ type: 'redis', stram: 'x' }], http: { port: 9187, hsot: '0.0.0.0' } });
    const result = await runCli(['validate', '-c', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /sorce: unknown key; did you mean source\?/);
    assert.match(result.stderr, /http\.hsot: unknown key; did you mean host\?/);
    assert.match(result.stderr, /sinks\[0\]\.stram: unknown key; did you mean stream\?/);
    const far = await runCli(['validate', '-c', writeConfig({ ...base, colour: 'blue' })]);
    assert.match(far.stderr, /colour: unknown key/);
    assert.doesNotMatch(far.stderr, /did you mean/);
  });

  it('suggests the sink type meant for a typo, and lists the types when nothing is close', async () => {
    const typo = await runCli(['validate', '-c', writeConfig({ ...base, sinks: [{ type: 'redsi', url: 'redis://127.0.0.1:6379' }] })]);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /sinks\[0\]\.type: unknown sink type "redsi"; did you mean redis\?/);
    const far = await runCli(['validate', '-c', writeConfig({ ...base, sinks: [{ type: 'postgres', url: 'x' }] })]);
    assert.equal(far.code, 2);
    assert.doesNotMatch(far.stderr, /did you mean/);
    assert.match(far.stderr, /sinks\[0\]\.type: expected a sink with type redis, kafka, stdout, websocket, webhook, nats, rabbitmq or feed/);
  });

  it('refuses a jwtSecret shorter than 32 bytes', async () => {
    const sink = (jwtSecret: string) => writeConfig({ ...base, sinks: [{ type: 'websocket', auth: { jwtSecret } }] });
    const short = await runCli(['validate', '-c', sink('hunter')]);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /sinks\[0\]\.auth\.jwtSecret: expected at least 32 bytes for HS256/);
    const long = await runCli(['validate', '-c', sink('x'.repeat(32))]);
    assert.equal(long.code, 0, long.stderr);
  });
});

describe('command line', () => {
  it('prints the package version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
    const result = await runCli(['--version']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), version);
  });

  it('calls a bad backfill argument an argument, not a config key', async () => {
    const result = await runCli(['backfill', '-c', writeConfig(base), 'orders']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /argument TABLE 'orders': expected schema\.table/);
    assert.doesNotMatch(result.stderr, /^walrelay: CONFIG_INVALID: tables:/m);
  });
});

describe('npx', () => {
  it('shows walrelay\'s help for `npx walrelay --help` and `npm exec walrelay -- --help` in the clone', async () => {
    const { spawnSync } = await import('node:child_process');
    for (const args of [['npx', '--no-install', 'walrelay', '--help'], ['npm', 'exec', '--no', 'walrelay', '--', '--help'], ['npx', '--no-install', 'walrelay', '--', '--help']]) {
      const result = spawnSync(args[0], args.slice(1), { encoding: 'utf8', timeout: 60_000 });
      assert.equal(result.status, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stdout, /Usage: walrelay/, args.join(' '));
    }
  });
});

describe('running against PostgreSQL 15 and Redis', () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  let configFile: string;
  const relays: RelayProcess[] = [];
  const start = (file = configFile) => { const relay = spawnRelay(file); relays.push(relay); return relay; };

  before(async () => {
    [postgres, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    await postgres.query('CREATE TABLE t (id int PRIMARY KEY)');
    configFile = writeConfig({
      source: { url: postgres.url, tables: ['public.t'] },
      sinks: [{ type: 'redis', name: 'cache', url: redis.url }],
      pipeline: { drainTimeoutSeconds: 300 },
    });
    const setup = await runCli(['setup', '-c', configFile]);
    assert.equal(setup.code, 0, setup.stderr);
  });

  after(async () => {
    for (const relay of relays) if (relay.child.exitCode === null && relay.child.signalCode === null) relay.signal('SIGKILL');
    await Promise.all(relays.map((relay) => relay.exited));
    await Promise.all([postgres?.stop(), redis?.stop()]);
  });

  it('refuses a busy http.port with a clear error naming http.port, not a raw EADDRINUSE', async () => {
    const port = await freePort();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', () => resolve()));
    try {
      const file = writeConfig({ source: { url: postgres.url }, sinks: [{ type: 'stdout' }], http: { port } });
      const result = await runCli(['run', '-c', file]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`HTTP_LISTEN: cannot serve .* on 127\\.0\\.0\\.1:${port}: EADDRINUSE; another process uses port ${port}: set http\\.port`));
      assert.doesNotMatch(result.stderr, /^\s+at /m);
    } finally {
      squatter.close();
    }
  });

  it('a standby says it waits for the slot, names the holder\'s client, never says "interrupted", and is ready only as a standby', async () => {
    const [primaryPort, standbyPort] = [await freePort(), await freePort()];
    const withHttp = (port: number) => writeConfig({ ...JSON.parse(readFileSync(configFile, 'utf8')), http: { port } });
    const readyz = async (port: number, query = '') => (await fetch(`http://127.0.0.1:${port}/readyz${query}`)).status;
    const primary = start(withHttp(primaryPort));
    await primary.waitForLog(/"msg":"streaming"/);
    const standby = start(withHttp(standbyPort));
    await standby.waitForLog(/waiting for the slot; another walrelay holds it/);
    await waitFor(async () => (await readyz(standbyPort, '?standby=ok')) === 200, { what: 'the standby to be ready as a standby' });
    assert.equal(await readyz(standbyPort), 503, 'not streaming: not ready for /readyz');
    assert.equal(await readyz(primaryPort), 200);
    assert.equal(await readyz(primaryPort, '?standby=ok'), 200);
    const line = standby.logs().split('\n').find((entry) => entry.includes('waiting for the slot'))!;
    assert.match(line, /SLOT_IN_USE/);
    assert.match(line, /walsender PID \d+ \(a PostgreSQL server process, not walrelay's\) serving walrelay at 127\.0\.0\.1:\d+/);
    assert.doesNotMatch(standby.logs(), /replication interrupted/);
    standby.signal('SIGTERM');
    assert.equal(await standby.exited, 0, standby.logs());
    primary.signal('SIGTERM');
    assert.equal(await primary.exited, 0, primary.logs());
  });

  it('on a stop with a sink down, says at once which sink holds how many events, for how long, and that Ctrl-C exits (a SIGTERM repeated at once does not)', async () => {
    const relay = start();
    await relay.waitForLog(/"msg":"streaming"/);
    const client = redis.client();
    try {
      await postgres.query('INSERT INTO t VALUES (1)');
      await waitForStreamLength(client, 'walrelay:public.t', 1);
    } finally {
      client.disconnect();
    }
    await redis.stop();
    await postgres.query('INSERT INTO t SELECT generate_series(2, 11)');
    await relay.waitForLog(/sink delivery failed; retrying/);
    // One stop request arriving twice (GNU timeout signals the process and its group): a drain, not an exit.
    relay.signal('SIGTERM');
    await relay.waitForLog(/draining and stopping/);
    relay.signal('SIGTERM'); // handled apart from the first (two at once would be one pending signal)
    // The drain timeout is 300 s: the notice has to come long before it.
    await relay.waitForLog(/shutdown: waiting up to 300 s \(pipeline\.drainTimeoutSeconds\) for sink cache to acknowledge \d+ event\(s\) \(not connected\); send the signal again \(Ctrl-C\) to exit now/, 30_000);
    const waiting = JSON.parse(relay.logs().split('\n').find((entry) => entry.includes('shutdown: waiting'))!).waitingFor;
    assert.equal(waiting[0].sink, 'cache');
    assert.ok(waiting[0].events >= 1 && waiting[0].events <= 10, `events waiting: ${waiting[0].events}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.doesNotMatch(relay.logs(), /second signal/, 'the repeated SIGTERM did not end the drain');
    relay.signal('SIGINT');
    assert.equal(await relay.exited, 1);
    assert.match(relay.logs(), /second signal: exiting without draining/);
  });
});
