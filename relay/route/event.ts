// The change event of contract section 3, and its one shared serialisation.
import type { Tuple } from '../source/pgoutput.js';
import type { TypeCatalog } from '../source/type-catalog.js';

export type Op = 'insert' | 'update' | 'delete' | 'truncate' | 'message' | 'read' | 'gap' | 'begin' | 'commit' | 'schema';

export type Row = Record<string, unknown>;

/** A column as PostgreSQL's catalog names it: `{name: "id", type: "int4"}` (type = pg_type.typname). */
export interface ColumnType {
  name: string;
  type: string;
}

export interface SchemaColumn {
  name: string;
  /** Type name (schema-qualified outside pg_catalog), its OID and modifier as the Relation message gave them. */
  type: string;
  typeOid: number;
  typeMod: number;
  key: boolean;
}

export interface ChangeEvent {
  /** Unique, identical on re-delivery, sorts strictly in delivery order: commit LSN (16 hex digits) '-' position in the transaction (10 digits); a non-transactional message: its end LSN alone (assembler.ts). */
  id: string;
  op: Op;
  schema?: string;
  table?: string;
  /** Short hash of the table's shape (relay/source/table-shape.ts); row changes, reads and schema events. */
  schemaVersion?: string;
  /** schema only (relay/route/schema-event.ts): the table's columns in order */
  columns?: SchemaColumn[];
  key?: Row | null;
  new?: Row | null;
  old?: Row | null;
  /** TOASTed columns PostgreSQL did not send (value unchanged); absent from `new`. */
  unchanged?: string[];
  /** truncate only */
  cascade?: boolean;
  restartIdentity?: boolean;
  /** message only (pg_logical_emit_message) */
  prefix?: string;
  content?: string;
  contentEncoding?: 'utf8' | 'base64';
  transactional?: boolean;
  /** gap only (relay/route/gap.ts): the slot, and the span of WAL whose changes were lost */
  slot?: string;
  fromLsn?: string;
  toLsn?: string;
  /** read events of `backfill --sink`: the one sink that takes them, and its stream template for them (not serialised) */
  target?: { sink: string; stream?: string };
  /** begin / commit only (relay/stages/transaction-events.ts): events of the transaction (null on begin), and per table */
  eventCount?: number | null;
  tables?: Record<string, number>;
  lsn: string;
  commitLsn: string | null;
  xid: number | null;
  commitTime: string | null;
}

/**
 * A row change whose JSON is assembled from fragments the decoder produced
 * straight from PostgreSQL's text output (relation.ts): numbers are copied,
 * strings escaped once, nothing is parsed and re-serialised. The row objects
 * are parsed back only when something asks for them (websocket filters, the
 * debezium format).
 */
export class RowChange implements ChangeEvent {
  /** The table's columns and their pg_type names, shared by every change of the relation (not serialised; the Realtime protocol sends them). */
  columnTypes?: readonly ColumnType[];
  /** Set by the assembler for formats that need PostgreSQL's text values (see EventOrigin). */
  origin?: EventOrigin;
  private parsed: { key: Row | null; new: Row | null; old: Row | null } | null = null;
  private jsonText: string | undefined;

  constructor(
    readonly id: string,
    readonly op: Op,
    readonly schema: string,
    readonly table: string,
    /** `"schema":"…","table":"…"`, escaped once per relation. */
    private readonly qualifiedJson: string,
    private readonly keyText: string | null,
    /** The rows' JSON text as built from PostgreSQL's text (json numbers with every digit). */
    private readonly newText: string | null,
    private readonly oldText: string | null,
    readonly unchanged: string[] | undefined,
    readonly lsn: string,
    readonly commitLsn: string,
    readonly xid: number,
    readonly commitTime: string,
    readonly schemaVersion?: string,
  ) {}

  /** The event's JSON (walrelay format). */
  get json(): string {
    if (this.jsonText === undefined) {
      const version = this.schemaVersion === undefined ? '' : `,"schemaVersion":"${this.schemaVersion}"`;
      this.jsonText = `{"id":"${this.id}","op":"${this.op}",${this.qualifiedJson}${version},"key":${this.keyText ?? 'null'},"new":${this.newText ?? 'null'},"old":${this.oldText ?? 'null'}` +
        (this.unchanged ? `,"unchanged":${JSON.stringify(this.unchanged)}` : '') +
        `,"lsn":"${this.lsn}","commitLsn":"${this.commitLsn}","xid":${this.xid},"commitTime":"${this.commitTime}"}`;
    }
    return this.jsonText;
  }

  get keyJson(): string | null { return this.keyText; }
  get newJson(): string | null { return this.newText; }
  get oldJson(): string | null { return this.oldText; }

  private rows(): { key: Row | null; new: Row | null; old: Row | null } {
    if (this.parsed === null) {
      const key = this.keyJson;
      const row = this.newJson;
      const old = this.oldJson;
      this.parsed = { key: key === null ? null : JSON.parse(key), new: row === null ? null : JSON.parse(row), old: old === null ? null : JSON.parse(old) };
    }
    return this.parsed;
  }

  get key(): Row | null { return this.rows().key; }
  get new(): Row | null { return this.rows().new; }
  get old(): Row | null { return this.rows().old; }

  toJSON(): unknown {
    return JSON.parse(this.json);
  }
}

/**
 * A row change whose JSON was written as UTF-8 bytes straight from
 * pgoutput's (event-bytes.ts): `chunk[start, end)` is the event's JSON,
 * followed by a newline. Its strings are decoded only when asked for.
 */
/** Where the id begins in a row change's JSON: after `{"id":"` (event-bytes.ts). */
const ID_OFFSET = 7;

export class EncodedRowChange extends RowChange {
  private jsonDecoded: string | undefined;

  constructor(
    id: string, op: Op, schema: string, table: string, unchanged: string[] | undefined, lsn: string, commitLsn: string, xid: number, commitTime: string, schemaVersion: string | undefined,
    readonly chunk: Buffer,
    readonly start: number,
    readonly end: number,
    /** Start and end in `chunk` of the key, new and old objects (-1: null), then where the lsn's text starts. */
    private readonly parts: readonly number[],
  ) {
    super(id, op, schema, table, '', null, null, null, unchanged, lsn, commitLsn, xid, commitTime, schemaVersion);
  }

  override get json(): string {
    return (this.jsonDecoded ??= this.chunk.toString('utf8', this.start, this.end));
  }

  override get keyJson(): string | null { return this.part(0); }
  /** The key's JSON as UTF-8 bytes (a view of the chunk), or null: Kafka's record key without decoding it. */
  get keyBytes(): Buffer | null {
    const start = this.parts[0];
    return start < 0 ? null : this.chunk.subarray(start, this.parts[1]);
  }
  /** The id as UTF-8 bytes (a view of the chunk: the JSON opens with it). */
  get idBytes(): Buffer {
    const start = this.start + ID_OFFSET;
    return this.chunk.subarray(start, start + this.id.length);
  }
  /** The event's LSN as bytes (a view of the chunk; ASCII, so as long as the string). */
  get lsnBytes(): Buffer {
    const start = this.parts[6];
    return this.chunk.subarray(start, start + this.lsn.length);
  }
  override get newJson(): string | null { return this.part(2); }
  override get oldJson(): string | null { return this.part(4); }

  private part(index: number): string | null {
    const start = this.parts[index];
    return start < 0 ? null : this.chunk.toString('utf8', start, this.parts[index + 1]);
  }
}

const jsonCache = new WeakMap<ChangeEvent, string>();

/** JSON of the event in walrelay format, computed once and shared by every sink. */
export function eventJson(event: ChangeEvent): string {
  if (event instanceof RowChange) return event.json;
  let json = jsonCache.get(event);
  if (json === undefined) {
    json = JSON.stringify(event);
    jsonCache.set(event, json);
  }
  return json;
}

/** JSON of the event's key (the Kafka record key), or null. */
export function keyJson(event: ChangeEvent): string | null {
  if (event instanceof RowChange) return event.keyJson;
  return event.key ? JSON.stringify(event.key) : null;
}

/** A column as the Relation message describes it. */
export interface ColumnInfo {
  name: string;
  typeOid: number;
  typmod: number;
  /** Part of the event's key. */
  key: boolean;
  /** NOT NULL in the catalog (known only when a Debezium sink needs it: Kafka Connect schemas). */
  notNull?: boolean;
  /** The catalog's default expression (pg_get_expr), likewise. */
  defaultExpression?: string | null;
}

/**
 * What a format other than walrelay's (Debezium) needs beside the event:
 * PostgreSQL's text values with their column types, and the stream position
 * before the event's transaction. Not part of the event's JSON.
 */
export interface EventOrigin {
  columns?: readonly ColumnInfo[];
  /** Where the columns' non-built-in types (enums, domains, arrays, extension types) are described. */
  catalog?: TypeCatalog;
  /** Text values as pgoutput sent them (UNCHANGED for TOASTed values not sent). */
  newTuple?: Tuple | null;
  oldTuple?: Tuple | null;
  /** oldTuple is pgoutput's key tuple: only the replica identity columns hold values. */
  oldIsKey?: boolean;
  /** The source database's name, carried where the renderer has none of its own (an edge, from the feed). */
  database?: string;
  /** End LSN and commit time of the last transaction committed before this event, when this run saw one. */
  previousCommitEnd: string | null;
  previousCommitTime: string | null;
}

/**
 * Attaches an origin without adding it to the event's JSON. Only a sink
 * rendering Debezium reads it, and it keeps PostgreSQL's text alive as long
 * as the event, so the assembler attaches it only when such a sink is
 * configured (its `keepOrigins` option).
 */
export function setOrigin(event: ChangeEvent, origin: EventOrigin): void {
  if (event instanceof RowChange) event.origin = origin;
  else Object.defineProperty(event, 'origin', { value: origin, enumerable: false });
}

export function originOf(event: ChangeEvent): EventOrigin | undefined {
  return (event as { origin?: EventOrigin }).origin;
}
