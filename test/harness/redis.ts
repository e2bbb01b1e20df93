// A throwaway redis-server on a random loopback port, without persistence
// except what SHUTDOWN SAVE writes into its temp dir (loaded on restart).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface TestRedis {
  port: number;
  url: string;
  /** A new client; the caller disconnects it. */
  client(): Redis;
  /** SHUTDOWN SAVE: the data lands in dump.rdb, which restart() loads. Resolves once the server has exited. */
  shutdownSaving(): Promise<void>;
  /** Starts the server again (after SHUTDOWN or a crash) on the same port and dir. */
  restart(): Promise<void>;
  /** SIGSTOP: the server hangs with its sockets open (no replies, no close). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess;
  let output = '';

  const launch = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
    child.stderr!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } finally {
        probe.disconnect();
      }
    }, { what: `redis-server on port ${port}`, timeoutMs: 20_000 });
  };

  const halt = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };

  await launch();
  return {
    port,
    url,
    client: () => {
      const client = new Redis(url);
      client.on('error', () => undefined);
      return client;
    },
    async shutdownSaving() {
      // No reconnects: a client that retries SHUTDOWN would wait out its whole backoff schedule.
      const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      admin.on('error', () => undefined);
      await admin.connect();
      // The reply never comes (the server exits); a refusal (e.g. the save failed) is an error reply.
      const refused = await admin.call('SHUTDOWN', 'SAVE').then(() => null, (error: Error) => (error.name === 'ReplyError' ? error : null));
      admin.disconnect();
      if (refused) throw new Error(`redis refused SHUTDOWN SAVE: ${refused.message}`);
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, { what: `redis-server on port ${port} to exit after SHUTDOWN SAVE`, timeoutMs: 20_000 });
    },
    async restart() {
      await halt();
      await launch();
    },
    freeze() {
      child.kill('SIGSTOP');
    },
    thaw() {
      child.kill('SIGCONT');
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
