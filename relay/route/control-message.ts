// Walrelay's own control messages (backfill chunks, gap events) travel
// through the WAL as transactional logical messages. pg_logical_emit_message
// is executable by PUBLIC, so any role that can connect could write one with
// the same prefix; walrelay therefore signs its own and the assembler drops
// every control message whose signature does not verify (docs/security.md,
// "Control messages"). Applications keep pg_logical_emit_message.
//
// The content is "<HMAC-SHA256 hex>:<body>". The MAC covers the prefix, the
// transaction id the message was written in, and the body: a message cannot
// be moved to another prefix, and a signed message seen once cannot be
// replayed in another transaction.
//
// The key is 32 random bytes per role in walrelay.control_key (run, backfill
// and slot recovery all connect with source.url, so with one role), which no
// other role may read. It lives in the database, so it survives restarts and
// is shared by `walrelay run` and a separate `walrelay backfill` process.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { WalrelayError } from '../errors.js';

export const CONTROL_KEY_SCHEMA = 'walrelay';
export const CONTROL_KEY_TABLE = 'control_key';

const MAC_HEX = 64;

export function signControlMessage(key: Buffer, prefix: string, xid: number, body: string): string {
  return `${mac(key, prefix, xid, body)}:${body}`;
}

/** The body of a control message whose signature verifies, or null (forged, or not signed by this database's key). */
export function openControlMessage(key: Buffer, prefix: string, xid: number, content: Buffer): Buffer | null {
  if (content.length <= MAC_HEX || content[MAC_HEX] !== 0x3a /* ':' */) return null;
  const given = Buffer.from(content.subarray(0, MAC_HEX).toString('latin1'), 'hex');
  const body = content.subarray(MAC_HEX + 1);
  const expected = Buffer.from(mac(key, prefix, xid, body), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  return body;
}

function mac(key: Buffer, prefix: string, xid: number, body: string | Buffer): string {
  return createHmac('sha256', key).update(`${prefix}\n${xid >>> 0}\n`).update(body).digest('hex');
}

/** The 32-bit id of the client's current transaction, as pgoutput's Begin reports it (call inside BEGIN … COMMIT). */
export async function currentXid(client: pg.Client): Promise<number> {
  const { rows } = await client.query(`SELECT (txid_current() % 4294967296)::bigint::text AS xid`);
  return Number(rows[0].xid);
}

/** Writes a signed transactional control message inside the client's open transaction. */
export async function emitControlMessage(client: pg.Client, key: Buffer, prefix: string, body: string): Promise<void> {
  const xid = await currentXid(client);
  await client.query('SELECT pg_logical_emit_message(true, $1, $2)', [prefix, signControlMessage(key, prefix, xid, body)]);
}

/**
 * This role's control key, created on first use. walrelay.control_key holds
 * one row per role (the role of source.url signs and verifies); row-level
 * security lets each role insert and read only its own row, so the first
 * walrelay to run (or `walrelay setup`) may create the table for every role.
 * Schema and table must belong to this role or to a superuser: a table
 * someone else created beforehand would give its owner every key.
 */
export async function loadControlKey(client: pg.Client): Promise<Buffer> {
  const table = `${CONTROL_KEY_SCHEMA}.${CONTROL_KEY_TABLE}`;
  const exists = (await client.query(`SELECT to_regclass($1) IS NOT NULL AS found`, [table])).rows[0].found;
  if (!exists) await createKeyTable(client, table);
  const owners = (await client.query(`
    SELECT pg_has_role(current_user, n.nspowner, 'MEMBER') OR so.rolsuper AS schema_trusted, pg_has_role(current_user, c.relowner, 'MEMBER') OR tow.rolsuper AS table_trusted,
           so.rolname AS schema_owner, tow.rolname AS table_owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles so ON so.oid = n.nspowner JOIN pg_roles tow ON tow.oid = c.relowner
    WHERE n.nspname = $1 AND c.relname = $2`, [CONTROL_KEY_SCHEMA, CONTROL_KEY_TABLE])).rows[0];
  if (!owners?.schema_trusted || !owners?.table_trusted) {
    throw new WalrelayError('CONTROL_KEY_UNTRUSTED', `${table} (schema owned by ${owners?.schema_owner ?? '?'}, table by ${owners?.table_owner ?? '?'}) belongs neither to walrelay's role nor to a superuser: its owner could read the key that signs walrelay's control messages`, {
      hint: `drop schema ${CONTROL_KEY_SCHEMA} (it holds only walrelay's keys) so that walrelay creates it, or have a superuser take it over (ALTER SCHEMA/TABLE … OWNER TO); docs/security.md`,
    });
  }
  await client.query(`INSERT INTO ${table} (role, key) VALUES (current_user, decode($1, 'hex')) ON CONFLICT (role) DO NOTHING`, [randomBytes(32).toString('hex')]);
  // As hex: backfill's client reads every value as text.
  const { rows } = await client.query(`SELECT encode(key, 'hex') AS key FROM ${table} WHERE role = current_user`);
  return Buffer.from(rows[0].key as string, 'hex');
}

/** The statements that create the key table (also printed by `walrelay setup --print-sql` for a DBA to run). */
export function controlKeyTableSql(): string[] {
  const table = `${CONTROL_KEY_SCHEMA}.${CONTROL_KEY_TABLE}`;
  return [
    `CREATE SCHEMA IF NOT EXISTS ${CONTROL_KEY_SCHEMA};`,
    `CREATE TABLE IF NOT EXISTS ${table} (role name PRIMARY KEY, key bytea NOT NULL, created timestamptz NOT NULL DEFAULT now());`,
    `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;`,
    // Created once (not DROP POLICY IF EXISTS + CREATE: that prints a NOTICE in psql the first time).
    `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = '${CONTROL_KEY_SCHEMA}' AND tablename = '${CONTROL_KEY_TABLE}' AND policyname = 'own_key') THEN CREATE POLICY own_key ON ${table} USING (role = current_user) WITH CHECK (role = current_user); END IF; END $$;`,
    `REVOKE ALL ON ${table} FROM PUBLIC;`,
    `GRANT USAGE ON SCHEMA ${CONTROL_KEY_SCHEMA} TO PUBLIC;`,
    `GRANT SELECT, INSERT ON ${table} TO PUBLIC;`,
  ];
}

async function createKeyTable(client: pg.Client, table: string): Promise<void> {
  try {
    await client.query('BEGIN');
    for (const statement of controlKeyTableSql()) await client.query(statement);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    const code = (error as { code?: string }).code ?? '';
    // Two walrelay processes creating it at once: the other one won.
    if (['23505', '42P06', '42P07'].includes(code)) return;
    if (code === '42501') {
      throw new WalrelayError('CONTROL_KEY_MISSING', `walrelay's role may not create ${table}, which holds the key that signs its control messages (${(error as Error).message})`, {
        hint: 'run "walrelay setup" once as a role that may create a schema (e.g. the database owner), or GRANT CREATE ON DATABASE to the role of source.url; docs/security.md',
      });
    }
    throw error;
  }
}

/** A table walrelay keeps for itself: its changes (the key's one insert, under FOR ALL TABLES) never reach a sink. */
export function isControlKeyTable(schema: string, table: string): boolean {
  return schema === CONTROL_KEY_SCHEMA && table === CONTROL_KEY_TABLE;
}
