// Supabase Realtime protocol clients for the load row: light raw ws clients
// speaking vsn 2.0.0 as realtime-js 2.x does (join with config.postgres_changes,
// heartbeat every 25 s), each measuring commit_timestamp (milliseconds) to
// arrival. They run in the benchmark's process, the relay in its own.
import { WebSocket } from 'ws';
import type { Arrivals } from './latency.js';

const HEARTBEAT_MS = 25_000;

export async function realtimeArrivals(endpoint: string, schema: string, table: string, clients: number): Promise<Arrivals> {
  const latencies: number[] = [];
  let disconnected = 0;
  let stopping = false;
  const join = JSON.stringify(['1', '1', 'realtime:bench', 'phx_join', { config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, postgres_changes: [{ event: 'INSERT', schema, table }], private: false } }]);
  const sockets = await Promise.all(Array.from({ length: clients }, () => new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(`${endpoint}/websocket?apikey=bench&vsn=2.0.0`);
    let ref = 1;
    socket.once('error', reject);
    socket.once('open', () => socket.send(join));
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('["1","1","realtime:bench","phx_reply",{"status":"ok"')) resolve(socket);
      else if (text.includes(',"postgres_changes",{"ids":')) latencies.push(Date.now() - commitTimestampOf(text));
    });
    const heartbeat = setInterval(() => socket.send(JSON.stringify([null, String(++ref), 'phoenix', 'heartbeat', {}])), HEARTBEAT_MS);
    socket.once('close', () => {
      clearInterval(heartbeat);
      if (!stopping) disconnected++;
    });
  })));
  return {
    latencies,
    receivers: clients,
    disconnected: () => disconnected,
    async stop() {
      stopping = true;
      await Promise.all(sockets.map((socket) => new Promise((resolve) => { socket.once('close', resolve); socket.close(); })));
    },
  };
}

function commitTimestampOf(frame: string): number {
  const at = frame.indexOf('"commit_timestamp":"') + 20;
  return Date.parse(frame.slice(at, frame.indexOf('"', at)));
}
