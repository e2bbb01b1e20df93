// Row-level security for Realtime subscribers (authorization: rls): whether
// PostgreSQL lets a token's role, with the token as request.jwt.claims, SELECT
// a changed row, as Supabase's apply_rls (supabase/walrus) decides it: the row
// is looked up by its key in the table's current state, and the role's
// readable columns limit what is sent.
//
// Unlike walrus, which checks every change once per subscriber, every
// subscriber holding the same (role, claims) belongs to one audience
// (audience.ts) and each change is checked once per audience. The checks
// waiting at the same moment go to PostgreSQL together: one round trip runs,
// in one read-only transaction, a query per (audience, table) covering all its
// waiting rows; while every connection is busy the waiting checks gather into
// the next round trip, so under load batches grow instead of queries queueing
// up. Nothing here blocks the replication stream: a change is handed over and
// write() returns; a subscriber whose checks lag behind is dropped by its
// session (bounded by maxClientQueue). Row decisions are never cached, so a
// policy changed at run time applies to the next change checked. The checks
// run on the host walrelay streams from (SourcePool): with a multi-host
// source.url the current primary, followed across a failover.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { ChangeEvent, Row } from '../../../../relay/route/event.js';
import { quoteIdent, sqlName } from '../../../../relay/setup/sql.js';
import { SourcePool } from '../../../../relay/source/source-pool.js';
import { connectPrimary, sourceState } from '../../../../relay/source/primary.js';
import { RlsAudience, type RlsCheck, type RlsMember, type RlsVerdict } from './audience.js';

export type { RlsVerdict } from './audience.js';

const DENIED: RlsVerdict = { visible: false, columns: null };

/** Column privileges change rarely and cost a catalog query: remembered this long per (role, table). */
const COLUMN_CACHE_MS = 5_000;

/** Queries (one per audience and table) in one round trip at most: the statement text and the time PostgreSQL holds it stay bounded. */
const GROUPS_PER_ROUND_TRIP = 200;

/** How long an audience whose check failed is checked in round trips of its own. */
const ALONE_AFTER_FAILURE_MS = 60_000;

/** The changes of one table waiting for a check under one audience (held by the audience, by table). */
export interface Group {
  audience: RlsAudience;
  tableKey: string;
  schema: string;
  table: string;
  keyColumns: string[];
  /** The table has a column named "ordinality" (the key lookup then takes the slower form). */
  ordinalityColumn: boolean;
  /** By row: its first check, which carries the key and any later checks of the same row. */
  rows: Map<string, RlsCheck>;
}

/** Where a change's row is found now, worked out once per change however many audiences check it. */
interface RowRef {
  tableKey: string;
  ordinalityColumn: boolean;
  keyColumns: string[];
  key: Row;
  rowKey: string;
}

export interface RlsOptions {
  poolSize: number;
  maxKeysPerQuery: number;
}

export class RlsChecker {
  /** On the host walrelay's stream uses: the primary, followed across a failover (relay/source/primary.ts). */
  private readonly pool: SourcePool;
  /** Audiences by (role, claims), while a channel uses them. */
  private readonly audiences = new Map<string, RlsAudience>();
  /** Groups with checks not started yet, oldest first: changes arriving meanwhile join their group's next round trip. */
  private readonly waiting = new Set<Group>();
  private running = 0;
  private scheduled = false;
  private lastEvent: ChangeEvent | null = null;
  private lastRow: RowRef | null = null;
  private readonly columnCache = new Map<string, { columns: Set<string>; at: number }>();
  /** Check failures already logged, by message: one warning each, not one per change. */
  private readonly warned = new Set<string>();

  constructor(private readonly url: string, private readonly options: RlsOptions, private readonly logger: Logger) {
    // Bounded waits: a host that stopped answering must not hold a connection slot for ever (its checks deny).
    this.pool = new SourcePool(url, { max: options.poolSize, application_name: 'walrelay-rls', connectionTimeoutMillis: 10_000, query_timeout: 30_000 });
  }

  /** Before walrelay's stream chose a host (a client joining during start), the checks choose it by the same rule. */
  private async choosePrimary(): Promise<void> {
    if (sourceState(this.url).current !== null) return;
    const { client } = await connectPrimary(this.url, { clientConfig: { application_name: 'walrelay-rls', connectionTimeoutMillis: 10_000 } });
    await client.end().catch(() => undefined);
  }

  /**
   * Why a token's role cannot be used for checks (null: it can): the role must exist and walrelay's own
   * role must be a member of it (PostgreSQL refuses SET ROLE otherwise).
   */
  async refusal(role: string | null): Promise<string | null> {
    if (role === null) return 'Unauthorized: authorization is rls and the token has no role claim (the PostgreSQL role whose row-level security policies apply)';
    await this.choosePrimary();
    const { rows } = await this.pool.query(
      "SELECT (SELECT pg_has_role(current_user, r.oid, 'MEMBER') FROM pg_roles r WHERE r.rolname = $1) AS member, current_user AS self", [role]);
    const { member, self } = rows[0] as { member: boolean | null; self: string };
    if (member === null) return `Unauthorized: the token's role ${JSON.stringify(role)} does not exist in the database`;
    if (!member) {
      this.warnOnce(`role ${role}`, { role, relayRole: self }, `a subscriber's token names role ${role}, which walrelay's role ${self} is not a member of: GRANT ${sqlName(role)} TO ${sqlName(self)} (docs/supabase.md, "Row-level security")`);
      return `Unauthorized: walrelay cannot check row-level security as role ${JSON.stringify(role)} (its database role is not a member of it; an administrator must grant it)`;
    }
    return null;
  }

  /** The audience of (role, claims), joined by `member` (told when checks settle); leave() it when done. */
  enter(role: string, claimsJson: string, subject: string | null, member: RlsMember): RlsAudience {
    const key = `${role}\u0000${claimsJson}`;
    let audience = this.audiences.get(key);
    if (!audience) {
      audience = new RlsAudience(key, role, claimsJson, subject ?? '', (event, check) => this.queue(audience!, event, check));
      this.audiences.set(key, audience);
    }
    audience.add(member);
    return audience;
  }

  leave(audience: RlsAudience, member: RlsMember): void {
    if (audience.remove(member) && this.audiences.get(audience.key) === audience) this.audiences.delete(audience.key);
  }

  /** Queues the check of `event` for `audience`; settles `check` beside the stream, never fails. */
  private queue(audience: RlsAudience, event: ChangeEvent, check: RlsCheck): void {
    const row = this.rowOf(event);
    if (row === null) {
      // Like walrus, a table without a primary key (or replica identity) cannot be checked: nothing is sent.
      this.warnOnce(`nokey ${event.schema}.${event.table}`, { table: `${event.schema}.${event.table}` }, 'a table without a primary key cannot be checked by row-level security: its changes are not sent to rls subscribers');
      check.verdict = DENIED;
      return;
    }
    // Every audience checking this change looks its group and row up by the same string objects (hashed once).
    let group = audience.groups.get(row.tableKey);
    if (!group) {
      group = { audience, tableKey: row.tableKey, schema: event.schema!, table: event.table!, keyColumns: row.keyColumns, ordinalityColumn: row.ordinalityColumn, rows: new Map() };
      audience.groups.set(row.tableKey, group);
      this.waiting.add(group);
    }
    check.key = row.key;
    check.rowKey = row.rowKey;
    const first = group.rows.get(row.rowKey);
    if (first === undefined) group.rows.set(row.rowKey, check);
    else (first.sameRow ??= []).push(check); // the row changed again before its check: one lookup answers both
    // Everything the current write() fans out is gathered before a round trip goes.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }
  }

  /** The table and current key of the change's row (null: no key); the last change's is kept, as the fan-out asks for it once per audience. */
  private rowOf(event: ChangeEvent): RowRef | null {
    if (event === this.lastEvent) return this.lastRow;
    const key = event.key;
    let row: RowRef | null = null;
    if (key && Object.keys(key).length > 0 && event.schema !== undefined && event.table !== undefined) {
      const keyColumns = Object.keys(key);
      // The row as it is now is found by its current key: the new row's values when it has them (an UPDATE may change the key).
      const current: Row = {};
      for (const column of keyColumns) current[column] = event.new && column in event.new ? event.new[column] : key[column];
      const ordinalityColumn = 'ordinality' in current || (event.new !== undefined && event.new !== null && 'ordinality' in event.new);
      row = { tableKey: `${event.schema}.${event.table}\u0000${keyColumns.join(',')}\u0000${ordinalityColumn}`, ordinalityColumn, keyColumns, key: current, rowKey: JSON.stringify(current) };
    }
    this.lastEvent = event;
    this.lastRow = row;
    return row;
  }

  /**
   * At most poolSize round trips run at once; each takes the oldest waiting groups (up to maxKeysPerQuery rows
   * per query), with every change that joined them while the connections were busy: under load batches grow
   * instead of queries queueing up one by one.
   */
  private pump(): void {
    const now = Date.now();
    while (this.running < this.options.poolSize && this.waiting.size > 0) {
      const batch: { group: Group; rows: RlsCheck[] }[] = [];
      for (const group of this.waiting) {
        if (group.audience.empty) {
          // Every subscriber of this audience left or was dropped: nobody waits for these checks.
          this.take(group);
          this.settle([{ group, rows: [...group.rows.values()] }], () => () => DENIED);
          continue;
        }
        // An audience whose checks failed lately goes in a round trip of its own: its error must not make every
        // round trip fail and be retried audience by audience.
        const alone = group.audience.failedUntil > now;
        if (alone && batch.length > 0) continue;
        if (batch.length >= GROUPS_PER_ROUND_TRIP) break;
        let rows: RlsCheck[];
        if (group.rows.size <= this.options.maxKeysPerQuery) {
          rows = [...group.rows.values()];
          this.take(group);
        } else {
          rows = [];
          for (const [rowKey, check] of group.rows) {
            if (rows.length >= this.options.maxKeysPerQuery) break;
            rows.push(check);
            group.rows.delete(rowKey); // the rest stays queued, in its place, for the next round trip
          }
        }
        batch.push({ group, rows });
        if (alone) break;
      }
      if (batch.length === 0) return;
      this.running++;
      void this.run(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  /** The group leaves the queue with all its rows: changes arriving from now on start a new one. */
  private take(group: Group): void {
    this.waiting.delete(group);
    if (group.audience.groups.get(group.tableKey) === group) group.audience.groups.delete(group.tableKey);
  }

  /**
   * One round trip, one read-only transaction: per group, the audience's role and claims, then which of its rows
   * that role sees now (and its column privileges, cached briefly). A failing statement aborts the rest of the
   * round trip: then each group is checked again alone, so that one audience's error does not deny the others.
   */
  private async run(batch: { group: Group; rows: RlsCheck[] }[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      await this.choosePrimary();
      client = await this.pool.connect();
    } catch (error) {
      this.failed(batch.map(({ group }) => group), error as Error);
      this.settle(batch, () => () => DENIED);
      return;
    }
    let failure: Error | null = null;
    let results: ((row: number) => RlsVerdict)[] = [];
    let broken = false;
    try {
      results = await this.query(client, batch);
    } catch (error) {
      failure = error as Error;
      // A connection that cannot even roll back (lost, timed out) is not reused.
      broken = await client.query('ROLLBACK').then(() => false, () => true);
    } finally {
      client.release(broken);
    }
    // Outside the try: what sending the released changes may throw is no check failure.
    if (failure === null) {
      this.settle(batch, (index) => results[index]!);
      return;
    }
    if (batch.length === 1) {
      batch[0]!.group.audience.failedUntil = Date.now() + ALONE_AFTER_FAILURE_MS;
      this.failed([batch[0]!.group], failure);
      this.settle(batch, () => () => DENIED);
      return;
    }
    for (const entry of batch) await this.run([entry]);
  }

  /** Per batch entry, the verdict of each of its rows. */
  private async query(client: pg.PoolClient, batch: { group: Group; rows: RlsCheck[] }[]): Promise<((row: number) => RlsVerdict)[]> {
    const literal = (value: string) => client.escapeLiteral(value);
    const statements = ['BEGIN READ ONLY'];
    const plans: { selectAt: number; columnsAt: number; cacheKey: string }[] = [];
    const fetching = new Map<string, number>();
    const keyLiterals = new Map<string, string>();
    for (const { group, rows } of batch) {
      const { audience } = group;
      const { role, claimsJson, subject } = audience;
      const table = `${quoteIdent(group.schema)}.${quoteIdent(group.table)}`;
      const cacheKey = `${role}\u0000${group.schema}.${group.table}`;
      const cached = this.columnCache.get(cacheKey);
      // Each key is cast to the column types by the table's own row type; RLS applies to the EXISTS, as to any SELECT of the role.
      const match = group.keyColumns.map((column) => `t.${quoteIdent(column)} = k.${quoteIdent(column)}`).join(' AND ');
      // Every value is an escaped literal (the round trip is one simple query). set_config('role') is SET LOCAL ROLE
      // taking the name as a value; it fails unless walrelay's role is a member of it.
      audience.settings ??= `SELECT set_config('role', ${literal(role)}, true), set_config('request.jwt.claims', ${literal(claimsJson)}, true), set_config('request.jwt.claim.sub', ${literal(subject)}, true), set_config('request.jwt.claim.role', ${literal(role)}, true)`;
      statements.push(audience.settings);
      const selectAt = statements.length;
      // Audiences waiting for the same changes look up the same keys: their literal is built once per round trip.
      // (Each row's JSON is already there: the array's is theirs joined.)
      const json = rows.length === 1 ? rows[0]!.rowKey! : rows.map((check) => check.rowKey!).join(',');
      let keys = keyLiterals.get(json);
      if (keys === undefined) {
        keys = `${literal(`[${json}]`)}::jsonb`;
        keyLiterals.set(json, keys);
      }
      // jsonb_populate_recordset types every key at once (a third less of PostgreSQL's time than one record per
      // key), but its ordinality column would be ambiguous in a table with a column of that name.
      statements.push(group.ordinalityColumn
        ? `SELECT a.i FROM jsonb_array_elements(${keys}) WITH ORDINALITY AS a(e, i) CROSS JOIN LATERAL jsonb_populate_record(NULL::${table}, a.e) AS k WHERE EXISTS (SELECT 1 FROM ${table} AS t WHERE ${match})`
        : `SELECT k.ordinality AS i FROM jsonb_populate_recordset(NULL::${table}, ${keys}) WITH ORDINALITY AS k WHERE EXISTS (SELECT 1 FROM ${table} AS t WHERE ${match})`);
      let columnsAt = -1;
      if (cached === undefined || Date.now() - cached.at >= COLUMN_CACHE_MS) {
        columnsAt = fetching.get(cacheKey) ?? -1;
        if (columnsAt < 0) {
          columnsAt = statements.length;
          fetching.set(cacheKey, columnsAt);
          statements.push(`SELECT a.attname FROM pg_attribute a WHERE a.attrelid = ${literal(table)}::regclass AND a.attnum > 0 AND NOT a.attisdropped AND has_column_privilege(a.attrelid, a.attnum, 'SELECT')`);
        }
      }
      plans.push({ selectAt, columnsAt, cacheKey });
    }
    statements.push('ROLLBACK');
    const results = (await client.query(statements.join(';\n'))) as unknown as pg.QueryResult[];
    const fetched = new Map<number, Set<string>>();
    return plans.map(({ selectAt, columnsAt, cacheKey }) => {
      let columns: Set<string>;
      if (columnsAt < 0) columns = this.columnCache.get(cacheKey)!.columns;
      else {
        columns = fetched.get(columnsAt) ?? new Set((results[columnsAt]!.rows as { attname: string }[]).map((row) => row.attname));
        if (!fetched.has(columnsAt)) {
          fetched.set(columnsAt, columns);
          this.columnCache.set(cacheKey, { columns, at: Date.now() });
        }
      }
      const seen = new Set((results[selectAt]!.rows as { i: string }[]).map((row) => Number(row.i) - 1));
      const visible: RlsVerdict = { visible: true, columns };
      const hidden: RlsVerdict = { visible: false, columns };
      return (row: number) => (seen.has(row) ? visible : hidden);
    });
  }

  /** Records each verdict, then tells every audience of the batch once. */
  private settle(batch: { group: Group; rows: RlsCheck[] }[], verdicts: (entry: number) => (row: number) => RlsVerdict): void {
    const audiences = new Set<RlsAudience>();
    batch.forEach(({ group, rows }, entry) => {
      const verdictOf = verdicts(entry);
      rows.forEach((check, row) => {
        const verdict = verdictOf(row);
        check.verdict = verdict;
        if (check.sameRow) {
          for (const later of check.sameRow) later.verdict = verdict;
          check.sameRow = null;
        }
      });
      audiences.add(group.audience);
    });
    const onError = (error: Error) => this.warnOnce(`send ${error.message}`, { err: error.message }, 'row-level security: sending checked changes to a subscriber failed');
    for (const audience of audiences) audience.settled(onError);
  }

  private failed(groups: Group[], error: Error): void {
    for (const group of groups) {
      this.warnOnce(`check ${group.audience.role} ${group.schema}.${group.table} ${error.message}`, { role: group.audience.role, table: `${group.schema}.${group.table}`, err: error.message },
        'row-level security check failed: the changes it covered are not sent');
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
