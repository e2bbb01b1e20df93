// `walrelay edge` child processes and plain websocket clients of walrelay's
// protocol, for the edge tests (test/edges*.test.ts).
import { spawn } from 'node:child_process';
import { createServer, connect as connectTcp, type Socket } from 'node:net';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient } from '@supabase/realtime-js';
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

export interface Balancer {
  port: number;
  close(): Promise<void>;
}

/**
 * A load balancer in front of edges, as a client sees one: each new
 * connection goes to the first of `ports` that accepts it, and ends when that
 * edge's side ends (so a killed edge's clients reconnect to the next one).
 */
export async function startBalancer(ports: readonly number[]): Promise<Balancer> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    const attempt = (index: number) => {
      if (index >= ports.length) { client.destroy(); return; }
      const upstream = connectTcp({ host: '127.0.0.1', port: ports[index] });
      upstream.once('error', () => attempt(index + 1));
      upstream.once('connect', () => {
        sockets.add(upstream);
        upstream.removeAllListeners('error');
        upstream.on('error', () => client.destroy());
        upstream.on('close', () => { sockets.delete(upstream); client.destroy(); });
        client.on('close', () => upstream.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * A realtime-js client named with walrelay_client on edge A (through a
 * balancer over A and B) while rows are inserted; A is killed with kill -9,
 * inserts go on, the client reconnects through the balancer to B and must
 * get every insert once, in order. The kill comes once the client has every
 * row inserted so far (see docs/edges.md for a kill while a batch is on its way).
 */
export async function realtimeResumeAcrossEdges(pg: { query(sql: string, values?: unknown[]): Promise<unknown> }, edgeA: Edge, edgeB: Edge, firstId: number, options: { killWhileWriting?: boolean } = {}): Promise<{ repeated: number }> {
  const balancer = await startBalancer([edgeA.port, edgeB.port]);
  const client = new RealtimeClient(`ws://127.0.0.1:${balancer.port}/realtime/v1`, {
    params: { apikey: 'anything', walrelay_client: `resume-${firstId}` }, transport: WebSocket as any, reconnectAfterMs: () => 200,
  } as any);
  const got: number[] = [];
  const statuses: string[] = [];
  let next = firstId;
  const insert = async (count: number) => {
    for (let i = 0; i < count; i++) await pg.query('INSERT INTO items (id, note) VALUES ($1, $2)', [next, `rt ${next++}`]);
  };
  try {
    await new Promise<void>((resolve) => {
      client.channel('resume').on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table: 'items' }, (change: any) => { if (change.new.id >= firstId) got.push(change.new.id); })
        .subscribe((status: string) => { statuses.push(status); if (status === 'SUBSCRIBED') resolve(); });
    });
    if (options.killWhileWriting) {
      // Inserts go on without a pause: the kill may come between a batch sent and the save of its point.
      const writing = insert(50);
      await waitFor(() => got.length >= 20, { what: `20 rows on edge A (have ${got.length})` });
      edgeA.process.signal('SIGKILL');
      await writing;
    } else {
      await insert(20);
      await waitFor(() => got.length === 20, { what: `20 rows on edge A (have ${got.length})` });
      await new Promise((resolve) => setTimeout(resolve, 300)); // the edge saves the point after each batch it hands on
      edgeA.process.signal('SIGKILL');
      await edgeA.process.exited;
      await insert(30); // committed while the client reconnects
    }
    await waitFor(() => statuses.filter((status) => status === 'SUBSCRIBED').length >= 2, { what: 'the rejoin on edge B', timeoutMs: 20_000 });
    await insert(10);
    const expected = Array.from({ length: 60 }, (_, at) => firstId + at);
    await waitFor(() => new Set(got).size >= 60, { what: '60 rows in all' }).catch((error: Error) => {
      throw new Error(`${error.message}: have ${got.join(',')}; statuses ${statuses.join(',')}; edge B's log:\n${edgeB.process.logs().slice(-3000)}`);
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    if (!options.killWhileWriting) {
      assert.deepEqual(got, expected, 'every insert once, in order');
      return { repeated: 0 };
    }
    // Nothing lost, in order; at most the rows sent just before the kill come again, once, right after it.
    const firstAgain = got.findIndex((id, at) => at > 0 && id <= got[at - 1]);
    const repeated = firstAgain < 0 ? 0 : got.length - expected.length;
    if (firstAgain >= 0) assert.deepEqual(got.slice(firstAgain, firstAgain + repeated), got.slice(firstAgain - repeated, firstAgain), 'the repeated rows are the last ones before the kill');
    assert.deepEqual([...new Set(got)], expected, 'every insert, in order');
    return { repeated };
  } finally {
    await client.disconnect();
    await balancer.close();
  }
}
