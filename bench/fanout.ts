// Fan-out to websocket clients (issues 19 and 22): commit-to-client latency
// and CPU per frame, with the clients in a process of their own
// (fanout-clients.ts) so that the relay, not the benchmark, is the limit.
//
// 1. One relay process, 1,000 clients (walrelay's protocol, then Supabase
//    Realtime vsn 2.0.0), rows/s stepped up until p99 passes 250 ms or a
//    client is disconnected: the frames/s one process sustains.
// 2. The same total clients on one relay vs one relay + 2 edges (`walrelay
//    edge`, fed through the relay's feed sink over Redis): frames/s per
//    CPU-second (relay + edges + Redis), p50/p99, and what the feed adds.
//
// Writes 10-row transactions at a paced rate into a table of its own; each
// configuration reads from a replication slot of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { loadavg } from 'node:os';
import pg from 'pg';
import { Redis } from 'ioredis';
import { CLI, cpuSecondsOf, runQueueSecondsOf } from './consumers.js';
import { freePort } from '../test/harness/ports.js';
import { waitFor } from '../test/harness/wait.js';
import type { FanOutProtocol } from './fanout-clients.js';
import { ClientsProcesses } from './fanout-clients-processes.js';
import { P99_LIMIT_MS } from './fanout-report.js';
const TABLE = 'bench_fanout';

export interface FanOutOptions {
  quick: boolean;
  /** Only the sweep (relay alone) or only the edges comparison. */
  part?: 'sweep' | 'edges';
  log(line: string): void;
  /** Extra node arguments for the relay and edge processes (--cpu-prof). */
  nodeArgs?: string[];
  /** The sweep's rows/s (default: stepped up from 50) and protocols (default: both). */
  rates?: number[];
  protocols?: FanOutProtocol[];
  /** Clients per window (default 1,000; 200 with quick). */
  clients?: number;
  /** The clients read their sockets at most every this many ms (fanout-clients.ts ConnectOrder.pollMs; default 1). */
  clientsPollMs?: number;
  /** The clients are spread over this many processes (default 1): on a loaded host one process's share of the CPU may be the limit. */
  clientsProcesses?: number;
  /** The relay and each clients' process in a session of their own (default true; see startWalrelay). */
  ownSessions?: boolean;
  /** Another build's relay CLI (dist/relay/cli.js): a before/after pair under the same benchmark and clients. */
  relayCli?: string;
}

export interface FanOutStep {
  setup: string;
  protocol: FanOutProtocol;
  clients: number;
  rowsPerSecond: number;
  framesPerSecond: number;
  frames: number;
  expectedFrames: number;
  p50: number;
  p99: number;
  max: number;
  /** p99 of commit to the first client's arrival, per transaction: PostgreSQL, the relay's pipeline, one socket. */
  firstP99: number;
  /** p99 of each frame's arrival after the first client got the same change: serving every client. */
  spreadP99: number;
  /** The clients' process's event-loop delay over the window, p99 ms. */
  clientsLoopP99: number;
  disconnected: number;
  /** CPU seconds over the window: the relay, the edges, Redis. */
  relayCpu: number;
  edgesCpu: number;
  redisCpu: number;
  /** CPU seconds of the clients' process over the window (it must not be the limit). */
  clientsCpu: number;
  /** Seconds the relay's and the clients' event loops waited for a CPU (runnable, not running) over the window. */
  relayRunQueue: number;
  clientsRunQueue: number;
  /** The machine's 1-minute load average at the end of the window. */
  load: number;
}

/** The feed alone (edges without clients): what relaying the rows costs before any frame is sent. */
export interface FeedCost {
  rowsPerSecond: number;
  /** CPU microseconds per row: the relay (decoding + writing the feed), one edge (reading it), Redis. */
  relayUsPerRow: number;
  edgeUsPerRow: number;
  redisUsPerRow: number;
}

/** One relay or edge process with its own config file. */
interface Child {
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * With `ownSession` the process is started in a session of its own (setsid):
 * Linux's autogroup scheduling (kernel.sched_autogroup_enabled) shares the
 * CPU fairly between sessions first, so a relay in the benchmark's session
 * shares one session's share with the clients and the benchmark, while every
 * PostgreSQL server (postmaster calls setsid) and other work on the host has
 * one each. A relay run as a service has a session of its own too.
 */
function startWalrelay(command: 'run' | 'edge', config: unknown, nodeArgs: string[], cli = CLI, ownSession = false): Child {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-fanout-'));
  const file = join(dir, 'walrelay.json');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [...nodeArgs, cli, command, '-c', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WALRELAY_LOG_LEVEL: 'warn' }, detached: ownSession });
  let stderr = '';
  child.stderr!.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000); });
  child.on('exit', (code) => { if (code !== 0 && code !== null) process.stderr.write(`walrelay ${command} exited ${code}: ${stderr}\n`); });
  return {
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function listening(port: number): Promise<void> {
  return waitFor(() => new Promise<boolean>((resolve) => {
    const probe = connect(port, '127.0.0.1', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  }), { what: `port ${port} to listen`, timeoutMs: 30_000, intervalMs: 100 });
}

/** Commits 10-row transactions at `rowsPerSecond` for `seconds`; returns the rows committed. */
async function writeLoad(pool: pg.Pool, rowsPerSecond: number, seconds: number, firstId: number): Promise<number> {
  const client = await pool.connect();
  try {
    const started = Date.now();
    const end = started + seconds * 1000;
    let rows = 0;
    while (Date.now() < end) {
      const wait = started + ((rows + 10) / rowsPerSecond) * 1000 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const first = firstId + rows;
      await client.query(`INSERT INTO ${TABLE} SELECT i, i % 1000, 'live ' || i, i, now() FROM generate_series(${first}, ${first + 9}) i`);
      rows += 10;
    }
    return rows;
  } finally {
    client.release();
  }
}

function percentile(histogram: [number, number][], total: number, q: number): number {
  let seen = 0;
  for (const [ms, count] of histogram) {
    seen += count;
    if (seen >= q * total) return ms;
  }
  return histogram.at(-1)?.[0] ?? NaN;
}

/** A relay (or relay + edges) under test: where clients connect and whose CPU counts. */
interface Setup {
  name: string;
  urls: string[];
  relay: Child;
  edges: Child[];
  redisPid: number | null;
  stop(): Promise<void>;
}

export interface FanOutResults {
  steps: FanOutStep[];
  feed: FeedCost | null;
}

export async function fanOutBenchmark(postgresUrl: string, redisUrl: string, options: FanOutOptions): Promise<FanOutResults> {
  const { quick, log } = options;
  const nodeArgs = options.nodeArgs ?? [];
  const pool = new pg.Pool({ connectionString: postgresUrl, max: 3 });
  pool.on('error', (error) => log(`idle PostgreSQL connection: ${error.message}`));
  const redis = new Redis(redisUrl);
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? 0) || null;
  redis.disconnect();
  await pool.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (id bigint PRIMARY KEY, account int, note text, amount numeric, at timestamptz)`);
  await pool.query(`DROP PUBLICATION IF EXISTS ${TABLE}; CREATE PUBLICATION ${TABLE} FOR TABLE ${TABLE}`);
  let nextId = 1;
  const steps: FanOutStep[] = [];
  let feed: FeedCost | null = null;
  const seconds = quick ? 4 : 10;
  const clients = options.clients ?? (quick ? 200 : 1000);
  let slotCount = 0;

  const websocket = (port: number) => ({ type: 'websocket', port, auth: 'none', supabase: true, maxConnectionsPerIp: 20_000, maxConnections: 20_000 });

  const relayAlone = async (): Promise<Setup> => {
    const slot = `fanout_${slotCount++}`;
    await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    const port = await freePort();
    const relay = startWalrelay('run', { source: { url: postgresUrl, slot, publication: TABLE }, sinks: [websocket(port)] }, nodeArgs, options.relayCli, options.ownSessions ?? true);
    await listening(port);
    return {
      name: '1 relay', urls: [`ws://127.0.0.1:${port}`], relay, edges: [], redisPid: null,
      async stop() {
        await relay.stop();
        await pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
      },
    };
  };

  const relayAndEdges = async (): Promise<Setup> => {
    const slot = `fanout_${slotCount++}`;
    const feed = `bench.fanout.feed.${slotCount}`;
    await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    const relay = startWalrelay('run', { source: { url: postgresUrl, slot, publication: TABLE }, sinks: [{ type: 'feed', redis: { url: redisUrl }, name: feed, maxLen: 100_000 }] }, nodeArgs);
    const edges: Child[] = [];
    const urls: string[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      edges.push(startWalrelay('edge', { feed: { redis: { url: redisUrl }, name: feed }, sinks: [websocket(port)] }, nodeArgs));
      await listening(port);
      urls.push(`ws://127.0.0.1:${port}`);
    }
    return {
      name: '1 relay + 2 edges (Redis feed)', urls, relay, edges, redisPid,
      async stop() {
        await Promise.all(edges.map((edge) => edge.stop()));
        await relay.stop();
        await pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
      },
    };
  };

  /** One measurement window at `rowsPerSecond` with already connected clients. */
  const measure = async (setup: Setup, clientsProcess: ClientsProcesses, protocol: FanOutProtocol, rowsPerSecond: number): Promise<FanOutStep> => {
    await clientsProcess.reset();
    const cpu = () => ({
      relay: cpuSecondsOf(setup.relay.child.pid!) ?? 0,
      edges: setup.edges.reduce((sum, edge) => sum + (cpuSecondsOf(edge.child.pid!) ?? 0), 0),
      redis: setup.redisPid === null ? 0 : cpuSecondsOf(setup.redisPid) ?? 0,
    });
    const before = cpu();
    const clientsBefore = clientsProcess.cpuSeconds();
    const waitedBefore = { relay: runQueueSecondsOf(setup.relay.child.pid!) ?? 0, clients: clientsProcess.runQueueSeconds() };
    const started = performance.now();
    const rows = await writeLoad(pool, rowsPerSecond, seconds, nextId);
    nextId += rows;
    const elapsed = (performance.now() - started) / 1000;
    // Let the tail arrive: until every frame is in, or nothing arrived for a second, or 30 s.
    const expectedFrames = rows * clients;
    let report = await clientsProcess.report();
    for (let last = -1, quietSince = Date.now(), deadline = Date.now() + 30_000; report.frames < expectedFrames - report.disconnected * rows && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      report = await clientsProcess.report();
      if (report.frames !== last) { last = report.frames; quietSince = Date.now(); } else if (Date.now() - quietSince > 1000) break;
    }
    const after = cpu();
    const clientsCpu = clientsProcess.cpuSeconds() - clientsBefore;
    const relayRunQueue = (runQueueSecondsOf(setup.relay.child.pid!) ?? 0) - waitedBefore.relay;
    const clientsRunQueue = clientsProcess.runQueueSeconds() - waitedBefore.clients;
    const step: FanOutStep = {
      setup: setup.name, protocol, clients, rowsPerSecond: rows / elapsed, framesPerSecond: (rows * clients) / elapsed, frames: report.frames, expectedFrames,
      p50: percentile(report.histogram, report.frames, 0.5), p99: percentile(report.histogram, report.frames, 0.99), max: report.histogram.at(-1)?.[0] ?? NaN,
      firstP99: percentile(report.first, report.first.reduce((sum, [, count]) => sum + count, 0), 0.99),
      spreadP99: percentile(report.spread, report.frames, 0.99), clientsLoopP99: report.loopDelayMs.p99,
      disconnected: report.disconnected,
      relayCpu: after.relay - before.relay, edgesCpu: after.edges - before.edges, redisCpu: after.redis - before.redis, clientsCpu, relayRunQueue, clientsRunQueue, load: loadavg()[0]!,
    };
    log(`fan-out ${setup.name}, ${protocol}, ${clients} clients, ${Math.round(step.rowsPerSecond)} rows/s (${Math.round(step.framesPerSecond).toLocaleString('en')} frames/s): p50 ${step.p50} ms, p99 ${step.p99} ms (commit to first client p99 ${step.firstP99} ms, first to every client p99 ${step.spreadP99} ms; clients' event-loop delay p99 ${step.clientsLoopP99.toFixed(1)} ms), ${step.frames}/${expectedFrames} frames, ${step.disconnected} disconnected, CPU relay ${step.relayCpu.toFixed(2)} s edges ${step.edgesCpu.toFixed(2)} s redis ${step.redisCpu.toFixed(2)} s clients ${clientsCpu.toFixed(2)} s, waited for a CPU: relay ${relayRunQueue.toFixed(2)} s clients ${clientsRunQueue.toFixed(2)} s, load ${step.load.toFixed(1)}`);
    return step;
  };

  /** Rows through relay → Redis → 2 edges with no client connected. */
  const measureFeed = async (setup: Setup, rowsPerSecond: number): Promise<FeedCost> => {
    const cpu = () => [cpuSecondsOf(setup.relay.child.pid!) ?? 0, setup.edges.reduce((sum, edge) => sum + (cpuSecondsOf(edge.child.pid!) ?? 0), 0), setup.redisPid === null ? 0 : cpuSecondsOf(setup.redisPid) ?? 0];
    // What the processes spend idle (timers, metrics, the edges' blocking reads) is measured first and left out.
    const idleStart = cpu();
    const idleStarted = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const idleSeconds = (performance.now() - idleStarted) / 1000;
    const idlePerSecond = cpu().map((value, index) => (value - idleStart[index]!) / idleSeconds);
    const before = cpu();
    const started = performance.now();
    const rows = await writeLoad(pool, rowsPerSecond, seconds, nextId);
    nextId += rows;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = cpu();
    const elapsed = (performance.now() - started) / 1000;
    const perRow = (index: number, processes = 1) => (Math.max(0, after[index]! - before[index]! - idlePerSecond[index]! * elapsed) / processes / rows) * 1e6;
    const cost = { rowsPerSecond: rows / (elapsed - 1), relayUsPerRow: perRow(0), edgeUsPerRow: perRow(1, setup.edges.length), redisUsPerRow: perRow(2) };
    log(`fan-out feed alone, ${Math.round(cost.rowsPerSecond)} rows/s: CPU µs per row: relay ${cost.relayUsPerRow.toFixed(0)}, each edge ${cost.edgeUsPerRow.toFixed(0)}, Redis ${cost.redisUsPerRow.toFixed(0)}`);
    return cost;
  };

  const withClients = async <T>(setup: Setup, protocol: FanOutProtocol, run: (clientsProcess: ClientsProcesses) => Promise<T>): Promise<T> => {
    const clientsProcess = new ClientsProcesses(options.clientsProcesses ?? 1, options.ownSessions ?? true);
    try {
      await clientsProcess.connect({ urls: setup.urls, protocol, clients, table: `public.${TABLE}`, pollMs: options.clientsPollMs ?? 1 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      return await run(clientsProcess);
    } finally {
      await clientsProcess.stop();
    }
  };

  try {
    if (options.part !== 'edges') {
      // The sweep: rows/s up until p99 passes the limit (or a client is dropped).
      const rates = options.rates ?? (quick ? [100, 400] : [50, 100, 200, 300, 400, 600, 800, 1000, 1300, 1600, 2000, 2500]);
      for (const protocol of options.protocols ?? (['native', 'realtime'] as const)) {
        const setup = await relayAlone();
        try {
          // Two windows in a row past the limit end the sweep: one alone may be a busy moment of a shared host.
          let failed = 0;
          for (const rate of rates) {
            const step = await withClients(setup, protocol, (clientsProcess) => measure(setup, clientsProcess, protocol, rate));
            steps.push(step);
            failed = step.p99 > P99_LIMIT_MS || step.disconnected > 0 || step.frames < step.expectedFrames * 0.99 ? failed + 1 : 0;
            if (failed === 2) break;
          }
        } finally {
          await setup.stop();
        }
      }
    }
    if (options.part !== 'sweep') {
      // Same clients, same load: one relay, then one relay feeding two edges.
      const rates = quick ? [100] : [100, 300];
      for (const make of [relayAlone, relayAndEdges]) {
        const setup = await make();
        try {
          if (setup.edges.length > 0) feed = await measureFeed(setup, quick ? 300 : 1000);
          for (const rate of rates) steps.push({ ...await withClients(setup, 'native', (clientsProcess) => measure(setup, clientsProcess, 'native', rate)), setup: `${setup.name} ·` });
        } finally {
          await setup.stop();
        }
      }
    }
  } finally {
    await pool.query(`DROP PUBLICATION IF EXISTS ${TABLE}`).catch(() => undefined);
    await pool.query(`DROP TABLE IF EXISTS ${TABLE}`).catch(() => undefined);
    await pool.end();
  }
  return { steps, feed };
}
