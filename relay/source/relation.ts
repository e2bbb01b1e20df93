// One table as pgoutput describes it: column names, a converter per column
// (built once, when the Relation message arrives), and the key columns.
//
// The event's key (README "The change event"):
// - REPLICA IDENTITY DEFAULT: the primary key (pgoutput flags its columns);
//   none without one.
// - REPLICA IDENTITY FULL: pgoutput flags every column; the table's primary
//   key is used when it has one (`primaryKey`, looked up by the caller),
//   because a key that changes with every update would scatter one row's
//   events over Kafka partitions; without a primary key, every column.
// - REPLICA IDENTITY USING INDEX: the index's columns, even when the table
//   also has a primary key, since a DELETE carries only the index's columns.
// - REPLICA IDENTITY NOTHING: none (key null).
import { DECODE_ERROR_HINT, NULL_SPAN, UNCHANGED, UNCHANGED_SPAN, type PgoutputMessage, type Spans, type Tuple } from './pgoutput.js';
import { byteConverterFor, type ByteConverter } from './byte-values.js';
import type { JsonBytes } from '../route/json-bytes.js';
import type { ColumnDetails, TypeCatalog } from './type-catalog.js';
import { converterFor, jsonConverterFor, type Converter, type JsonConverter } from './values.js';
import { WalrelayError } from '../errors.js';
import type { ColumnInfo, ColumnType, Row } from '../route/event.js';
import { shapeVersion, type ShapeColumn } from './table-shape.js';

export type RelationMessage = Extract<PgoutputMessage, { tag: 'relation' }>;

const NULL_BYTES = Buffer.from('null');

export class RelationDecoder {
  readonly relationId: number;
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly string[];
  readonly keyColumns: readonly string[];
  /** Column names with their pg_type names, in table order. */
  readonly columnTypes: readonly ColumnType[];
  /** The columns as the Relation message describes them, with the key flag of the event's key. */
  readonly shape: readonly ShapeColumn[];
  /** Short hash of `shape` (table-shape.ts): the events' `schemaVersion`. */
  readonly schemaVersion: string;
  /** Name, type, type modifier and key flag of every column (formats that need the types: Debezium). */
  readonly columnInfo: readonly ColumnInfo[];
  /** `"schema":"…","table":"…"` for the event JSON. */
  readonly qualifiedJson: string;
  private readonly jsonConverters: JsonConverter[];
  /** The same as bytes to bytes (the row messages' fast path). */
  private readonly byteConverters: ByteConverter[];
  /** `"column":` as UTF-8, for each column. */
  private readonly jsonNameBytes: Buffer[];
  /** Value converters, built on first use (the event path uses the JSON ones). */
  private valueConverters: Converter[] | null = null;
  private readonly types: number[];
  private readonly catalog: TypeCatalog;
  /** `"column":` for each column, escaped once. */
  private readonly jsonNames: string[];
  private readonly keyIndexes: number[];
  /** Columns pgoutput flags as replica identity: those an old key tuple ('K') carries. */
  private readonly identityIndexes: number[];

  /**
   * `primaryKey` replaces the key for REPLICA IDENTITY FULL, where pgoutput
   * flags every column: a key that changes with every update would scatter one
   * row's events across Kafka partitions.
   */
  constructor(relation: RelationMessage, catalog: TypeCatalog, primaryKey: readonly string[] = [], details?: Map<string, ColumnDetails>) {
    this.relationId = relation.relationId;
    this.schema = relation.schema;
    this.table = relation.name;
    this.columns = relation.columns.map((column) => column.name);
    this.identityIndexes = relation.columns.flatMap((column, index) => ((column.flags & 1) !== 0 ? [index] : []));
    const flagged = relation.columns.filter((column) => (column.flags & 1) !== 0).map((column) => column.name);
    const usable = primaryKey.length > 0 && primaryKey.every((column) => this.columns.includes(column));
    this.keyColumns = relation.replicaIdentity === 'f' && usable ? this.columns.filter((column) => primaryKey.includes(column)) : flagged;
    this.keyIndexes = this.keyColumns.map((column) => this.columns.indexOf(column));
    this.columnInfo = relation.columns.map((column) => {
      const info: ColumnInfo = { name: column.name, typeOid: column.typeOid, typmod: column.typeMod, key: this.keyColumns.includes(column.name) };
      const detail = details?.get(column.name);
      if (detail) Object.assign(info, { notNull: detail.notNull, defaultExpression: detail.defaultExpression });
      return info;
    });
    this.catalog = catalog;
    this.types = relation.columns.map((column) => column.typeOid);
    this.columnTypes = relation.columns.map((column) => ({ name: column.name, type: catalog.info(column.typeOid)?.name ?? String(column.typeOid) }));
    this.jsonConverters = this.types.map((oid) => jsonConverterFor(oid, catalog));
    this.jsonNames = this.columns.map((column) => `${JSON.stringify(column)}:`);
    this.byteConverters = this.types.map((oid) => byteConverterFor(oid, catalog));
    this.jsonNameBytes = this.jsonNames.map((name) => Buffer.from(name));
    this.qualifiedJson = `"schema":${JSON.stringify(this.schema)},"table":${JSON.stringify(this.table)}`;
    this.shape = relation.columns.map((column) => ({ name: column.name, typeOid: column.typeOid, typeMod: column.typeMod, key: this.keyColumns.includes(column.name) }));
    this.schemaVersion = shapeVersion(this.shape);
    this.eventHead = Buffer.from(`${this.qualifiedJson},"schemaVersion":"${this.schemaVersion}","key":`);
  }

  /** `"schema":"…","table":"…","schemaVersion":"…","key":` as UTF-8: the part of a row change's JSON that is the relation's. */
  readonly eventHead: Buffer;

  /** The row as a JSON object text, built from the text values directly; TOASTed values not sent are left out and listed. */
  encodeRow(tuple: Tuple): { json: string; unchanged: string[] | undefined } {
    this.checkLength(tuple);
    let json = '{';
    let unchanged: string[] | undefined;
    for (let i = 0; i < tuple.length; i++) {
      const value = tuple[i];
      if (value === UNCHANGED) {
        (unchanged ??= []).push(this.columns[i]);
        continue;
      }
      if (json.length > 1) json += ',';
      json += this.jsonNames[i] + (value === null ? 'null' : this.jsonConverters[i](value));
    }
    return { json: json + '}', unchanged };
  }

  /** encodeRow on spans of `buffer`, written to `out`; returns the unchanged columns. */
  writeRow(buffer: Buffer, spans: Spans, out: JsonBytes): string[] | undefined {
    this.checkSpans(spans);
    let unchanged: string[] | undefined;
    let first = true;
    out.byte(0x7b); // {
    for (let i = 0; i < spans.length; i += 2) {
      const start = spans[i];
      const column = i >> 1;
      if (start === UNCHANGED_SPAN) {
        (unchanged ??= []).push(this.columns[column]);
        continue;
      }
      if (first) first = false;
      else out.byte(0x2c); // ,
      out.bytes(this.jsonNameBytes[column]);
      if (start === NULL_SPAN) out.bytes(NULL_BYTES);
      else this.byteConverters[column](buffer, start, spans[i + 1], out);
    }
    out.byte(0x7d); // }
    return unchanged;
  }

  /** encodeKey on spans, written to `out`; false (nothing written) without a replica identity. */
  writeKey(buffer: Buffer, spans: Spans, out: JsonBytes): boolean {
    const keyIndexes = this.keyIndexes;
    if (keyIndexes.length === 0) return false;
    this.checkSpans(spans);
    out.byte(0x7b);
    for (let k = 0; k < keyIndexes.length; k++) {
      const i = keyIndexes[k];
      if (k > 0) out.byte(0x2c);
      out.bytes(this.jsonNameBytes[i]);
      const start = spans[2 * i];
      if (start < 0) out.bytes(NULL_BYTES);
      else this.byteConverters[i](buffer, start, spans[2 * i + 1], out);
    }
    out.byte(0x7d);
    return true;
  }

  /** withKnownValues on spans (the tuples are spans of one message). */
  withKnownSpans(newSpans: Spans, oldSpans: Spans | null, keySpans: Spans | null): Spans {
    if (!oldSpans && !keySpans) return newSpans;
    let filled: Spans | null = null;
    for (let i = 0; i < newSpans.length; i += 2) {
      if (newSpans[i] !== UNCHANGED_SPAN) continue;
      if (filled === null) {
        this.checkSpans(newSpans);
        filled = newSpans.slice();
      }
      const column = i >> 1;
      if (oldSpans) {
        this.checkSpans(oldSpans);
        filled[i] = oldSpans[i];
        filled[i + 1] = oldSpans[i + 1];
      } else if (keySpans && this.identityIndexes.includes(column)) {
        this.checkSpans(keySpans);
        filled[i] = keySpans[i];
        filled[i + 1] = keySpans[i + 1];
      }
    }
    return filled ?? newSpans;
  }

  private checkSpans(spans: Spans): void {
    if (spans.length !== 2 * this.columns.length) {
      throw new WalrelayError('PGOUTPUT_MALFORMED', `a tuple of ${this.schema}.${this.table} has ${spans.length / 2} columns, its Relation message ${this.columns.length}`, { hint: DECODE_ERROR_HINT });
    }
  }

  /**
   * An UPDATE's new tuple with each unchanged TOASTed value (not sent) taken
   * from the old row when PostgreSQL sent one (REPLICA IDENTITY FULL flattens
   * TOAST into it), or, for replica-identity columns, from the old key: the
   * value did not change, so the old one is the new one. Values known from
   * neither stay UNCHANGED.
   */
  withKnownValues(newTuple: Tuple, oldTuple: Tuple | null, keyTuple: Tuple | null): Tuple {
    if ((!oldTuple && !keyTuple) || !newTuple.includes(UNCHANGED)) return newTuple;
    this.checkLength(newTuple);
    const filled = newTuple.slice();
    if (oldTuple) {
      this.checkLength(oldTuple);
      for (let i = 0; i < filled.length; i++) if (filled[i] === UNCHANGED) filled[i] = oldTuple[i];
    } else if (keyTuple) {
      this.checkLength(keyTuple);
      for (const i of this.identityIndexes) if (filled[i] === UNCHANGED) filled[i] = keyTuple[i];
    }
    return filled;
  }

  /** The key columns of a tuple as a JSON object text; null without a replica identity. */
  encodeKey(tuple: Tuple): string | null {
    if (this.keyIndexes.length === 0) return null;
    this.checkLength(tuple);
    let json = '{';
    for (const i of this.keyIndexes) {
      const value = tuple[i];
      if (json.length > 1) json += ',';
      json += this.jsonNames[i] + (value === null || value === UNCHANGED ? 'null' : this.jsonConverters[i](value));
    }
    return json + '}';
  }

  /** The row as JavaScript values (contract section 3); TOASTed values not sent are left out and listed, in column order. */
  decodeRow(tuple: Tuple): { row: Row; unchanged: string[] } {
    this.checkLength(tuple);
    const convert = this.converters();
    const row: Row = {};
    const unchanged: string[] = [];
    for (let i = 0; i < tuple.length; i++) {
      const value = tuple[i];
      if (value === UNCHANGED) unchanged.push(this.columns[i]);
      else row[this.columns[i]] = value === null ? null : convert[i](value);
    }
    return { row, unchanged };
  }

  /**
   * The key columns, in column order, of a tuple or of a row decoded by
   * `decodeRow`; null without a replica identity. A key value missing from
   * a row, or not sent (unchanged TOAST), is null.
   */
  keyOf(source: Tuple | Row): Row | null {
    if (this.keyIndexes.length === 0) return null;
    const key: Row = {};
    if (Array.isArray(source)) {
      this.checkLength(source);
      const convert = this.converters();
      for (const i of this.keyIndexes) {
        const value = source[i];
        key[this.columns[i]] = value === null || value === UNCHANGED ? null : convert[i](value);
      }
    } else {
      for (const i of this.keyIndexes) key[this.columns[i]] = source[this.columns[i]] ?? null;
    }
    return key;
  }

  private converters(): Converter[] {
    return (this.valueConverters ??= this.types.map((oid) => converterFor(oid, this.catalog)));
  }

  private checkLength(tuple: Tuple): void {
    if (tuple.length !== this.columns.length) {
      throw new WalrelayError('PGOUTPUT_MALFORMED', `a tuple of ${this.schema}.${this.table} has ${tuple.length} columns, its Relation message ${this.columns.length}`, { hint: DECODE_ERROR_HINT });
    }
  }
}
