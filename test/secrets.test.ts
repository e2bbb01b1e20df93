// Secrets come from files (Kubernetes and Docker secrets) and are never
// printed: not in logs at debug level, errors, /metrics, /readyz, status or
// validate. The test configures distinctive secrets, drives every output
// walrelay has, and greps all of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { startPostgres } from './harness/postgres.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';
import { runCli, spawnRelay, waitForStreamLength, writeConfig } from './harness/relay.js';

const PG_PASSWORD = 'pg-Secret-4f1c9a';
const REDIS_PASSWORD = 'redis-Secret-8d2e7b';
const JWT_SECRET = 'jwt-Secret-0123456789abcdef0123456789abcdef';
const SECRETS = [PG_PASSWORD, REDIS_PASSWORD, JWT_SECRET];

async function startRedisWithPassword(password: string) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-redis-auth-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--requirepass', password], { stdio: 'ignore' });
  const client = () => new Redis({ port, host: '127.0.0.1', password, lazyConnect: true, maxRetriesPerRequest: 1 });
  await waitFor(async () => {
    const probe = client();
    probe.on('error', () => undefined);
    try { await probe.connect(); return (await probe.ping()) === 'PONG'; } catch { return false; } finally { probe.disconnect(); }
  }, { what: 'redis-server with requirepass', timeoutMs: 20_000 });
  return { port, client, stop: () => { child.kill('SIGKILL'); } };
}

function secretFile(dir: string, name: string, value: string): string {
  const file = join(dir, name);
  writeFileSync(file, `${value}\n`); // as kubectl create secret --from-file and echo write them
  return file;
}

function assertNoSecret(where: string, text: string): void {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${where} prints a configured secret (${secret.slice(0, 8)}…):\n${text.slice(Math.max(0, text.indexOf(secret) - 300), text.indexOf(secret) + 100)}`);
}

test('secrets read from …File twins work end to end and never appear in anything walrelay prints', async () => {
  const pg = await startPostgres('pg15');
  const redis = await startRedisWithPassword(REDIS_PASSWORD);
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-secrets-'));
  const wsPort = await freePort();
  const httpPort = await freePort();
  const sourceUrl = pg.url.replace('postgres@', `postgres:${PG_PASSWORD}@`);
  const config = {
    source: { urlFile: secretFile(dir, 'database-url', sourceUrl), slot: 'secrets', publication: 'secrets' },
    sinks: [
      { type: 'redis', name: 'redis', url: `redis://127.0.0.1:${redis.port}`, passwordFile: secretFile(dir, 'redis-password', REDIS_PASSWORD) },
      { type: 'websocket', name: 'ws', port: wsPort, auth: { jwtSecretFile: secretFile(dir, 'jwt-secret', JWT_SECRET) } },
    ],
    http: { port: httpPort },
  };
  const configFile = writeConfig(config);
  const printed: Array<[string, string]> = [];
  let relay: ReturnType<typeof spawnRelay> | undefined;
  const reader = redis.client();
  try {
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
    for (const args of [['validate', '-c', configFile], ['setup', '-c', configFile]]) {
      const result = await runCli(args, { WALRELAY_LOG_LEVEL: 'debug' });
      assert.equal(result.code, 0, result.stderr);
      printed.push([args[0], result.stdout + result.stderr]);
    }
    relay = spawnRelay(configFile, { WALRELAY_LOG_LEVEL: 'debug' });
    await relay.waitForLog(/streaming/);
    // The secrets work: the Redis password authenticates, the JWT secret verifies tokens.
    const token = await new SignJWT({ tables: ['public.*'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
    const socket = new WebSocket(`ws://127.0.0.1:${wsPort}/?token=${token}`);
    const received: unknown[] = [];
    await new Promise<void>((resolve, reject) => { socket.once('open', () => resolve()); socket.once('error', reject); });
    socket.on('message', (data) => { const frame = JSON.parse(String(data)); if (frame.type === 'change') received.push(frame.event); });
    socket.send(JSON.stringify({ type: 'subscribe', id: 's', table: 'public.items' }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await pg.query("INSERT INTO items VALUES (1, 'one'), (2, 'two')");
    await reader.connect();
    await waitForStreamLength(reader, 'walrelay:public.items', 2);
    await waitFor(async () => received.length === 2, { what: 'two changes on the websocket', timeoutMs: 10_000 });
    socket.close();
    for (const path of ['/metrics', '/readyz', '/healthz']) printed.push([path, await (await fetch(`http://127.0.0.1:${httpPort}${path}`)).text()]);
    for (const args of [['status', '-c', configFile], ['status', '-c', configFile, '--json']]) {
      const result = await runCli(args, { WALRELAY_LOG_LEVEL: 'debug' });
      printed.push([args.join(' '), result.stdout + result.stderr]);
    }
    // Failures print too: Redis refusing a wrong password is reported without any secret.
    await reader.config('SET', 'requirepass', `${REDIS_PASSWORD}-rotated`);
    await reader.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await pg.query("INSERT INTO items VALUES (3, 'three')");
    // A rotated password is a permanent failure: walrelay stops and says why, without the secret.
    assert.equal(await relay.exited, 1);
    assert.match(relay.logs(), /REDIS_AUTH: .*(WRONGPASS|NOAUTH)/);
    printed.push(['run (debug)', relay.logs() + relay.stdout()]);
    assert.match(relay.logs(), /"level":20/, 'the run logged at debug level');
    for (const [where, text] of printed) assertNoSecret(where, text);
  } finally {
    if (relay && relay.child.exitCode === null) { relay.signal('SIGKILL'); await relay.exited; }
    reader.disconnect();
    redis.stop();
    await pg.stop();
  }
});

test('a secret and its file twin together, or an unreadable secret file, are configuration errors naming the key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-secrets-'));
  const both = writeConfig({ source: { url: 'postgres://u@127.0.0.1:1/db', urlFile: secretFile(dir, 'url', 'postgres://u@127.0.0.1:1/db') }, sinks: [{ type: 'stdout' }] });
  const refused = await runCli(['validate', '-c', both]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /source\.url and source\.urlFile are both set/);
  const missing = writeConfig({ source: { url: 'postgres://u@127.0.0.1:1/db' }, sinks: [{ type: 'websocket', auth: { jwtSecretFile: join(dir, 'absent') } }] });
  const unreadable = await runCli(['validate', '-c', missing]);
  assert.equal(unreadable.code, 2);
  assert.match(unreadable.stderr, /sinks\[0\]\.auth\.jwtSecretFile: cannot read .*absent \(ENOENT\)/);
});
