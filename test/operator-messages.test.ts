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
    assert.match(result.stderr, /WALRELAY_HTTP__PORT \(http\.port\): expected a TCP port number/);
  });

  it('names an exported variable that matches no key, instead of calling it a key of the file', async () => {
    const result = await runCli(['validate', '-c', writeConfig(base)], { WALRELAY_SOURCE__SLOTT: 'x', WALRELAY_TEST_LOG: 'debug' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /WALRELAY_SOURCE__SLOTT \(source\.slott\): unknown key; did you mean WALRELAY_SOURCE__SLOT\?/);
    assert.match(result.stderr, /WALRELAY_TEST_LOG \(testLog\): unknown key; WALRELAY_\* variables override configuration keys/);
  });

  it('names DATABASE_URL when it is what fills source.url', async () => {
    const result = await runCli(['validate', '-c', writeConfig({ sinks: [{ type: 'stdout' }] })], { DATABASE_URL: 'mysql://u@h/db' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /DATABASE_URL \(source\.url\): expected a postgres:\/\/ URL/);
  });

  it('suggests the key meant for a typo, also inside a sink of a given type', async () => {
    const file = writeConfig({ sorce: base.source, sinks: [{ type: 'redis', stram: 'x' }] });
    const result = await runCli(['validate', '-c', file]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /sorce: unknown key; did you mean source\?/);
    assert.match(result.stderr, /sinks\[0\]\.stram: unknown key; did you mean stream\?/);
    const far = await runCli(['validate', '-c', writeConfig({ ...base, colour: 'blue' })]);
    assert.match(far.stderr, /colour: unknown key/);
    assert.doesNotMatch(far.stderr, /did you mean/);
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
