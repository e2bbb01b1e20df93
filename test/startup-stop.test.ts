// A stop signal that arrives while the first replication session is still
// starting (reading the slot over a slow connection) is not lost: the relay
// exits once that read returns, without streaming, and without a second
// signal. A slow server is played by a proxy that lets walrelay's start-up
// checks through and then holds every new connection until the test
// releases it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { runCli, spawnRelay, writeConfig } from './harness/relay.js';
import { waitFor } from './harness/wait.js';

interface HoldingProxy {
  port: number;
  /** Connections accepted and not yet passed on. */
  readonly held: number;
  /** After `passed` more connections have gone through, new connections wait. */
  holdAfter(passed: number): void;
  /** Passes on what waits, and everything after. */
  release(): void;
  close(): Promise<void>;
}

async function startHoldingProxy(targetPort: number): Promise<HoldingProxy> {
  const sockets = new Set<Socket>();
  let holding = false;
  let passBeforeHolding = Infinity;
  let waiting: (() => void)[] = [];
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.pause();
    const open = () => {
      const upstream = connect(targetPort, '127.0.0.1');
      sockets.add(upstream);
      for (const socket of [client, upstream]) socket.on('error', () => { client.destroy(); upstream.destroy(); });
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    };
    if (passBeforeHolding-- <= 0) holding = true;
    if (holding) waiting.push(open);
    else open();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    get held() { return waiting.length; },
    holdAfter(passed) { passBeforeHolding = passed; },
    release() {
      holding = false;
      passBeforeHolding = Infinity;
      const run = waiting;
      waiting = [];
      run.forEach((open) => open());
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('a stop while the first session starts', () => {
  let pgServer: TestPostgres;
  let proxy: HoldingProxy;

  before(async () => {
    pgServer = await startPostgres('pg18');
    await pgServer.query('CREATE TABLE t (id int PRIMARY KEY)');
    proxy = await startHoldingProxy(pgServer.port);
  });

  after(async () => {
    await proxy?.close();
    await pgServer?.stop();
  });

  it('SIGTERM during the slot read at session start: exits 0 once the read returns, without streaming', async () => {
    const configFile = writeConfig({
      source: { url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, tables: ['public.t'], timeoutSeconds: 60 },
      sinks: [{ type: 'stdout' }],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    // The start-up checks' connection passes; the session's own connections (slot read, slot health) then hang in the proxy.
    proxy.holdAfter(1);
    const relay = spawnRelay(configFile);
    try {
      await relay.waitForLog(/"msg":"walrelay started"/, 60_000);
      await waitFor(async () => proxy.held > 0 || /"msg":"streaming"/.test(relay.logs()), { what: 'a connection held by the proxy', timeoutMs: 20_000 });
      assert.doesNotMatch(relay.logs(), /"msg":"streaming"/, 'the slot read had already returned: the test did not catch the start-up window');
      relay.signal('SIGTERM');
      await relay.waitForLog(/draining and stopping/, 10_000);
      proxy.release();
      const code = await Promise.race([relay.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 15_000))]);
      assert.equal(code, 0, `walrelay did not stop after one SIGTERM; logs:\n${relay.logs().slice(-2000)}`);
      assert.doesNotMatch(relay.logs(), /"msg":"streaming"/, 'a stopped relay must not start streaming');
    } finally {
      if (relay.child.exitCode === null && relay.child.signalCode === null) relay.signal('SIGKILL');
      await relay.exited;
    }
  });
});
