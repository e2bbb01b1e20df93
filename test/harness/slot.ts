// A slot's confirmed position, and waiting until walrelay has confirmed
// everything written so far. The harness runs PostgreSQL with
// synchronous_commit = off, so "written so far" is pg_current_wal_insert_lsn()
// (pg_current_wal_lsn() can lag behind a commit that already returned).
import { parseLsn } from '../../relay/lsn.js';
import type { TestPostgres } from './postgres.js';
import { waitFor } from './wait.js';

type Queryable = Pick<TestPostgres, 'query'>;

export async function confirmedFlush(server: Queryable, slot = 'walrelay'): Promise<bigint> {
  const [row] = await server.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  if (!row) throw new Error(`no replication slot ${slot}`);
  return parseLsn(row.lsn);
}

export async function walInsertLsn(server: Queryable): Promise<bigint> {
  const [row] = await server.query(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
  return parseLsn(row.lsn);
}

/** Waits until `slot` is confirmed at or past everything written before the call. */
export async function waitUntilConfirmed(server: Queryable, slot = 'walrelay', options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<void> {
  const written = await walInsertLsn(server);
  await waitFor(async () => (await confirmedFlush(server, slot)) >= written, {
    what: options.what ?? `slot ${slot} to confirm every change`,
    timeoutMs: options.timeoutMs ?? 60_000,
    intervalMs: options.intervalMs ?? 200,
  });
}
