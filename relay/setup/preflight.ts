// What walrelay checks before it changes anything: the server (version,
// wal_level, slots, REPLICATION), the configured tables, and what the
// connected role may do with them and with the publication. Each finding
// that stops setup names the SQL that fixes it.
import type pg from 'pg';
import { WalrelayError } from '../errors.js';
import { quoteIdent, sqlName } from './sql.js';
import { backfillGrantSql } from './print-sql.js';

/**
 * PostgreSQL 14: START_REPLICATION with `messages 'true'` (pgoutput logical
 * messages, which backfill relies on) appeared in 14; wal_status in 13.
 */
export const MIN_SERVER_VERSION = 140000;

export function checkServerVersion(versionNum: number, versionText: string): void {
  if (versionNum < MIN_SERVER_VERSION) {
    throw new WalrelayError('PG_VERSION_UNSUPPORTED', `PostgreSQL ${versionText} is too old: walrelay needs PostgreSQL 14 or newer`, {
      hint: 'upgrade PostgreSQL to 14 or newer (pgoutput logical messages, which walrelay streams, appeared in 14)',
    });
  }
}

export async function serverVersion(client: pg.Client): Promise<number> {
  const row = (await client.query(`SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS text`)).rows[0];
  checkServerVersion(row.num, row.text);
  return row.num;
}

/** Checks that logical replication can work at all; throws the first problem with its fix. */
export async function checkServer(client: pg.Client): Promise<void> {
  await serverVersion(client);
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
    throw new WalrelayError('NO_REPLICATION_PRIVILEGE', `role ${role.name} lacks the REPLICATION privilege`, {
      hint: `have a superuser run ALTER ROLE ${quoteIdent(role.name)} REPLICATION (all of it: walrelay setup --print-sql -c FILE)`,
    });
  }
}

/** A boolean column, also from clients that read every value as text (backfill's). */
function yes(value: unknown): boolean {
  return value === true || value === 't';
}

export interface TableAccess {
  name: string;
  oid: number;
  /** The connected role owns it (or is a member of its owner): it may publish it. */
  owned: boolean;
  canSelect: boolean;
  /** UPDATE on at least one column: what SELECT … FOR SHARE requires. */
  canLock: boolean;
  /** Its changes reach the publication (listed, a listed ancestor, its schema, or ALL TABLES). */
  published: boolean;
}

/** The tables, as the connected role sees them; throws TABLE_MISSING naming every table that does not exist. */
export async function inspectTables(client: pg.Client, publication: string, tables: readonly string[]): Promise<TableAccess[]> {
  const version = Number((await client.query(`SELECT current_setting('server_version_num')::int AS num`)).rows[0].num);
  // TABLES IN SCHEMA publications exist from PostgreSQL 15.
  const inSchema = version >= 150000
    ? `OR EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid AND pn.pnnspid = c.relnamespace)`
    : '';
  const found: TableAccess[] = [];
  const missing: string[] = [];
  for (const name of tables) {
    const dot = name.indexOf('.');
    const row = (await client.query(`
      SELECT c.oid::int AS oid, pg_has_role(c.relowner, 'USAGE') AS owned,
             has_table_privilege(c.oid, 'SELECT') AS can_select,
             has_any_column_privilege(c.oid, 'UPDATE') AS can_lock,
             EXISTS (SELECT 1 FROM pg_publication p WHERE p.pubname = $3 AND (p.puballtables
               OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = p.oid
                          AND (pr.prrelid = c.oid OR pr.prrelid IN (SELECT relid FROM pg_partition_ancestors(c.oid))))
               ${inSchema})) AS published
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, [name.slice(0, dot), name.slice(dot + 1), publication])).rows[0];
    if (!row) missing.push(name);
    else found.push({ name, oid: Number(row.oid), owned: yes(row.owned), canSelect: yes(row.can_select), canLock: yes(row.can_lock), published: yes(row.published) });
  }
  if (missing.length > 0) {
    throw new WalrelayError('TABLE_MISSING', `table${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist`, {
      hint: 'correct the name (schema.table, lower case unless the table was created with a quoted name) or create the table first',
    });
  }
  return found;
}

export interface PublicationInfo {
  exists: boolean;
  /** The connected role owns it: it may ALTER it. */
  owned: boolean;
  allTables: boolean;
  viaRoot: boolean;
  /** walrelay created it (its comment says so), so teardown may drop it. */
  createdByWalrelay: boolean;
}

export const CREATED_BY = 'created by walrelay';

export async function inspectPublication(client: pg.Client, publication: string): Promise<PublicationInfo> {
  const row = (await client.query(`
    SELECT pg_has_role(pubowner, 'USAGE') AS owned, puballtables, pubviaroot, obj_description(oid, 'pg_publication') AS comment
    FROM pg_publication WHERE pubname = $1`, [publication])).rows[0];
  if (!row) return { exists: false, owned: false, allTables: false, viaRoot: false, createdByWalrelay: false };
  return { exists: true, owned: row.owned, allTables: row.puballtables, viaRoot: row.pubviaroot, createdByWalrelay: row.comment === CREATED_BY };
}

/** May the connected role create the publication itself? Returns the reasons it may not. */
export async function publicationBlockers(client: pg.Client, tables: readonly TableAccess[] | undefined): Promise<string[]> {
  const role = (await client.query(`
    SELECT current_user AS name, rolsuper, has_database_privilege(current_database(), 'CREATE') AS can_create, current_database() AS db
    FROM pg_roles WHERE rolname = current_user`)).rows[0];
  if (role.rolsuper) return [];
  const reasons: string[] = [];
  if (!tables) reasons.push(`FOR ALL TABLES needs a superuser and ${role.name} is not one`);
  if (!role.can_create) reasons.push(`${role.name} lacks CREATE on database ${role.db}`);
  const notOwned = (tables ?? []).filter((table) => !table.owned).map((table) => table.name);
  if (notOwned.length > 0) reasons.push(`${role.name} does not own ${notOwned.join(', ')} (only a table's owner may publish it)`);
  return reasons;
}

/** The names events carry for a publication's tables ("schema.table"): leaf partitions, or the root with publish_via_partition_root. */
export async function publishedTableNames(client: pg.Client, publication: string): Promise<string[]> {
  const rows = (await client.query(`SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [publication])).rows;
  return rows.map((row) => row.name as string);
}

/** Published tables whose UPDATE and DELETE PostgreSQL would reject for lack of a replica identity. */
export async function identityWarnings(client: pg.Client, publication: string): Promise<string[]> {
  const rows = (await client.query(`
    SELECT pt.schemaname || '.' || pt.tablename AS name
    FROM pg_publication_tables pt
    JOIN pg_class c ON c.relname = pt.tablename
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = pt.schemaname
    WHERE pt.pubname = $1 AND c.relreplident = 'd'
      AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)`, [publication])).rows;
  return rows.map((row) => `${row.name} has no primary key: UPDATE and DELETE on it fail while it is published; run ALTER TABLE ${row.name} REPLICA IDENTITY FULL (or add a primary key)`);
}

/**
 * Backfill reads with SELECT … FOR SHARE: it needs SELECT and UPDATE (on at
 * least one column). Checked before the first row is read, so that a missing
 * grant is one clear error rather than "permission denied" halfway.
 */
export async function checkBackfillPrivileges(client: pg.Client, tables: readonly string[]): Promise<void> {
  const lacking: string[] = [];
  for (const name of tables) {
    const dot = name.indexOf('.');
    const row = (await client.query(`
      SELECT has_table_privilege(c.oid, 'SELECT') AS can_select, has_any_column_privilege(c.oid, 'UPDATE') AS can_lock,
             has_schema_privilege(c.relnamespace, 'USAGE') AS can_use_schema
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, [name.slice(0, dot), name.slice(dot + 1)])).rows[0];
    if (row && !(yes(row.can_select) && yes(row.can_lock) && yes(row.can_use_schema))) lacking.push(name);
  }
  if (lacking.length === 0) return;
  const role = (await client.query('SELECT current_user AS name')).rows[0].name as string;
  throw new WalrelayError('BACKFILL_PRIVILEGE', `role ${role} may not backfill ${lacking.join(', ')}: backfill reads rows with SELECT ... FOR SHARE, which needs SELECT and UPDATE privilege (walrelay never writes rows)`, {
    hint: `have the owner or a superuser run: ${backfillGrant(lacking, role)}`,
  });
}

function backfillGrant(tables: readonly string[], role: string): string {
  const schemas = [...new Set(tables.map((table) => table.slice(0, table.indexOf('.'))))];
  const usage = schemas.filter((schema) => schema !== 'public').map((schema) => `GRANT USAGE ON SCHEMA ${sqlName(schema)} TO ${sqlName(role)}; `).join('');
  return `${usage}${backfillGrantSql(tables, role)}`;
}
