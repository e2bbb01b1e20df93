// A throwaway nats-server with JetStream on a random loopback port, its
// store in a temp dir, so that a test can kill -9 it and start it again on
// the same port with the same streams; and a reader of a stream's messages.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((path) => existsSync(path)) ?? 'nats-server';

export interface TestNats {
  port: number;
  url: string;
  /** A new client connection; the caller closes it. */
  client(): Promise<NatsConnection>;
  /** SIGKILL, and resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and store. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface StoredMessage {
  subject: string;
  seq: number;
  headers: Record<string, string>;
  body: string;
}

export async function startNats(extraArgs: string[] = []): Promise<TestNats> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-nats-'));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess;
  let output = '';

  const launch = async () => {
    child = spawn(NATS_SERVER, ['-js', '-sd', dir, '-p', String(port), '-a', '127.0.0.1', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
    child.stderr!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`nats-server exited: ${output}`);
      return /Server is ready/.test(output);
    }, { what: `nats-server on port ${port}`, timeoutMs: 20_000 });
  };

  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };

  await launch();
  return {
    port,
    url,
    client: () => connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200, ...(extraArgs.includes('--auth') ? { token: extraArgs[extraArgs.indexOf('--auth') + 1] } : {}) }),
    kill,
    async restart() {
      await kill();
      output = '';
      await launch();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createStream(connection: NatsConnection, name: string, subjects: string[]): Promise<void> {
  const manager = await jetstreamManager(connection);
  await manager.streams.add({ name, subjects });
}

/** Every message in the stream, in stream order. */
export async function readStreamMessages(connection: NatsConnection, stream: string): Promise<StoredMessage[]> {
  const manager = await jetstreamManager(connection);
  const info = await manager.streams.info(stream);
  const total = info.state.messages;
  const out: StoredMessage[] = [];
  if (total === 0) return out;
  const consumer = await jetstream(connection).consumers.get(stream);
  const deadline = Date.now() + 60_000;
  while (out.length < total) {
    if (Date.now() > deadline) throw new Error(`read ${out.length} of ${total} messages of stream ${stream} in 60 s`);
    const batch = await consumer.fetch({ max_messages: Math.min(1000, total - out.length), expires: 5000 });
    for await (const message of batch) out.push(stored(message));
  }
  return out;
}

function stored(message: JsMsg): StoredMessage {
  const headers: Record<string, string> = {};
  for (const [name, values] of message.headers ?? []) headers[name] = values[0];
  return { subject: message.subject, seq: message.seq, headers, body: message.string() };
}
