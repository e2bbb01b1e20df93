// `walrelay setup --print-sql`: the SQL a DBA runs once so that walrelay's own
// role needs no more than it uses. Built from the configuration alone (no
// connection), so it can be handed to a DBA before walrelay can log in.
//
// What the role needs, and why:
// - REPLICATION: to create and stream from its logical replication slot.
// - CONNECT on the database (granted to PUBLIC by default, revoked on hardened servers).
// - The publication: creating one needs CREATE on the database and ownership of
//   every listed table (FOR ALL TABLES: a superuser), so the DBA creates it;
//   `walrelay setup` then finds it and only creates the slot.
// - Backfill and `snapshot: initial` read rows with SELECT … FOR SHARE (see
//   backfill.ts for why the row lock matters), and PostgreSQL allows FOR SHARE
//   only with UPDATE privilege; walrelay never writes a row.
import { parseSourceUrl } from '../source/hosts.js';
import type { Config } from '../../config/schema.js';
import { configError } from '../errors.js';
import { sqlName, sqlQualified } from './sql.js';
import { controlKeyTableSql } from '../route/control-message.js';

export interface SourceIdentity {
  role: string;
  database: string;
}

/** The role and database of source.url (the role is required: the SQL grants to it). */
export function sourceIdentity(url: string): SourceIdentity {
  const parsed = parseSourceUrl(url);
  const role = parsed.user;
  if (!role) throw configError('source.url: name the user walrelay connects as (postgres://USER:PASSWORD@host/db)', 'the SQL grants privileges to that role');
  return { role, database: parsed.database };
}

/** CREATE PUBLICATION for the configured tables (or ALL TABLES). */
export function createPublicationSql(config: Config): string {
  const { publication, tables, publishViaPartitionRoot } = config.source;
  const target = tables ? `FOR TABLE ${tables.map(sqlQualified).join(', ')}` : 'FOR ALL TABLES';
  const options = publishViaPartitionRoot ? ' WITH (publish_via_partition_root = true)' : '';
  return `CREATE PUBLICATION ${sqlName(publication)} ${target}${options};`;
}

/** GRANT that lets the role backfill the tables (SELECT … FOR SHARE needs SELECT and UPDATE). */
export function backfillGrantSql(tables: readonly string[], role: string): string {
  return `GRANT SELECT, UPDATE ON ${tables.map(sqlQualified).join(', ')} TO ${sqlName(role)};`;
}

export function privilegeSql(config: Config): string {
  const { role, database } = sourceIdentity(config.source.url);
  const { tables } = config.source;
  const schemas = [...new Set((tables ?? []).map((table) => table.slice(0, table.indexOf('.'))))];
  const lines = [
    `-- Run as a superuser, connected to database ${database} (for example: psql -U postgres -d ${database}).`,
    `-- Role ${role} must exist with LOGIN (CREATE ROLE ${sqlName(role)} LOGIN PASSWORD '...').`,
    `-- Then run, as ${role}: walrelay setup -c FILE (it creates the replication slot ${config.source.slot}).`,
    `ALTER ROLE ${sqlName(role)} REPLICATION;`,
    `GRANT CONNECT ON DATABASE ${sqlName(database)} TO ${sqlName(role)};`,
    createPublicationSql(config),
    '-- The keys that sign walrelay\'s control messages (docs/security.md); each role reads only its own row:',
    ...controlKeyTableSql(),
    '-- Only for backfill and snapshot: initial, which read rows with SELECT ... FOR SHARE',
    '-- (PostgreSQL requires UPDATE privilege for that row lock; walrelay never writes rows):',
  ];
  if (tables) {
    for (const schema of schemas) lines.push(`GRANT USAGE ON SCHEMA ${sqlName(schema)} TO ${sqlName(role)};`);
    lines.push(backfillGrantSql(tables, role));
  } else {
    lines.push(`-- GRANT SELECT, UPDATE ON <schema.table, ...> TO ${sqlName(role)};   (the tables you will backfill)`);
  }
  if (config.sinks.some((sink) => sink.type === 'websocket' && sink.authorization === 'rls')) lines.push(...rlsGrantSql(role));
  return lines.join('\n');
}

/**
 * authorization: rls checks each row as the subscriber's role (SET ROLE to the token's role claim), which PostgreSQL
 * allows only to members of that role. Supabase's roles are anon and authenticated; other apps name theirs.
 */
export function rlsGrantSql(role: string): string[] {
  return [
    '-- Only for websocket sinks with authorization: rls, which check each row as the token\'s role claim',
    '-- (walrelay must be a member of every role a token may name; list yours instead of anon, authenticated):',
    `GRANT anon, authenticated TO ${sqlName(role)};`,
  ];
}
