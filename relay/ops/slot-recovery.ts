// source.onSlotLost: what happens when the slot is invalidated (wal_status
// lost: max_slot_wal_keep_size exceeded) or dropped while walrelay runs.
//
// fail (default): stop with the fix. recreate: create a new slot, write a gap
// message into the WAL, then re-snapshot the published tables with the
// backfill. The gap message is written right after the new slot's consistent
// point, so the new slot delivers it through the normal path, before the
// re-snapshot's reads, and a crash after that re-delivers it like any change.
//
// So that no crash, lost connection or error can lose the gap, the new slot is
// first created under a second name, <slot>_recreating, and kept until the
// re-snapshot is done; it marks a recreation under way:
//   1. create <slot>_recreating (its consistent point is the gap's toLsn);
//   2. write the gap message;
//   3. drop the lost <slot> and copy <slot>_recreating to <slot> (one
//      statement: pg_copy_logical_replication_slot copies the position, so
//      <slot> streams from the consistent point, gap message included);
//   4. re-snapshot; 5. drop <slot>_recreating.
// Every recovery attempt and every start looks for <slot>_recreating first: if
// <slot> is lost or missing, the gap may not be written (step 1 or 2
// interrupted), so it is written (again: a duplicate gap is harmless, a
// missing one is not) before step 3; if <slot> streams, only the re-snapshot
// was interrupted, and it runs again. (A change committed in the milliseconds
// between the slot's creation and the gap message arrives just before the gap.)
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { WalrelayError } from '../errors.js';
import { type Lsn, ZERO_LSN, formatLsn, maxLsn, parseLsn } from '../lsn.js';
import { withSourceClient } from '../setup/source-client.js';
import { step } from '../setup/pg-errors.js';
import { backfillTables, publishedTables } from '../backfill/backfill.js';
import { GAP_PREFIX, type GapMessage } from '../route/gap.js';
import { emitControlMessage, loadControlKey } from '../route/control-message.js';

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

/** onSlotLost: fail after a switch to a primary that lacks the slot: which host, and why that happens. */
export function slotNotCarriedOver(error: WalrelayError, slot: string, from: string, to: string): WalrelayError {
  return new WalrelayError(error.code, `replication slot ${slot} ${error.code === 'SLOT_LOST' ? 'is invalidated' : 'does not exist'} on ${to}, the primary walrelay switched to after ${from} failed: ` +
    'it was not a failover slot, the standby had not synchronized it before the promotion, or it was invalidated; changes may have been lost', {
    hint: 'on PostgreSQL 17+ use source.failoverSlot: auto (or true) and sync_replication_slots = on on the standbys; now ' +
      'set source.onSlotLost: recreate to have walrelay recreate the slot, send a gap event and re-snapshot the published tables, ' +
      'or run "walrelay teardown", "walrelay setup" and "walrelay backfill --restart -c FILE TABLE…" yourself',
    cause: error,
  });
}

export interface Recreated {
  fromLsn: Lsn;
  toLsn: Lsn;
  /** False when another instance recreated the slot first (it sent the gap event). */
  byUs: boolean;
  /** True when only the re-snapshot of an earlier, interrupted recreation was left to do. */
  resnapshotOnly?: boolean;
}

/** The slot that marks a recreation under way (see above); at most 63 characters like any slot name. */
export function recreatingSlotName(slot: string): string {
  return `${slot.slice(0, 52)}_recreating`;
}

interface SlotRow { wal_status: string | null; confirmed: string | null }

async function readSlotRow(client: pg.Client, name: string): Promise<SlotRow | undefined> {
  return (await client.query('SELECT wal_status, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1', [name])).rows[0];
}

/** True when an earlier recreation was interrupted (walrelay must finish it before streaming). */
export async function recreationUnderWay(client: pg.Client, slot: string): Promise<boolean> {
  return (await readSlotRow(client, recreatingSlotName(slot))) !== undefined;
}

/**
 * Recreates the lost or dropped slot and writes the gap message, or finishes
 * an interrupted recreation. `delivered` is the position this process had
 * delivered up to, if it streamed at all (a dropped slot leaves nothing else
 * to go by).
 */
export async function recreateSlot(config: Config, delivered: Lsn | null): Promise<Recreated> {
  const { slot } = config.source;
  const marker = recreatingSlotName(slot);
  return step(`recreating replication slot ${slot}`, () => withSourceClient(config, async (client) => {
    const old = await readSlotRow(client, slot);
    let underWay = await readSlotRow(client, marker);
    if (old && old.wal_status !== 'lost') {
      // Streams again: the recreation got past step 3 (ours, or another instance's).
      const toLsn = parseLsn(underWay?.confirmed ?? old.confirmed ?? '0/0');
      return { fromLsn: toLsn, toLsn, byUs: underWay !== undefined, resnapshotOnly: underWay !== undefined };
    }
    const interrupted = underWay !== undefined;
    if (underWay?.wal_status === 'lost') {
      // An interrupted recreation's slot lost WAL itself: it can no longer be copied; start over.
      await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [marker]);
      underWay = undefined;
    }
    const slotConfirmed = old?.confirmed ? parseLsn(old.confirmed) : null;
    let from = slotConfirmed !== null && delivered !== null ? maxLsn(slotConfirmed, delivered) : slotConfirmed ?? delivered;
    if (from === null) {
      // The old slot is gone (dropped by hand, or by step 3 whose copy then failed) and this process never streamed:
      // where the gap starts is unknown, so it starts at 0/0.
      if (!interrupted) throw new WalrelayError('SLOT_MISSING', `replication slot ${slot} does not exist and walrelay does not know where it stopped`, { hint: 'run "walrelay setup -c FILE" (with source.snapshot: initial to emit the existing rows)' });
      from = ZERO_LSN;
    }
    if (!underWay) {
      try {
        await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [marker]);
      } catch (error) {
        if ((error as { code?: string }).code !== '42710') throw error; // 42710: another instance is recreating it
        throw new WalrelayError('SLOT_LOST', `another walrelay is recreating replication slot ${slot} (slot ${marker} exists)`, {
          retriable: true, hint: 'walrelay tries again and finishes the recreation if the other instance does not', cause: error,
        });
      }
      underWay = await readSlotRow(client, marker);
    }
    const created = underWay!.confirmed!;
    const gap: GapMessage = { v: 1, slot, fromLsn: formatLsn(from), toLsn: created };
    // Signed, in a transaction of its own (the signature names its xid): the relay drops a gap message anyone else wrote.
    const controlKey = await loadControlKey(client);
    await client.query('BEGIN');
    try {
      await emitControlMessage(client, controlKey, GAP_PREFIX, JSON.stringify(gap));
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    // The old slot is dropped only when its copy can be made: checked first, then one simple query, which the
    // server runs through even if walrelay dies after sending it.
    const copy = 'pg_copy_logical_replication_slot(name,name)';
    if (!(await client.query('SELECT has_function_privilege($1, \'EXECUTE\') AS ok', [copy])).rows[0].ok) {
      throw new WalrelayError('PERMISSION_DENIED', `permission denied for function pg_copy_logical_replication_slot, needed to recreate replication slot ${slot}`, {
        hint: `have a superuser run: GRANT EXECUTE ON FUNCTION ${copy} TO the role of source.url; walrelay finishes the recreation when it starts again`,
      });
    }
    const name = client.escapeLiteral(slot);
    try {
      await client.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ${name} AND wal_status = 'lost';
        SELECT pg_copy_logical_replication_slot(${client.escapeLiteral(marker)}, ${name})`);
    } catch (error) {
      if ((error as { code?: string }).code !== '42710') throw error; // another instance finished first: its copy streams the same gap
    }
    return { fromLsn: from, toLsn: parseLsn(created), byUs: true };
  }));
}

/** Step 5: the re-snapshot is done, the recreation is over. */
export async function endRecreation(config: Config): Promise<void> {
  await step(`dropping replication slot ${recreatingSlotName(config.source.slot)}`, () => withSourceClient(config, async (client) => {
    await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [recreatingSlotName(config.source.slot)]);
  }));
}

/** Re-emits every published table's rows as read events (after the gap message, so after the gap event). */
export async function resnapshot(config: Config, logger: Logger, signal: AbortSignal): Promise<string[]> {
  const tables = await publishedTables(config);
  logger.info({ tables }, 're-snapshot: emitting the current rows of the published tables');
  await backfillTables(config, tables, { chunkRows: 1000, say: (line) => logger.info(`re-snapshot: ${line}`), signal });
  return tables;
}

