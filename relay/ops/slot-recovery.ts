// source.onSlotLost: what happens when the slot is invalidated (wal_status
// lost: max_slot_wal_keep_size exceeded) or dropped while walrelay runs.
//
// fail (default): stop with the fix. recreate: drop the lost slot, create it
// again, write a gap message into the WAL, then re-snapshot the published
// tables with the backfill. The gap message is written right after the new
// slot's consistent point, so the new slot delivers it through the normal
// path, before the re-snapshot's reads: every sink gets it in order, and a
// crash after the recreation re-delivers it like any change (same id)
// instead of forgetting it. (A change committed in the milliseconds between
// the slot's creation and the gap message arrives just before the gap.)
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { WalrelayError } from '../errors.js';
import { type Lsn, formatLsn, maxLsn, parseLsn } from '../lsn.js';
import { withSourceClient } from './setup.js';
import { step } from './pg-errors.js';
import { backfillTables, publishedTables } from './backfill.js';
import { GAP_PREFIX, type GapMessage } from '../route/gap.js';

/** The slot keeps its name, so backfill's progress file still marks earlier backfills done: --restart. */
export const RESNAPSHOT_COMMAND = '"walrelay backfill --restart -c FILE TABLE…"';

const FIX = 'set source.onSlotLost: recreate to have walrelay recreate the slot, send a gap event and re-snapshot the published tables, ' +
  `or run "walrelay teardown", "walrelay setup" and ${RESNAPSHOT_COMMAND} for the published tables yourself`;

/** True for the errors that mean the slot can never stream again. */
export function isSlotGone(error: unknown): boolean {
  return error instanceof WalrelayError && (error.code === 'SLOT_LOST' || error.code === 'SLOT_MISSING');
}

/** The error that stops a relay in onSlotLost: fail mode, with the whole fix. */
export function slotGoneError(error: WalrelayError, slot: string, wasStreaming: boolean): WalrelayError {
  if (error.code === 'SLOT_LOST') {
    return new WalrelayError('SLOT_LOST', `replication slot ${slot} was invalidated (wal_status 'lost'): PostgreSQL removed WAL it still needed, so changes were lost`, {
      hint: `${FIX}; raise max_slot_wal_keep_size (or fix what kept walrelay behind) so it does not happen again`, cause: error,
    });
  }
  if (!wasStreaming) return error; // never streamed in this process: setup was not run (setup.ts says so)
  return new WalrelayError('SLOT_MISSING', `replication slot ${slot} was dropped while walrelay was streaming from it, so changes may have been lost`, {
    hint: FIX, cause: error,
  });
}

export interface Recreated {
  fromLsn: Lsn;
  toLsn: Lsn;
  /** False when another instance recreated the slot first (it sent the gap event). */
  byUs: boolean;
}

/**
 * Drops the slot if it is still lost, creates it again and writes the gap
 * message. `delivered` is the position this process had delivered up to, if
 * it streamed at all (a dropped slot leaves nothing else to go by).
 */
export async function recreateSlot(config: Config, delivered: Lsn | null): Promise<Recreated> {
  const { slot } = config.source;
  return step(`recreating replication slot ${slot}`, () => withSourceClient(config, async (client) => {
    const old = (await client.query('SELECT wal_status, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0];
    const slotConfirmed = old?.confirmed ? parseLsn(old.confirmed) : null;
    const from = slotConfirmed !== null && delivered !== null ? maxLsn(slotConfirmed, delivered) : slotConfirmed ?? delivered;
    if (from === null) {
      throw new WalrelayError('SLOT_MISSING', `replication slot ${slot} does not exist and walrelay does not know where it stopped`, { hint: 'run "walrelay setup -c FILE" (with source.snapshot: initial to emit the existing rows)' });
    }
    // Only a slot that is still lost is dropped: a standby instance may have recreated it meanwhile.
    if (old?.wal_status === 'lost') await client.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND wal_status = 'lost'`, [slot]);
    let created: string;
    try {
      created = (await client.query("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot])).rows[0].lsn;
    } catch (error) {
      if ((error as { code?: string }).code !== '42710') throw error; // 42710: it exists (another instance recreated it)
      const existing = (await client.query('SELECT confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0];
      return { fromLsn: from, toLsn: parseLsn(existing?.confirmed ?? formatLsn(from)), byUs: false };
    }
    const gap: GapMessage = { v: 1, slot, fromLsn: formatLsn(from), toLsn: created };
    await client.query('SELECT pg_logical_emit_message(true, $1, $2)', [GAP_PREFIX, JSON.stringify(gap)]);
    return { fromLsn: from, toLsn: parseLsn(created), byUs: true };
  }));
}

/** Re-emits every published table's rows as read events (after the gap message, so after the gap event). */
export async function resnapshot(config: Config, logger: Logger, signal: AbortSignal): Promise<string[]> {
  const tables = await publishedTables(config);
  logger.info({ tables }, 're-snapshot: emitting the current rows of the published tables');
  await backfillTables(config, tables, { chunkRows: 1000, say: (line) => logger.info(`re-snapshot: ${line}`), signal });
  return tables;
}

