// A throwaway redis-server on a random loopback port, without persistence
// except what SHUTDOWN SAVE writes into its temp dir (loaded on restart).
//
// Redis calls setlocale(LC_COLLATE, "") at start, and Lua compares strings
// with strcoll: a script's `<` depends on the server's locale. So the server
// runs under en_US.UTF-8 by default whenever that locale is installed (.ci/run
// installs it), where punctuation is ignored at the first collation level and
// a script that compares with `<` gives other answers than under C.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface TestRedis {
  port: number;
  url: string;
  /** A new client; the caller disconnects it. */
  client(): Redis;
  /** SHUTDOWN SAVE: the data lands in dump.rdb, which restart() loads. Resolves once the server has exited. */
  shutdownSaving(): Promise<void>;
  /** Starts the server again (after SHUTDOWN or a crash) on the same port and dir. */
  restart(): Promise<void>;
  /** SIGSTOP: the server hangs with its sockets open (no replies, no close). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /**
   * LANG / LC_ALL of the server. Default: en_US.UTF-8 when installed, else C.
   * A locale named here must be installed, and is checked to be in effect.
   */
  locale?: string;
  /** More redis-server arguments, e.g. ['--databases', '16'] or ['--replicaof', '127.0.0.1', '6380']. */
  args?: string[];
  /** Password for the server's default user (--requirepass); `url` and client() then carry it. */
  password?: string;
}

/** Whether a locale is installed (locale -a lists "en_US.utf8" for en_US.UTF-8). */
export function localeInstalled(locale: string): boolean {
  const normalize = (name: string) => name.toLowerCase().replace(/[-_.]/g, '');
  try {
    return execFileSync('locale', ['-a'], { encoding: 'utf8' }).split('\n').some((line) => normalize(line) === normalize(locale));
  } catch {
    return false;
  }
}

export const HOSTILE_LOCALE = 'en_US.UTF-8';

/**
 * Whether the server's Lua compares strings under a locale that ignores
 * punctuation: "A-0000000000" < "A-.begin" holds under en_US.UTF-8 and not
 * under C (where "." 0x2E sorts before "0" 0x30).
 */
export async function luaCollatesByLocale(client: Redis): Promise<boolean> {
  return (await client.eval(`return tostring('A-0000000000' < 'A-.begin')`, 0)) === 'true';
}

export async function startRedis(options: RedisOptions = {}): Promise<TestRedis> {
  const locale = options.locale ?? (localeInstalled(HOSTILE_LOCALE) ? HOSTILE_LOCALE : 'C');
  if (options.locale !== undefined && options.locale !== 'C' && !localeInstalled(options.locale)) {
    throw new Error(`locale ${options.locale} is not installed (locale -a); add it to /etc/locale.gen and run locale-gen (.ci/run does)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-redis-'));
  const port = await freePort();
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  const url = `redis://${auth}127.0.0.1:${port}`;
  let child: ChildProcess;
  let output = '';

  const launch = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(options.password === undefined ? [] : ['--requirepass', options.password]), ...(options.args ?? [])];
    child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LANG: locale, LC_ALL: locale } });
    child.stdout!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
    child.stderr!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } finally {
        probe.disconnect();
      }
    }, { what: `redis-server on port ${port}`, timeoutMs: 45_000 });
  };

  const halt = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };

  await launch();
  if (options.locale !== undefined && options.locale !== 'C') {
    // A locale that setlocale() refused leaves the server under C without a word: check it took effect.
    const probe = new Redis(url);
    probe.on('error', () => undefined);
    try {
      if (!(await luaCollatesByLocale(probe))) throw new Error(`redis-server started with LANG=${locale} still compares strings in Lua like the C locale`);
    } finally {
      probe.disconnect();
    }
  }
  return {
    port,
    url,
    client: () => {
      const client = new Redis(url);
      client.on('error', () => undefined);
      return client;
    },
    async shutdownSaving() {
      // No reconnects: a client that retries SHUTDOWN would wait out its whole backoff schedule.
      const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      admin.on('error', () => undefined);
      await admin.connect();
      // The reply never comes (the server exits); a refusal (e.g. the save failed) is an error reply.
      const refused = await admin.call('SHUTDOWN', 'SAVE').then(() => null, (error: Error) => (error.name === 'ReplyError' ? error : null));
      admin.disconnect();
      if (refused) throw new Error(`redis refused SHUTDOWN SAVE: ${refused.message}`);
      await waitFor(() => child.exitCode !== null || child.signalCode !== null, { what: `redis-server on port ${port} to exit after SHUTDOWN SAVE`, timeoutMs: 20_000 });
    },
    async restart() {
      await halt();
      await launch();
    },
    freeze() {
      child.kill('SIGSTOP');
    },
    thaw() {
      child.kill('SIGCONT');
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
