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
// The key is 32 random bytes in walrelay.control_key, a table that walrelay's
// role creates on first use (run, backfill, slot recovery: all connect with
// source.url) and that no other role may read. It lives in the database, so it
// survives restarts and is shared by `walrelay run` and a separate
// `walrelay backfill` process.
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
 * The database's control key, created on first use. The schema and table
 * must belong to the connecting role (or a role it is a member of): a table
 * someone else created beforehand would hold a key they know.
 */
export async function loadControlKey(client: pg.Client): Promise<Buffer> {
  const table = `${CONTROL_KEY_SCHEMA}.${CONTROL_KEY_TABLE}`;
  const exists = (await client.query(`SELECT to_regclass($1) IS NOT NULL AS found`, [table])).rows[0].found;
  for (let attempt = 1; !exists; attempt++) {
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${CONTROL_KEY_SCHEMA}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (one boolean PRIMARY KEY DEFAULT true CHECK (one), key bytea NOT NULL, created timestamptz NOT NULL DEFAULT now())`);
      break;
    } catch (error) {
      // Two walrelay processes creating it at once: one wins (duplicate key in the catalog); the other reads.
      const code = (error as { code?: string }).code ?? '';
      if (attempt < 3 && ['23505', '42P06', '42P07'].includes(code)) continue;
      if (code === '42501') {
        throw new WalrelayError('CONTROL_KEY_MISSING', `walrelay's role may not create ${table}, which holds the key that signs its control messages (${(error as Error).message})`, {
          hint: `GRANT CREATE ON DATABASE to the role of source.url, or have an administrator run: CREATE SCHEMA ${CONTROL_KEY_SCHEMA} AUTHORIZATION <that role>; docs/security.md`,
        });
      }
      throw error;
    }
  }
  const owners = (await client.query(`
    SELECT pg_has_role(current_user, n.nspowner, 'MEMBER') AS schema_ours, pg_has_role(current_user, c.relowner, 'MEMBER') AS table_ours,
           pg_get_userbyid(n.nspowner) AS schema_owner, pg_get_userbyid(c.relowner) AS table_owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, [CONTROL_KEY_SCHEMA, CONTROL_KEY_TABLE])).rows[0];
  if (!owners?.schema_ours || !owners?.table_ours) {
    throw new WalrelayError('CONTROL_KEY_UNTRUSTED', `${table} (schema owned by ${owners?.schema_owner}, table by ${owners?.table_owner}) does not belong to walrelay's role: whoever owns it could sign walrelay's control messages`, {
      hint: `drop schema ${CONTROL_KEY_SCHEMA} (it holds only walrelay's key) so that walrelay creates it, or have its owner ALTER SCHEMA/TABLE … OWNER TO the role of source.url; docs/security.md`,
    });
  }
  await client.query(`REVOKE ALL ON SCHEMA ${CONTROL_KEY_SCHEMA} FROM PUBLIC`);
  await client.query(`REVOKE ALL ON ${table} FROM PUBLIC`);
  await client.query(`INSERT INTO ${table} (key) VALUES (decode($1, 'hex')) ON CONFLICT (one) DO NOTHING`, [randomBytes(32).toString('hex')]);
  // As hex: backfill's client reads every value as text.
  const { rows } = await client.query(`SELECT encode(key, 'hex') AS key FROM ${table}`);
  return Buffer.from(rows[0].key as string, 'hex');
}

/** A table walrelay keeps for itself: its changes (the key's one insert, under FOR ALL TABLES) never reach a sink. */
export function isControlKeyTable(schema: string, table: string): boolean {
  return schema === CONTROL_KEY_SCHEMA && table === CONTROL_KEY_TABLE;
}
