// Throwaway Redis Cluster (3 masters, 3 replicas) and Redis Sentinel setups
// from the redis-server binary, on random loopback ports.
//
// The cluster bus port is port + 10000 by default, which passes 65535 for a
// random port: every node gets an explicit `cluster-port`. After
// `redis-cli --cluster create`, the nodes still have to meet each other over
// the bus; until every node sees every master and replica with links up (and
// each replica has synced), a killed master is never replaced, so start()
// waits for that.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis, Cluster } from 'ioredis';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

interface Server {
  port: number;
  child: ChildProcess;
  output(): string;
  kill(): Promise<void>;
}

function launch(args: string[], port: number, password?: string): Promise<Server> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
  child.stderr!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
  const server: Server = {
    port,
    child,
    output: () => output,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
  return waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
    const probe = admin(port, password);
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } finally {
      probe.disconnect();
    }
  }, { what: `redis-server on port ${port}`, timeoutMs: 20_000 }).then(() => server);
}

/** A one-off connection that never retries (a test must not hang on a dead server). */
export function admin(port: number, password?: string): Redis {
  const client = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  client.on('error', () => undefined);
  return client;
}

async function ask<T>(port: number, call: (client: Redis) => Promise<T>, password?: string): Promise<T> {
  const client = admin(port, password);
  try {
    await client.connect();
    return await call(client);
  } finally {
    client.disconnect();
  }
}

export interface TestRedisCluster {
  /** Seed URL (the first node). */
  url: string;
  ports: number[];
  /** A cluster client; the caller disconnects it. */
  client(): Cluster;
  /** Port of the master serving `key`'s slot now. */
  masterOf(key: string): Promise<number>;
  /** The masters' ports now (from a live node's CLUSTER SHARDS view). */
  masters(): Promise<number[]>;
  /** Port of the replica of the master at `port`. */
  replicaOf(port: number): Promise<number>;
  /** kill -9 one node. */
  kill(port: number): Promise<void>;
  /** The master closes its replication links (CLIENT KILL TYPE replica): what it writes next reaches no replica until one reconnects. */
  dropReplicaLinks(port: number): Promise<void>;
  /** Starts a killed node again (it rejoins from its nodes.conf; a former master comes back as a replica). */
  restart(port: number): Promise<void>;
  /** SIGSTOP: the node hangs (replicates nothing, answers nothing). */
  freeze(port: number): void;
  /** SIGCONT after freeze(). */
  thaw(port: number): void;
  /** Waits until a replica of the killed master `port` has taken over its slots and the cluster is ok; returns the promoted node's port. */
  waitForFailover(port: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

const CLUSTER_SETTINGS = [
  '--cluster-enabled', 'yes',
  // Fail over within a second or two of a master's death; a replica may always take over (the test kills masters at will).
  '--cluster-node-timeout', '1000',
  '--cluster-replica-validity-factor', '0',
  '--save', '', '--appendonly', 'no',
];

export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-redis-cluster-'));
  const ports: number[] = [];
  while (ports.length < 6) {
    const port = await freePort();
    const bus = await freePort();
    if (!ports.includes(port) && port !== bus) {
      ports.push(port);
      BUS.set(port, bus);
    }
  }
  const servers = new Map<number, Server>();
  try {
    await Promise.all(ports.map(async (port) => {
      ARGS.set(port, ['--port', String(port), '--cluster-port', String(BUS.get(port)), '--bind', '127.0.0.1', '--dir', dir, '--cluster-config-file', `nodes-${port}.conf`, '--dbfilename', `dump-${port}.rdb`, ...CLUSTER_SETTINGS]);
      servers.set(port, await launch(['--port', String(port), '--cluster-port', String(BUS.get(port)), '--bind', '127.0.0.1', '--dir', dir, '--cluster-config-file', `nodes-${port}.conf`, '--dbfilename', `dump-${port}.rdb`, ...CLUSTER_SETTINGS], port));
    }));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 60_000 });
    await waitFor(async () => {
      for (const port of ports) if (!(await converged(port, 6))) return false;
      return true;
    }, { what: 'every cluster node to see 3 masters and 3 synced replicas with links up', timeoutMs: 60_000, intervalMs: 200 });
  } catch (error) {
    await Promise.all([...servers.values()].map((server) => server.kill()));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const frozen = new Set<number>();
  const alive = () => ports.filter((port) => { if (frozen.has(port)) return false; const child = servers.get(port)!.child; return child.exitCode === null && child.signalCode === null; });
  const masters = async () => {
    const view = await ask(alive()[0], (client) => client.call('CLUSTER', 'NODES') as Promise<string>);
    return view.trim().split('\n').map((line) => line.split(' '))
      .filter((fields) => fields[2].split(',').includes('master') && !/fail/.test(fields[2]) && fields.length > 8)
      .map((fields) => Number(fields[1].split('@')[0].split(':')[1]));
  };
  const mastersAtStart = await masters();
  return {
    url: `redis://127.0.0.1:${ports[0]}`,
    ports,
    client() {
      const cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 3 }, clusterRetryStrategy: () => 200 });
      cluster.on('error', () => undefined);
      return cluster;
    },
    async masterOf(key) {
      const slot = await ask(alive()[0], (client) => client.call('CLUSTER', 'KEYSLOT', key) as Promise<number>);
      const shards = await ask(alive()[0], (client) => client.call('CLUSTER', 'SLOTS') as Promise<[number, number, [string, number]][]>);
      const range = shards.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return range[2][1];
    },
    masters,
    async replicaOf(port) {
      const lines = (await ask(alive()[0], (client) => client.call('CLUSTER', 'NODES') as Promise<string>)).trim().split('\n').map((line) => line.split(' '));
      const portOf = (fields: string[]) => Number(fields[1].split('@')[0].split(':')[1]);
      const master = lines.find((fields) => portOf(fields) === port);
      const replica = master && lines.find((fields) => fields[3] === master[0]);
      if (!replica) throw new Error(`no replica of ${port} in the cluster`);
      return portOf(replica);
    },
    async kill(port) {
      await servers.get(port)!.kill();
    },
    async dropReplicaLinks(port) {
      await ask(port, (client) => client.call('CLIENT', 'KILL', 'TYPE', 'replica'));
    },
    async restart(port) {
      servers.set(port, await launch(ARGS.get(port)!, port));
      await waitFor(async () => {
        for (const live of alive()) if (!(await converged(live, 6))) return false;
        return true;
      }, { what: `node ${port} to rejoin the cluster and sync`, timeoutMs: 60_000, intervalMs: 200 });
    },
    freeze(port) {
      frozen.add(port);
      servers.get(port)!.child.kill('SIGSTOP');
    },
    thaw(port) {
      frozen.delete(port);
      servers.get(port)!.child.kill('SIGCONT');
    },
    async waitForFailover(port, timeoutMs = 30_000) {
      let promoted = 0;
      const before = mastersAtStart;
      await waitFor(async () => {
        for (const live of alive()) {
          const info = await ask(live, (client) => client.call('CLUSTER', 'INFO') as Promise<string>);
          if (!/cluster_state:ok/.test(info)) return false;
        }
        const now = await masters();
        if (now.includes(port) || now.length !== 3) return false;
        promoted = now.find((master) => !before.includes(master)) ?? 0;
        return promoted !== 0;
      }, { what: `a replica to take over from the killed master ${port}`, timeoutMs, intervalMs: 100 });
      return promoted;
    },
    async stop() {
      await Promise.all([...servers.values()].map((server) => server.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const BUS = new Map<number, number>();
const ARGS = new Map<number, string[]>();

/** This node sees `nodes` nodes, all connected and none failing, 3 masters with slots, and, if a replica, its link to the master is up. */
async function converged(port: number, nodes: number): Promise<boolean> {
  return ask(port, async (client) => {
    const info = await client.call('CLUSTER', 'INFO') as string;
    if (!/cluster_state:ok/.test(info)) return false;
    const lines = (await client.call('CLUSTER', 'NODES') as string).trim().split('\n');
    if (lines.length !== nodes) return false;
    for (const line of lines) {
      const fields = line.split(' ');
      if (fields[7] !== 'connected' || /fail|handshake|noaddr/.test(fields[2])) return false;
    }
    if (lines.filter((line) => line.split(' ')[2].includes('master') && line.split(' ').length > 8).length !== 3) return false;
    const replication = await client.info('replication');
    return !/role:slave/.test(replication) || /master_link_status:up/.test(replication);
  });
}

export interface TestSentinel {
  masterName: string;
  /** Sentinels' host:port list. */
  nodes: string[];
  /** Password of the master and replicas (requirepass/masterauth). */
  password: string;
  /** Password of the sentinels (their own requirepass). */
  sentinelPassword: string;
  /** Port of the master Sentinel names now. */
  masterPort(): Promise<number>;
  /** A client of the current master. */
  client(): Redis;
  /** Ports of the data servers (master and replicas). */
  dataPorts: number[];
  kill(port: number): Promise<void>;
  /** SIGSTOP / SIGCONT one server. */
  freeze(port: number): void;
  thaw(port: number): void;
  /** Waits until the sentinels name a master other than `port` and it answers as master. */
  waitForFailover(port: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** 1 master, 2 replicas, 3 sentinels (quorum 2), all with passwords. */
export async function startSentinel(): Promise<TestSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-sentinel-'));
  const masterName = 'walrelay-master';
  const password = 'data-secret';
  const sentinelPassword = 'sentinel-secret';
  const servers: Server[] = [];
  const dataPorts = [await freePort(), await freePort(), await freePort()];
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];
  const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--requirepass', password, '--masterauth', password];
  try {
    servers.push(await launch(['--port', String(dataPorts[0]), '--dbfilename', `dump-${dataPorts[0]}.rdb`, ...common], dataPorts[0], password));
    for (const port of dataPorts.slice(1)) servers.push(await launch(['--port', String(port), '--dbfilename', `dump-${port}.rdb`, ...common, '--replicaof', '127.0.0.1', String(dataPorts[0])], port, password));
    await waitFor(async () => {
      const info = await ask(dataPorts[0], (client) => client.info('replication'), password);
      return (info.match(/state=online/g) ?? []).length === 2;
    }, { what: 'both replicas online', timeoutMs: 30_000, intervalMs: 100 });
    for (const port of sentinelPorts) {
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(file, [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `requirepass ${sentinelPassword}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${dataPorts[0]} 2`,
        `sentinel auth-pass ${masterName} ${password}`,
        `sentinel sentinel-pass ${sentinelPassword}`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 10000`,
        `sentinel parallel-syncs ${masterName} 2`,
        '',
      ].join('\n'));
      servers.push(await launch([file, '--sentinel'], port, sentinelPassword));
    }
    // Sentinels find each other and the replicas through the master's hello channel.
    await waitFor(async () => {
      for (const port of sentinelPorts) {
        const master = await ask(port, (client) => client.call('SENTINEL', 'MASTER', masterName) as Promise<string[]>, sentinelPassword);
        const field = (name: string) => Number(master[master.indexOf(name) + 1]);
        if (field('num-slaves') !== 2 || field('num-other-sentinels') !== 2) return false;
      }
      return true;
    }, { what: 'three sentinels that know each other and both replicas', timeoutMs: 60_000, intervalMs: 200 });
  } catch (error) {
    await Promise.all(servers.map((server) => server.kill()));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const byPort = new Map(servers.map((server) => [server.port, server]));
  const liveSentinel = () => sentinelPorts.find((port) => byPort.get(port)!.child.exitCode === null)!;
  const masterPort = async () => {
    const [, port] = await ask(liveSentinel(), (client) => client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName) as Promise<[string, string]>, sentinelPassword);
    return Number(port);
  };
  return {
    masterName,
    nodes: sentinelPorts.map((port) => `127.0.0.1:${port}`),
    password,
    sentinelPassword,
    masterPort,
    client() {
      const client = new Redis({ sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })), name: masterName, password, sentinelPassword, maxRetriesPerRequest: 3 });
      client.on('error', () => undefined);
      return client;
    },
    dataPorts,
    async kill(port) {
      await byPort.get(port)!.kill();
    },
    freeze(port) {
      byPort.get(port)!.child.kill('SIGSTOP');
    },
    thaw(port) {
      byPort.get(port)!.child.kill('SIGCONT');
    },
    async waitForFailover(port, timeoutMs = 60_000) {
      let now = port;
      await waitFor(async () => {
        now = await masterPort();
        if (now === port) return false;
        const role = await ask(now, (client) => client.call('ROLE') as Promise<string[]>, password);
        return role[0] === 'master';
      }, { what: `sentinels to promote a replica in place of ${port}`, timeoutMs, intervalMs: 200 });
      return now;
    },
    async stop() {
      await Promise.all(servers.map((server) => server.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
