// `walrelay edge` child processes and plain websocket clients of walrelay's
// protocol, for the edge tests (test/edges*.test.ts).
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { CLI, writeConfig, type RelayProcess } from './relay.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface Edge {
  port: number;
  httpPort: number;
  process: RelayProcess;
}

/** A `walrelay edge` child process reading `feed`, with one websocket sink (both protocols, ringSize 1000). */
export async function startEdge(feed: Record<string, unknown>, sink: Record<string, unknown> = {}): Promise<Edge> {
  const [port, httpPort] = [await freePort(), await freePort()];
  const file = writeConfig({
    feed,
    sinks: [{ type: 'websocket', port, auth: 'none', supabase: true, ringSize: 1000, ...sink }],
    http: { port: httpPort },
  });
  const child = spawn(process.execPath, [CLI, 'edge', '-c', file], { env: { ...process.env, WALRELAY_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let logs = '';
  child.stderr!.on('data', (chunk) => { logs += chunk; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ? null : code)));
  const edge: Edge = {
    port, httpPort,
    process: {
      child, logs: () => logs, stdout: () => '', exited, signal: (name) => { child.kill(name); },
      waitForLog: (pattern, timeoutMs = 30_000) => waitFor(() => pattern.test(logs), { what: `edge log ${pattern}; logs:\n${logs.slice(-2000)}`, timeoutMs }),
    },
  };
  await edge.process.waitForLog(/"msg":"edge started"/);
  return edge;
}

export interface Client {
  ws: WebSocket;
  /** Raw text of every change frame, in arrival order. */
  changes: string[];
  other: any[];
  send(frame: unknown): void;
}

export function connect(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const client: Client = { ws, changes: [], other: [], send: (frame) => ws.send(JSON.stringify(frame)) };
    ws.on('message', (data) => {
      const text = data.toString();
      const frame = JSON.parse(text);
      if (frame.type === 'change') client.changes.push(text); else client.other.push(frame);
    });
    ws.on('open', () => resolve(client));
    ws.on('error', reject);
  });
}

export async function subscribe(client: Client, frame: Record<string, unknown>): Promise<void> {
  client.send({ type: 'subscribe', id: 's', table: 'public.items', ...frame });
  await waitFor(() => client.other.some((item) => item.type === 'subscribed' || item.type === 'error'), { what: 'subscribed' });
  const error = client.other.find((item) => item.type === 'error');
  if (error) throw new Error(`subscribe refused: ${JSON.stringify(error)}`);
}

export const idOf = (frame: string) => JSON.parse(frame).event.id as string;
export const rowOf = (frame: string) => { const { event } = JSON.parse(frame); return `${event.op}:${(event.new ?? event.old).id}`; };
