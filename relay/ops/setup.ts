// Preflight, setup, status and teardown of the publication and slot. Every
// finding that stops the relay says what to run to fix it.
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { WalrelayError } from '../errors.js';
import { backfillTables, publishedTables } from './backfill.js';
import { quoteIdent, quoteQualified, redact } from './sql.js';

/** Marks publications walrelay created, so teardown drops only those. */
const CREATED_BY = 'created by walrelay';

export async function withSourceClient<T>(config: Config, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: config.source.url, application_name: 'walrelay-admin', connectionTimeoutMillis: config.source.timeoutSeconds * 1000 });
  try {
    await client.connect();
  } catch (error) {
    throw new WalrelayError('SOURCE_UNREACHABLE', `cannot connect to PostgreSQL at ${redact(config.source.url)}: ${(error as Error).message}`, {
      hint: 'check source.url (or DATABASE_URL), that PostgreSQL is running, and pg_hba.conf', cause: error, retriable: true,
    });
  }
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Checks that logical replication can work at all; throws the first problem with its fix. */
export async function checkServer(client: pg.Client): Promise<void> {
  const walLevel = (await client.query('SHOW wal_level')).rows[0].wal_level as string;
  if (walLevel !== 'logical') {
    throw new WalrelayError('WAL_LEVEL', `wal_level is '${walLevel}'`, { hint: 'run ALTER SYSTEM SET wal_level = logical and restart PostgreSQL' });
  }
  const maxSlots = Number((await client.query('SHOW max_replication_slots')).rows[0].max_replication_slots);
  if (maxSlots < 1) {
    throw new WalrelayError('NO_REPLICATION_SLOTS', 'max_replication_slots is 0', { hint: 'run ALTER SYSTEM SET max_replication_slots = 10 and restart PostgreSQL' });
  }
  const role = (await client.query('SELECT current_user AS name, rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user')).rows[0];
  if (!role.rolreplication && !role.rolsuper) {
    throw new WalrelayError('NO_REPLICATION_PRIVILEGE', `role ${role.name} lacks the REPLICATION privilege`, { hint: `run ALTER ROLE ${quoteIdent(role.name)} REPLICATION as a superuser` });
  }
}

export async function setupReplication(config: Config, logger: Logger, say: (line: string) => void = (line) => logger.info(line)): Promise<void> {
  const { slot, publication, tables, publishViaPartitionRoot } = config.source;
  let slotCreated = false;
  await withSourceClient(config, async (client) => {
    await checkServer(client);
    const existing = (await client.query('SELECT pubviaroot FROM pg_publication WHERE pubname = $1', [publication])).rows[0];
    if (!existing) {
      const target = tables ? `FOR TABLE ${tables.map(quoteQualified).join(', ')}` : 'FOR ALL TABLES';
      const options = publishViaPartitionRoot ? ' WITH (publish_via_partition_root = true)' : '';
      try {
        await client.query(`CREATE PUBLICATION ${quoteIdent(publication)} ${target}${options}`);
      } catch (error) {
        throw publicationError(error as Error, publication, tables === undefined);
      }
      await client.query(`COMMENT ON PUBLICATION ${quoteIdent(publication)} IS '${CREATED_BY}'`);
      say(`created publication ${publication} ${target}${options}`);
    } else {
      say(`publication ${publication} exists`);
      if (existing.pubviaroot !== publishViaPartitionRoot) {
        await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} SET (publish_via_partition_root = ${publishViaPartitionRoot})`);
        say(`set publish_via_partition_root = ${publishViaPartitionRoot} on publication ${publication}`);
      }
      if (tables) await addMissingTables(client, publication, tables, say);
    }
    for (const warning of await identityWarnings(client, publication)) say(`warning: ${warning}`);

    const slotRow = (await client.query('SELECT plugin, slot_type, database FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0];
    if (!slotRow) {
      const created = (await client.query("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot])).rows[0];
      say(`created replication slot ${slot} (pgoutput) at ${created.lsn}`);
      slotCreated = true;
    } else if (slotRow.plugin !== 'pgoutput' || slotRow.slot_type !== 'logical') {
      throw new WalrelayError('SLOT_WRONG_PLUGIN', `slot ${slot} exists but is a ${slotRow.slot_type} slot with plugin ${slotRow.plugin}`, {
        hint: 'choose another source.slot, or drop that slot with pg_drop_replication_slot if nothing needs it',
      });
    } else {
      say(`replication slot ${slot} exists`);
    }
  });
  if (slotCreated && config.source.snapshot === 'initial') {
    // The chunks go into the WAL after the slot's start, so `run` delivers them first, as "read" events.
    const published = await publishedTables(config);
    say(`snapshot: initial: emitting the current rows of ${published.length} table(s)`);
    await backfillTables(config, published, { chunkRows: 1000, say });
  }
}

async function addMissingTables(client: pg.Client, publication: string, tables: readonly string[], say: (line: string) => void): Promise<void> {
  const published = new Set((await client.query('SELECT schemaname || \'.\' || tablename AS name FROM pg_publication_tables WHERE pubname = $1', [publication])).rows.map((row) => row.name as string));
  const all = (await client.query('SELECT puballtables FROM pg_publication WHERE pubname = $1', [publication])).rows[0].puballtables;
  const missing = all ? [] : tables.filter((table) => !published.has(table));
  if (missing.length === 0) return;
  await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${missing.map(quoteQualified).join(', ')}`);
  say(`added ${missing.join(', ')} to publication ${publication}`);
}

/** Published tables whose UPDATE and DELETE PostgreSQL would reject for lack of a replica identity. */
async function identityWarnings(client: pg.Client, publication: string): Promise<string[]> {
  const rows = (await client.query(`
    SELECT pt.schemaname || '.' || pt.tablename AS name
    FROM pg_publication_tables pt
    JOIN pg_class c ON c.relname = pt.tablename
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = pt.schemaname
    WHERE pt.pubname = $1 AND c.relreplident = 'd'
      AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)`, [publication])).rows;
  return rows.map((row) => `${row.name} has no primary key: UPDATE and DELETE on it fail while it is published; run ALTER TABLE ${row.name} REPLICA IDENTITY FULL (or add a primary key)`);
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
}

export async function readStatus(config: Config): Promise<SlotStatus> {
  const { slot, publication } = config.source;
  return withSourceClient(config, async (client) => {
    const current = (await client.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn as string;
    const row = (await client.query(`
      SELECT active, active_pid, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart, wal_status,
             (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint AS lag
      FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows[0];
    const publicationExists = (await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication])).rowCount === 1;
    const tables = (await client.query('SELECT schemaname || \'.\' || tablename AS name FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1', [publication])).rows.map((r) => r.name as string);
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
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      say(`dropped replication slot ${slot}`);
    } else {
      say(`replication slot ${slot} does not exist`);
    }
    const comment = (await client.query(`SELECT obj_description(oid, 'pg_publication') AS comment FROM pg_publication WHERE pubname = $1`, [publication])).rows[0];
    if (comment?.comment === CREATED_BY) {
      await client.query(`DROP PUBLICATION ${quoteIdent(publication)}`);
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
      hint: 'changes were lost upstream; raise max_slot_wal_keep_size, then "walrelay teardown", "walrelay setup" and backfill the tables',
    });
  }
  return { confirmedFlushLsn: row.confirmed };
}

function publicationError(error: Error, publication: string, allTables: boolean): WalrelayError {
  if (allTables && /must be superuser/.test(error.message)) {
    return new WalrelayError('PUBLICATION_DENIED', error.message, { hint: `list source.tables, or create publication ${publication} FOR ALL TABLES as a superuser` });
  }
  if (/does not exist/.test(error.message)) {
    return new WalrelayError('TABLE_MISSING', error.message, { hint: 'create the table first or correct source.tables' });
  }
  return new WalrelayError('PUBLICATION_FAILED', error.message, { cause: error });
}
