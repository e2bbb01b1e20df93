// A real walrelay process with `supabase: true` on a real PostgreSQL, for
// the tests that drive Supabase's own Realtime clients against it: keys
// minted with walrelay's claims, fresh tables per test, and a TCP proxy
// that can cut a client's connection.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { SignJWT } from 'jose';
import { startPostgres, type PgFlavor, type TestPostgres } from './postgres.js';
import { writeConfig, spawnRelay, runCli, type RelayProcess } from './relay.js';
import { freePort } from './ports.js';

export const SECRET = 'realtime-test-secret-of-reasonable-length-123';

/** A key with walrelay's claims, signed with the sink's jwtSecret; `expiresIn` in seconds. */
export async function mintKey(claims: Record<string, unknown> = { tables: ['public.*'] }, expiresIn = 3600): Promise<string> {
  return new SignJWT({ role: 'anon', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn)
    .sign(new TextEncoder().encode(SECRET));
}

export interface RealtimeRelay {
  pg: TestPostgres;
  relay: RelayProcess;
  port: number;
  /** ws://127.0.0.1:PORT/realtime/v1 (clients append /websocket). */
  endpoint: string;
  /** A new table public.<name> with one column of each type Realtime renders specially. */
  newTable(): Promise<string>;
  stop(): Promise<void>;
}

let tables = 0;

export async function startRealtimeRelay(flavor: PgFlavor, sink: Record<string, unknown> = {}): Promise<RealtimeRelay> {
  const pg = await startPostgres(flavor);
  let relay: RelayProcess | undefined;
  try {
    const port = await freePort();
    const configFile = writeConfig({
      source: { url: pg.url, slot: 'realtime', publication: 'realtime' }, // ALL TABLES: each test's new table is published at once
      sinks: [{ type: 'websocket', port, auth: { jwtSecret: SECRET }, supabase: true, ...sink }],
    });
    const setup = await runCli(['setup', '-c', configFile]);
    if (setup.code !== 0) throw new Error(`setup failed: ${setup.stderr}`);
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    const running = relay;
    return {
      pg, relay, port,
      endpoint: `ws://127.0.0.1:${port}/realtime/v1`,
      async newTable() {
        const name = `todos_${++tables}`;
        await pg.query(`CREATE TABLE ${name} (id int PRIMARY KEY, task text, done bool, big int8, price numeric(10,2), at timestamptz, span interval, raw bytea, tags int8[])`);
        return name;
      },
      async stop() {
        running.signal('SIGTERM');
        await running.exited;
        await pg.stop();
      },
    };
  } catch (error) {
    relay?.signal('SIGKILL');
    await pg.stop();
    throw error;
  }
}

/** A TCP proxy to the relay whose connections can be cut, and new ones refused, to simulate a network drop. */
export interface Cutter {
  port: number;
  /** Destroys every open connection and refuses new ones until `restore`. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startCutter(targetPort: number): Promise<Cutter> {
  const open = new Set<Socket>();
  let down = false;
  const server: Server = createServer((incoming) => {
    if (down) {
      incoming.destroy();
      return;
    }
    const outgoing = connect(targetPort, '127.0.0.1');
    open.add(incoming).add(outgoing);
    for (const [from, to] of [[incoming, outgoing], [outgoing, incoming]]) {
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => { to.destroy(); open.delete(from); });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    cut() {
      down = true;
      for (const socket of open) socket.destroy();
    },
    restore() { down = false; },
    close() {
      for (const socket of open) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
