// Row-level security for Realtime subscribers (authorization: rls): whether
// PostgreSQL lets a token's role, with the token as request.jwt.claims, SELECT
// a changed row, as Supabase's apply_rls (supabase/walrus) decides it: the row
// is looked up by its key in the table's current state, and the role's
// readable columns limit what is sent.
//
// Unlike walrus, which checks every change once per subscriber, the checks of
// every subscriber holding the same (role, claims) are merged: the changes of
// one table waiting at the same moment are checked in one query per distinct
// claims set, in one round trip, and while every connection is busy the
// waiting changes gather into the next query. Nothing here blocks the replication stream: write() hands the
// change over and returns; a subscriber whose checks lag behind is dropped by
// the session (bounded by maxClientQueue). Row decisions are never cached, so a
// policy changed at run time applies to the next change checked.
import pg from 'pg';
import type { Logger } from 'pino';
import type { ChangeEvent, Row } from '../../../../relay/route/event.js';
import { quoteIdent, sqlName } from '../../../../relay/setup/sql.js';

export interface RlsVerdict {
  visible: boolean;
  /** The columns the role may read (has_column_privilege), or null when the check failed. */
  columns: ReadonlySet<string> | null;
}

const DENIED: RlsVerdict = { visible: false, columns: null };

/** Column privileges change rarely and cost a catalog query: remembered this long per (role, table). */
const COLUMN_CACHE_MS = 5_000;

interface Pending {
  key: Row;
  waiters: ((verdict: RlsVerdict) => void)[];
}

/** The changes of one table waiting for a check under one (role, claims). */
interface Group {
  role: string;
  claimsJson: string;
  subject: string;
  schema: string;
  table: string;
  keyColumns: string[];
  rows: Map<string, Pending>;
}

export interface RlsOptions {
  poolSize: number;
  maxKeysPerQuery: number;
}

export class RlsChecker {
  private readonly pool: pg.Pool;
  /** Checks not started yet, by (role, claims, table): changes arriving meanwhile join their group's next query. */
  private groups = new Map<string, Group>();
  private running = 0;
  private scheduled = false;
  /** Subscribers with the same claims share one check per change: the promise is found here by (change, role, claims). */
  private readonly byChange = new WeakMap<ChangeEvent, Map<string, Promise<RlsVerdict>>>();
  private readonly columnCache = new Map<string, { columns: Set<string>; at: number }>();
  /** Check failures already logged, by message: one warning each, not one per change. */
  private readonly warned = new Set<string>();
  /** Checks queued or running (for status and tests). */
  pending = 0;

  constructor(url: string, private readonly options: RlsOptions, private readonly logger: Logger) {
    this.pool = new pg.Pool({ connectionString: url, max: options.poolSize, application_name: 'walrelay-rls' });
    // An idle pooled connection that the server ends must not take the relay down.
    this.pool.on('error', (error) => this.logger.warn({ err: error.message }, 'row-level security connection failed'));
  }

  /**
   * Why a token's role cannot be used for checks (null: it can): the role must exist and walrelay's own
   * role must be a member of it (PostgreSQL refuses SET ROLE otherwise).
   */
  async refusal(role: string | null): Promise<string | null> {
    if (role === null) return 'Unauthorized: authorization is rls and the token has no role claim (the PostgreSQL role whose row-level security policies apply)';
    const { rows } = await this.pool.query<{ member: boolean | null; self: string }>(
      "SELECT (SELECT pg_has_role(current_user, r.oid, 'MEMBER') FROM pg_roles r WHERE r.rolname = $1) AS member, current_user AS self", [role]);
    const { member, self } = rows[0]!;
    if (member === null) return `Unauthorized: the token's role ${JSON.stringify(role)} does not exist in the database`;
    if (!member) {
      this.warnOnce(`role ${role}`, { role, relayRole: self }, `a subscriber's token names role ${role}, which walrelay's role ${self} is not a member of: GRANT ${sqlName(role)} TO ${sqlName(self)} (docs/supabase.md, "Row-level security")`);
      return `Unauthorized: walrelay cannot check row-level security as role ${JSON.stringify(role)} (its database role is not a member of it; an administrator must grant it)`;
    }
    return null;
  }

  /** Whether the role of `claims` may SELECT the row of `event` now; resolves beside the stream, never rejects. */
  check(role: string, claimsJson: string, subject: string | null, event: ChangeEvent): Promise<RlsVerdict> {
    let shared = this.byChange.get(event);
    if (!shared) {
      shared = new Map();
      this.byChange.set(event, shared);
    }
    const claimsKey = `${role}\u0000${claimsJson}`;
    let verdict = shared.get(claimsKey);
    if (!verdict) {
      verdict = this.queue(role, claimsJson, subject, event);
      shared.set(claimsKey, verdict);
    }
    return verdict;
  }

  private queue(role: string, claimsJson: string, subject: string | null, event: ChangeEvent): Promise<RlsVerdict> {
    const key = event.key;
    if (!key || Object.keys(key).length === 0 || event.schema === undefined || event.table === undefined) {
      // Like walrus, a table without a primary key (or replica identity) cannot be checked: nothing is sent.
      this.warnOnce(`nokey ${event.schema}.${event.table}`, { table: `${event.schema}.${event.table}` }, 'a table without a primary key cannot be checked by row-level security: its changes are not sent to rls subscribers');
      return Promise.resolve(DENIED);
    }
    const keyColumns = Object.keys(key);
    // The row as it is now is found by its current key: the new row's values when it has them (an UPDATE may change the key).
    const current: Row = {};
    for (const column of keyColumns) current[column] = event.new && column in event.new ? event.new[column] : key[column];
    const groupKey = `${role}\u0000${claimsJson}\u0000${event.schema}.${event.table}\u0000${keyColumns.join(',')}`;
    let group = this.groups.get(groupKey);
    if (!group) {
      group = { role, claimsJson, subject: subject ?? '', schema: event.schema, table: event.table, keyColumns, rows: new Map() };
      this.groups.set(groupKey, group);
    }
    const rowKey = JSON.stringify(current);
    let pending = group.rows.get(rowKey);
    if (!pending) {
      pending = { key: current, waiters: [] };
      group.rows.set(rowKey, pending);
    }
    this.pending++;
    const promise = new Promise<RlsVerdict>((resolve) => pending.waiters.push(resolve));
    // Everything the current write() fans out is gathered before a query goes.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }
    return promise;
  }

  /**
   * At most poolSize queries run; the oldest waiting group goes next, with every change that joined it while
   * the connections were busy. Under load the batches grow instead of the queries queueing up one by one.
   */
  private pump(): void {
    while (this.running < this.options.poolSize && this.groups.size > 0) {
      const [groupKey, group] = this.groups.entries().next().value!;
      let rows = [...group.rows.values()];
      if (rows.length > this.options.maxKeysPerQuery) {
        // The rest stays queued, in its place, for the next free connection.
        for (const pending of rows.slice(0, this.options.maxKeysPerQuery)) group.rows.delete(JSON.stringify(pending.key));
        rows = rows.slice(0, this.options.maxKeysPerQuery);
      } else this.groups.delete(groupKey);
      this.running++;
      void this.run(group, rows).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  /** One read-only transaction as the subscriber's role: its column privileges (cached briefly) and which rows it sees now. */
  private async run(group: Group, rows: Pending[]): Promise<void> {
    const settle = (verdict: (index: number) => RlsVerdict) => rows.forEach((pending, index) => {
      this.pending -= pending.waiters.length;
      for (const resolve of pending.waiters) resolve(verdict(index));
    });
    const table = `${quoteIdent(group.schema)}.${quoteIdent(group.table)}`;
    let client: pg.PoolClient | null = null;
    try {
      client = await this.pool.connect();
      const literal = (value: string) => client!.escapeLiteral(value);
      const cacheKey = `${group.role}\u0000${group.schema}.${group.table}`;
      const cached = this.columnCache.get(cacheKey);
      const fresh = cached !== undefined && Date.now() - cached.at < COLUMN_CACHE_MS;
      // Each key is cast to the column types by the table's own row type; RLS applies to the EXISTS, as to any SELECT of the role.
      const match = group.keyColumns.map((column) => `t.${quoteIdent(column)} = k.${quoteIdent(column)}`).join(' AND ');
      // One round trip: the statements go as one simple query, every value an escaped literal. set_config('role') is
      // SET LOCAL ROLE taking the name as a value; it fails unless walrelay's role is a member of it.
      const statements = [
        'BEGIN READ ONLY',
        `SELECT set_config('role', ${literal(group.role)}, true), set_config('request.jwt.claims', ${literal(group.claimsJson)}, true), set_config('request.jwt.claim.sub', ${literal(group.subject)}, true), set_config('request.jwt.claim.role', ${literal(group.role)}, true)`,
        `SELECT a.i FROM jsonb_array_elements(${literal(JSON.stringify(rows.map((pending) => pending.key)))}::jsonb) WITH ORDINALITY AS a(e, i) CROSS JOIN LATERAL jsonb_populate_record(NULL::${table}, a.e) AS k WHERE EXISTS (SELECT 1 FROM ${table} AS t WHERE ${match})`,
        ...(fresh ? [] : [`SELECT a.attname FROM pg_attribute a WHERE a.attrelid = ${literal(table)}::regclass AND a.attnum > 0 AND NOT a.attisdropped AND has_column_privilege(a.attrelid, a.attnum, 'SELECT')`]),
        'ROLLBACK',
      ];
      const results = (await client.query(statements.join(';\n'))) as unknown as pg.QueryResult[];
      const visible = results[2]!.rows as { i: string }[];
      let columns: Set<string>;
      if (fresh) columns = cached.columns;
      else {
        columns = new Set((results[3]!.rows as { attname: string }[]).map((row) => row.attname));
        this.columnCache.set(cacheKey, { columns, at: Date.now() });
      }
      const seen = new Set(visible.map((row) => Number(row.i) - 1));
      settle((index) => (seen.has(index) ? { visible: true, columns } : { visible: false, columns }));
    } catch (error) {
      const message = (error as Error).message;
      this.warnOnce(`check ${group.role} ${group.schema}.${group.table} ${message}`, { role: group.role, table: `${group.schema}.${group.table}`, err: message },
        'row-level security check failed: the changes it covered are not sent');
      if (client) await client.query('ROLLBACK').catch(() => undefined);
      settle(() => DENIED);
    } finally {
      client?.release();
    }
  }

  private warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.warned.has(key)) return;
    if (this.warned.size > 1000) this.warned.clear();
    this.warned.add(key);
    this.logger.warn(fields, message);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
