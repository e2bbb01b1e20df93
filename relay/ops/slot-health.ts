// Slot health for monitoring: how much WAL the slot keeps on the server's
// disk (current WAL position − restart_lsn) and its wal_status, read every
// few seconds over an ordinary (non-replication) connection, so the figures
// stay fresh while the replication connection is down, paused or stuck.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

export interface SlotHealth {
  /** null when the slot does not exist. */
  walStatus: string | null;
  /** null when the slot does not exist or is lost (it holds no WAL). */
  retainedBytes: number | null;
}

/** On a standby pg_current_wal_lsn() fails; the replayed position is the one WAL is kept from. */
const SLOT_HEALTH_SQL = `
  SELECT wal_status,
         ((CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END) - restart_lsn)::bigint AS retained
  FROM pg_replication_slots WHERE slot_name = $1`;

export async function readSlotHealth(pool: { query(text: string, values?: unknown[]): Promise<pg.QueryResult> }, slot: string): Promise<SlotHealth> {
  const row = (await pool.query(SLOT_HEALTH_SQL, [slot])).rows[0];
  if (!row) return { walStatus: null, retainedBytes: null };
  return { walStatus: row.wal_status ?? null, retainedBytes: row.retained === null ? null : Math.max(0, Number(row.retained)) };
}

/** Polls the slot's health into the metrics until the returned function is called. */
export function watchSlotHealth(pool: { query(text: string, values?: unknown[]): Promise<pg.QueryResult> }, slot: string, intervalSeconds: number, metrics: Metrics, logger: Logger): () => void {
  let running = false;
  let lastStatus: string | null | undefined;
  const poll = async () => {
    if (running) return; // a slow server: never pile up queries
    running = true;
    try {
      const health = await readSlotHealth(pool, slot);
      metrics.observeSlotHealth(health.walStatus, health.retainedBytes);
      if (health.walStatus !== lastStatus && (health.walStatus === 'unreserved' || health.walStatus === 'lost')) {
        logger.warn({ slot, walStatus: health.walStatus }, health.walStatus === 'lost'
          ? 'the replication slot is lost: PostgreSQL removed WAL it needed'
          : 'the replication slot is about to lose WAL (max_slot_wal_keep_size exceeded); it becomes lost at the next checkpoint unless it catches up');
      }
      lastStatus = health.walStatus;
    } catch (error) {
      logger.debug({ err: (error as Error).message }, 'reading slot health failed');
    } finally {
      running = false;
    }
  };
  void poll();
  const timer = setInterval(poll, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
