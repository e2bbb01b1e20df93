// What an operator scrapes and probes: /healthz, /readyz, /metrics, and the
// stdout sink as a pipe.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Redis } from 'ioredis';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startRelayInProcess, waitForStreamLength, writeConfig, runCli, CLI } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { freePort } from './harness/ports.js';
import WebSocket from 'ws';
import type { RunningRelay } from '../relay/ops/daemon.js';

describe('HTTP endpoints and metrics (PostgreSQL 18)', () => {
  let pgServer: TestPostgres;
  let redis: TestRedis;
  let client: Redis;
  let relay: RunningRelay;
  let base: string;
  let feedPort: number;

  before(async () => {
    [pgServer, redis] = await Promise.all([startPostgres('pg18'), startRedis()]);
    client = redis.client();
    await pgServer.query('CREATE TABLE orders (id int PRIMARY KEY, status text)');
    feedPort = await freePort();
    relay = await startRelayInProcess({
      source: { url: pgServer.url, tables: ['public.orders'] },
      sinks: [
        { type: 'redis', url: redis.url, name: 'orders-redis' },
        { type: 'websocket', name: 'feed', port: feedPort, auth: 'none', maxClientQueue: 100 },
      ],
      http: { port: 0 },
    });
    base = `http://127.0.0.1:${relay.httpPort}`;
  });

  after(async () => {
    await relay?.stop();
    client?.disconnect();
    await Promise.all([pgServer?.stop(), redis?.stop()]);
  });

  it('answers /healthz and becomes ready once streaming', async () => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { what: '/readyz to turn 200', timeoutMs: 20_000 });
  });

  it('counts delivered events per sink and exposes lag and the confirmed LSN', async () => {
    // The series is there (at 0) before the first delivery, so a rate() or an alert over it has data from the start.
    assert.match(await (await fetch(`${base}/metrics`)).text(), /walrelay_events_delivered_total\{sink="orders-redis"\} 0/);
    await pgServer.query(`INSERT INTO orders SELECT i, 'new' FROM generate_series(1, 25) i`);
    await waitForStreamLength(client, 'walrelay:public.orders', 25);
    await waitFor(async () => /walrelay_events_delivered_total\{sink="orders-redis"\} 25/.test(await (await fetch(`${base}/metrics`)).text()), {
      what: 'the delivered counter to reach 25', timeoutMs: 10_000,
    });
    await waitFor(async () => /walrelay_confirmed_lsn [1-9]/.test(await (await fetch(`${base}/metrics`)).text()), { what: 'a confirmed LSN', timeoutMs: 10_000 });
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /walrelay_replication_lag_bytes \d+/);
    assert.match(text, /walrelay_sink_ready\{sink="orders-redis"\} 1/);
  });

  it('counts websocket clients, and the ones closed for not keeping up', async () => {
    const metric = async (pattern: RegExp) => pattern.test(await (await fetch(`${base}/metrics`)).text());
    const healthy = new WebSocket(`ws://127.0.0.1:${feedPort}/`);
    const stalled = new WebSocket(`ws://127.0.0.1:${feedPort}/`);
    const subscribed = (ws: WebSocket) => new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', id: 's', table: 'public.orders' })));
      ws.on('message', (data) => { if (data.toString().startsWith('{"type":"subscribed"')) resolve(); });
    });
    await Promise.all([subscribed(healthy), subscribed(stalled)]);
    await waitFor(() => metric(/walrelay_websocket_clients\{sink="feed"\} 2\n/), { what: 'two connected clients in /metrics', timeoutMs: 10_000 });
    // The stalled client stops reading; ~40 MB of changes overflow the socket buffers, then its 100-frame queue.
    (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
    const stalledClosed = new Promise<number>((resolve) => stalled.once('close', resolve));
    await pgServer.query(`INSERT INTO orders SELECT 1000 + i, repeat('x', 2000) FROM generate_series(1, 20000) i`);
    await waitFor(() => metric(/walrelay_websocket_clients_closed_total\{sink="feed",code="1013"\} 1\n/), { what: 'one client closed with 1013 in /metrics', timeoutMs: 90_000 });
    await waitFor(() => metric(/walrelay_websocket_clients\{sink="feed"\} 1\n/), { what: 'one connected client left', timeoutMs: 10_000 });
    healthy.close();
    stalled.terminate();
    await stalledClosed;
    await pgServer.query('DELETE FROM orders WHERE id > 1000');
    await waitForStreamLength(client, 'walrelay:public.orders', 25 + 20000 + 20000);
  });

  it('reports 503 with the reason while a sink is down', async () => {
    await redis.shutdownSaving();
    await pgServer.query(`INSERT INTO orders VALUES (100, 'while down')`);
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 503, { what: '/readyz to turn 503', timeoutMs: 20_000 });
    const body = await (await fetch(`${base}/readyz`)).json();
    assert.match(body.reasons.join(' '), /sink orders-redis is not (connected|delivering)/);
    await redis.restart();
    client.disconnect();
    client = redis.client();
    await waitForStreamLength(client, 'walrelay:public.orders', 25 + 20000 + 20000 + 1);
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { what: '/readyz to recover', timeoutMs: 20_000 });
  });
});

describe('stdout sink', () => {
  let pgServer: TestPostgres;

  before(async () => {
    pgServer = await startPostgres('pg15');
    await pgServer.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
  });

  after(async () => {
    await pgServer?.stop();
  });

  it('writes one JSON line per event to stdout and logs only to stderr', async () => {
    const file = writeConfig({ source: { url: pgServer.url, tables: ['public.notes'] }, sinks: [{ type: 'stdout' }] });
    assert.equal((await runCli(['setup', '-c', file])).code, 0);
    const child = spawn(process.execPath, [CLI, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await waitFor(() => /"msg":"streaming"/.test(stderr), { what: 'the relay to stream', timeoutMs: 20_000 });
      await pgServer.query(`INSERT INTO notes VALUES (1, 'one'), (2, 'two')`);
      await waitFor(() => stdout.split('\n').filter(Boolean).length >= 2, { what: 'two lines on stdout', timeoutMs: 20_000 });
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    const lines = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((event) => event.new), [{ id: 1, body: 'one' }, { id: 2, body: 'two' }]);
    assert.ok(!stdout.includes('"msg"'), 'logs leaked into stdout');
  });
});
