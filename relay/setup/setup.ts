// Setup, status and teardown of the publication and slot. Preflight checks
// (preflight.ts) come first, so that nothing is half done when the role lacks
// a privilege, and every finding that stops setup says what to run to fix it.
import { loadControlKey } from '../route/control-message.js';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { WalrelayError } from '../errors.js';
import { backfillTables, publishedTables } from '../backfill/backfill.js';
import { quoteIdent, quoteQualified, sqlName, sqlQualified } from './sql.js';
import { step } from './pg-errors.js';
import { withSourceClient } from './source-client.js';
import { createPublicationSql } from './print-sql.js';
import { recreatingSlotName } from '../ops/slot-recovery.js';
import { FAILOVER_MIN_VERSION, enableFailover, readFailoverState, unsynchronizedWarning, wantsFailover } from './failover-slot.js';
import { hostLabel, type SourceHost } from '../source/hosts.js';
import {
  CREATED_BY, checkBackfillPrivileges, checkServer, identityWarnings, inspectPublication, inspectTables, publicationBlockers, publishedTableNames, serverVersion,
  type TableAccess,
} from './preflight.js';

export { checkServer } from './preflight.js';
export { withSourceClient } from './source-client.js';

export async function setupReplication(config: Config, logger: Logger, say: (line: string) => void = (line) => logger.info(line)): Promise<void> {
  const { slot, publication, tables, publishViaPartitionRoot } = config.source;
  let slotCreated = false;
  let turnOnFailover: SourceHost | null = null;
  await withSourceClient(config, async (client, host) => {
    await checkServer(client);
    const version = await serverVersion(client);
    const failover = wantsFailover(config, version);
    if (config.source.url.includes(',')) say(`using ${hostLabel(host)}, the primary among the hosts of source.url`);
    // Everything is checked before anything is created: a missing privilege must not leave a slot without its snapshot.
    const access = tables ? await inspectTables(client, publication, tables) : undefined;
    const existing = await inspectPublication(client, publication);
    if (!existing.exists) {
      const blockers = await publicationBlockers(client, access);
      if (blockers.length > 0) {
        throw new WalrelayError('PUBLICATION_PRIVILEGE', `cannot create publication ${publication}: ${blockers.join('; ')}`, {
          hint: `have a superuser (or the tables' owner) run: ${createPublicationSql(config)} (every grant walrelay needs: walrelay setup --print-sql -c FILE), then run setup again`,
        });
      }
    } else {
      checkPublicationChangeable(config, existing, access);
    }
    const slotRow = (await client.query(`SELECT plugin, slot_type, database, active, ${version >= FAILOVER_MIN_VERSION ? 'failover' : 'false AS failover'}
      FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows[0];
    if (slotRow && (slotRow.plugin !== 'pgoutput' || slotRow.slot_type !== 'logical')) {
      throw new WalrelayError('SLOT_WRONG_PLUGIN', `slot ${slot} exists but is a ${slotRow.slot_type} slot with plugin ${slotRow.plugin}`, {
        hint: 'choose another source.slot, or drop that slot with pg_drop_replication_slot if nothing needs it',
      });
    }
    if (!slotRow && config.source.snapshot === 'initial') {
      const toSnapshot = existing.exists ? await publishedTableNames(client, publication) : tables;
      if (toSnapshot) await checkBackfillPrivileges(client, toSnapshot);
    }

    // The table of the keys that sign control messages: created here, where setup often runs with more privileges than the relay.
    await loadControlKey(client).catch((error: unknown) => {
      if (!(error instanceof WalrelayError && error.code === 'CONTROL_KEY_MISSING')) throw error;
      say(`warning: ${error.describe()}`);
    });
    if (!existing.exists) {
      await step(`creating publication ${publication}`, () => client.query(createPublicationSql(config).replace(/;$/, '')));
      await client.query(`COMMENT ON PUBLICATION ${quoteIdent(publication)} IS '${CREATED_BY}'`);
      say(`created publication ${publication} ${tables ? `FOR TABLE ${tables.join(', ')}` : 'FOR ALL TABLES'}${publishViaPartitionRoot ? ' WITH (publish_via_partition_root = true)' : ''}`);
    } else {
      say(`publication ${publication} exists`);
      if (existing.viaRoot !== publishViaPartitionRoot) {
        await step(`changing publication ${publication}`, () => client.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET (publish_via_partition_root = ${publishViaPartitionRoot})`));
        say(`set publish_via_partition_root = ${publishViaPartitionRoot} on publication ${publication}`);
      }
      const missing = (access ?? []).filter((table) => !table.published).map((table) => table.name);
      if (missing.length > 0) {
        await step(`adding tables to publication ${publication}`, () => client.query(`ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${missing.map(quoteQualified).join(', ')}`));
        say(`added ${missing.join(', ')} to publication ${publication}`);
      }
    }
    for (const warning of await identityWarnings(client, publication)) say(`warning: ${warning}`);

    if (!slotRow) {
      // FAILOVER is set in the creating statement itself: it cannot be added afterwards on a connection whose snapshot matters.
      const create = failover
        ? "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
        : "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')";
      const created = await step(`creating replication slot ${slot}`, async () => (await client.query(create, [slot])).rows[0]);
      say(`created replication slot ${slot} (pgoutput${failover ? ', failover' : ''}) at ${created.lsn}`);
      slotCreated = true;
    } else {
      say(`replication slot ${slot} exists${slotRow.failover ? ' (failover)' : ''}`);
      if (failover && !slotRow.failover) {
        if (slotRow.active) say(`warning: replication slot ${slot} is not a failover slot and is in use: walrelay turns FAILOVER on when it next starts streaming`);
        else turnOnFailover = host;
      }
    }
  });
  if (turnOnFailover) {
    await enableFailover(config, turnOnFailover);
    say(`turned on FAILOVER for existing replication slot ${slot} (source.failoverSlot: ${config.source.failoverSlot})`);
  }
  await withSourceClient(config, async (client) => {
    const state = await readFailoverState(client, slot, await serverVersion(client));
    if (state.failover) say(`synchronized_standby_slots: ${state.synchronizedStandbySlots ?? '(empty)'}`);
    const warning = unsynchronizedWarning(state);
    if (warning) say(`warning: ${warning}`);
  });
  if (slotCreated && config.source.snapshot === 'initial') {
    // The chunks go into the WAL after the slot's start, so `run` delivers them first, as "read" events.
    const published = await publishedTables(config);
    say(`snapshot: initial: emitting the current rows of ${published.length} table(s)`);
    await backfillTables(config, published, { chunkRows: 1000, say });
  }
}

/**
 * An existing publication that lacks configured tables, or has another
 * publish_via_partition_root, can only be changed by its owner (who must also
 * own the tables to add). Anyone else gets the ALTER to hand to its owner.
 */
function checkPublicationChangeable(config: Config, existing: { owned: boolean; allTables: boolean; viaRoot: boolean }, access: TableAccess[] | undefined): void {
  const { publication, publishViaPartitionRoot } = config.source;
  const name = sqlName(publication);
  const fixes: string[] = [];
  const problems: string[] = [];
  if (existing.viaRoot !== publishViaPartitionRoot && !existing.owned) {
    problems.push(`it has publish_via_partition_root = ${existing.viaRoot}, source.publishViaPartitionRoot is ${publishViaPartitionRoot}`);
    fixes.push(`ALTER PUBLICATION ${name} SET (publish_via_partition_root = ${publishViaPartitionRoot});`);
  }
  const missing = (access ?? []).filter((table) => !table.published);
  if (missing.length > 0 && (!existing.owned || missing.some((table) => !table.owned))) {
    problems.push(`it does not publish ${missing.map((table) => table.name).join(', ')}`);
    fixes.push(`ALTER PUBLICATION ${name} ADD TABLE ${missing.map((table) => sqlQualified(table.name)).join(', ')};`);
  }
  if (fixes.length === 0) return;
  throw new WalrelayError('PUBLICATION_MISMATCH', `publication ${publication} does not match the configuration: ${problems.join('; ')}`, {
    hint: `have its owner or a superuser run: ${fixes.join(' ')} (or correct source.tables / source.publishViaPartitionRoot)`,
  });
}

export interface SlotStatus {
  slot: string;
  exists: boolean;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: string | null;
  restartLsn: string | null;
  currentWalLsn: string;
  lagBytes: number | null;
  walStatus: string | null;
  publication: string;
  publicationExists: boolean;
  publicationTables: string[];
  /** Whether the slot is a failover slot (PostgreSQL 17+), which a promoted standby keeps. */
  failover: boolean;
  /** The primary's synchronized_standby_slots; null when empty (or before PostgreSQL 17). */
  synchronizedStandbySlots: string | null;
  /** host:port of the server this status was read from. */
  host: string;
  warnings: string[];
}

export async function readStatus(config: Config): Promise<SlotStatus> {
  const { slot, publication } = config.source;
  return withSourceClient(config, async (client, host) => {
    const version = await serverVersion(client);
    const current = (await client.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn as string;
    const row = (await client.query(`
      SELECT active, active_pid, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart, wal_status,
             (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint AS lag
      FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows[0];
    const publicationExists = (await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication])).rowCount === 1;
    const tables = await publishedTableNames(client, publication);
    const failover = await readFailoverState(client, slot, version);
    const warning = row ? unsynchronizedWarning(failover) : null;
    return {
      slot,
      exists: row !== undefined,
      active: row?.active ?? false,
      activePid: row?.active_pid ?? null,
      confirmedFlushLsn: row?.confirmed ?? null,
      restartLsn: row?.restart ?? null,
      currentWalLsn: current,
      lagBytes: row?.lag === null || row?.lag === undefined ? null : Number(row.lag),
      walStatus: row?.wal_status ?? null,
      publication,
      publicationExists,
      publicationTables: tables,
      failover: failover.failover,
      synchronizedStandbySlots: failover.synchronizedStandbySlots,
      host: hostLabel(host),
      warnings: warning ? [warning] : [],
    };
  });
}

export async function teardownReplication(config: Config, say: (line: string) => void): Promise<void> {
  const { slot, publication } = config.source;
  await withSourceClient(config, async (client) => {
    const slotRow = (await client.query('SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0];
    if (slotRow?.active) {
      throw new WalrelayError('SLOT_ACTIVE', `slot ${slot} is in use by PID ${slotRow.active_pid}`, { hint: 'stop the walrelay (or other consumer) streaming from it, then run teardown again' });
    }
    if (slotRow) {
      await step(`dropping replication slot ${slot}`, () => client.query('SELECT pg_drop_replication_slot($1)', [slot]));
      say(`dropped replication slot ${slot}`);
    } else {
      say(`replication slot ${slot} does not exist`);
    }
    // Left by a slot recreation walrelay did not finish (slot-recovery.ts): it would re-run the re-snapshot after a new setup.
    const marker = recreatingSlotName(slot);
    const dropped = await step(`dropping replication slot ${marker}`, () =>
      client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [marker]));
    if (dropped.rowCount) say(`dropped replication slot ${marker} (left by an unfinished slot recreation)`);
    const comment = (await client.query(`SELECT obj_description(oid, 'pg_publication') AS comment FROM pg_publication WHERE pubname = $1`, [publication])).rows[0];
    if (comment?.comment === CREATED_BY) {
      await step(`dropping publication ${publication}`, () => client.query(`DROP PUBLICATION ${quoteIdent(publication)}`));
      say(`dropped publication ${publication}`);
    } else if (comment) {
      say(`kept publication ${publication} (walrelay did not create it)`);
    }
  });
}

/** Fails loudly on a slot that can never stream again, before connecting to it. */
export async function checkSlot(client: pg.Client, slot: string): Promise<{ confirmedFlushLsn: string | null }> {
  const row = (await client.query('SELECT wal_status, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0];
  if (!row) throw new WalrelayError('SLOT_MISSING', `replication slot ${slot} does not exist`, { hint: 'run "walrelay setup -c FILE" to create it' });
  if (row.wal_status === 'lost') {
    throw new WalrelayError('SLOT_LOST', `replication slot ${slot} has wal_status 'lost': PostgreSQL removed WAL it still needed`, {
      hint: 'changes were lost upstream; raise max_slot_wal_keep_size, then run "walrelay teardown", "walrelay setup" and "walrelay backfill --restart -c FILE TABLE…" for the published tables (--restart: the new slot has the old name)',
    });
  }
  return { confirmedFlushLsn: row.confirmed };
}
