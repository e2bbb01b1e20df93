// Commit-to-sink latency under a steady live load: a paced writer commits
// 10-row transactions; a Redis reader blocking on XREAD, or websocket clients,
// compare each arrival with the event's commitTime (same machine, same clock).
import pg from 'pg';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';

export interface LatencyResult {
  targetRowsPerSecond: number | null;
  achievedRowsPerSecond: number;
  /** Arrivals measured (rows × receivers that got them). */
  events: number;
  p50: number;
  p99: number;
  max: number;
  /** Receivers the relay disconnected for not keeping up (websocket). */
  disconnected: number;
  /** walrelay's CPU seconds per million events during the run (Redis rows; set by run.ts). */
  relayCpuPerMillion?: number | null;
  /** Where the time went, p50 / p99 ms per stage (see Arrivals.stages and measureLatency). */
  stages: Record<string, { p50: number; p99: number }>;
}

/** Where events arrive: collects commit-to-arrival latencies. */
export interface Arrivals {
  readonly latencies: number[];
  /** Arrivals expected per committed row. */
  readonly receivers: number;
  /** Parts of the latency the receiver can tell apart (ms per arrival), by name. */
  readonly stages?: Record<string, number[]>;
  disconnected(): number;
  stop(): Promise<void>;
}

/** A reader blocking on XREAD of `stream`. */
export async function redisArrivals(redisUrl: string, stream: string): Promise<Arrivals> {
  const reader = new Redis(redisUrl);
  const latencies: number[] = [];
  // An entry's id is Redis's clock (ms) when it appended it: commit → append is PostgreSQL's walsender
  // and walrelay, append → read is this reader (the benchmark's own process, shared with the writer).
  const stages = { 'commit → Redis append': [] as number[], 'Redis append → reader': [] as number[] };
  let readingFrom = '$';
  let reading = true;
  const readLoop = (async () => {
    while (reading) {
      const result = (await reader.xread('COUNT', 5000, 'BLOCK', 200, 'STREAMS', stream, readingFrom)) as [string, [string, string[]][]][] | null;
      const now = Date.now();
      if (!result) continue;
      for (const [, entries] of result) {
        for (const [id, fields] of entries) {
          readingFrom = id;
          const committed = commitTimeOf(fields[1]);
          const appended = Number(id.slice(0, id.indexOf('-')));
          latencies.push(now - committed);
          stages['commit → Redis append'].push(appended - committed);
          stages['Redis append → reader'].push(now - appended);
        }
      }
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return {
    latencies,
    receivers: 1,
    stages,
    disconnected: () => 0,
    async stop() {
      reading = false;
      await readLoop;
      reader.disconnect();
    },
  };
}

/** `clients` websocket clients, each subscribed to `table`. */
export async function websocketArrivals(url: string, table: string, clients: number): Promise<Arrivals> {
  const latencies: number[] = [];
  let disconnected = 0;
  let stopping = false;
  const sockets = await Promise.all(Array.from({ length: clients }, () => new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('error', reject);
    socket.once('open', () => socket.send(JSON.stringify({ type: 'subscribe', id: 's', table })));
    socket.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('{"type":"subscribed"')) resolve(socket);
      else if (text.startsWith('{"type":"change"')) latencies.push(Date.now() - commitTimeOf(text));
    });
    socket.once('close', () => { if (!stopping) disconnected++; });
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

/** commitTime of an event's JSON (or a frame holding it), without parsing the whole text. */
function commitTimeOf(json: string): number {
  const at = json.indexOf('"commitTime":"') + 14;
  return Date.parse(json.slice(at, json.indexOf('"', at)));
}

/**
 * Commits 10-row transactions into `table` at `targetRowsPerSecond` (null:
 * as fast as two writers can) for `seconds`, and reports how long rows took
 * from commit to `arrivals`.
 */
export async function measureLatency(url: string, table: string, targetRowsPerSecond: number | null, seconds: number, arrivals: Arrivals): Promise<LatencyResult> {
  const { latencies } = arrivals;
  const writers = await Promise.all([0, 1].map(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return client;
  }));
  let nextId = Number((await writers[0].query(`SELECT coalesce(max(id), 0) AS max FROM ${table}`)).rows[0].max) + 1;
  const started = Date.now();
  const end = started + seconds * 1000;
  let rows = 0;
  // The writer's own delays: how late each INSERT went out against its schedule (the writer falling
  // behind), and each INSERT's round trip (PostgreSQL's commit, with synchronous_commit = on).
  const lateness: number[] = [];
  const roundTrips: number[] = [];
  await Promise.all(writers.map(async (client, index) => {
    let sent = 0;
    while (Date.now() < end) {
      if (targetRowsPerSecond !== null) {
        const due = started + ((sent + 10) / (targetRowsPerSecond / writers.length)) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        lateness.push(Math.max(0, Date.now() - due));
      }
      const first = nextId;
      nextId += 10;
      const sentAt = performance.now();
      await client.query(`INSERT INTO ${table} SELECT i, i % 1000, 'live ' || i, i, now() FROM generate_series(${first}, ${first + 9}) i`);
      roundTrips.push(performance.now() - sentAt);
      sent += 10;
      rows += 10;
      void index;
    }
  }));
  const elapsed = (Date.now() - started) / 1000;
  // Let the tail arrive.
  const settle = Date.now() + 5000;
  while (latencies.length < rows * (arrivals.receivers - arrivals.disconnected()) && Date.now() < settle) await new Promise((resolve) => setTimeout(resolve, 50));
  await arrivals.stop();
  await Promise.all(writers.map((client) => client.end()));
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const stages: LatencyResult['stages'] = {};
  for (const [name, values] of Object.entries({ 'writer late': lateness, 'INSERT round trip': roundTrips, ...arrivals.stages })) stages[name] = percentiles(values);
  return { targetRowsPerSecond, achievedRowsPerSecond: rows / elapsed, events: latencies.length, p50: at(0.5), p99: at(0.99), max: latencies[latencies.length - 1] ?? NaN, disconnected: arrivals.disconnected(), stages };
}

function percentiles(values: number[]): { p50: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN) * 10) / 10;
  return { p50: at(0.5), p99: at(0.99) };
}

/** "stage p50/p99 ms, …" for the log. */
export function describeStages(result: LatencyResult): string {
  return Object.entries(result.stages).map(([name, { p50, p99 }]) => `${name} ${p50}/${p99}`).join(', ');
}
