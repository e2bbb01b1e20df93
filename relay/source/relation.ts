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
import { DECODE_ERROR_HINT, UNCHANGED, type PgoutputMessage, type Tuple } from './pgoutput.js';
import type { ColumnDetails, TypeCatalog } from './type-catalog.js';
import { converterFor, jsonConverterFor, type Converter, type JsonConverter } from './values.js';
import { WalrelayError } from '../errors.js';
import type { ColumnInfo, ColumnType, Row } from '../route/event.js';
import { shapeVersion, type ShapeColumn } from './table-shape.js';

export type RelationMessage = Extract<PgoutputMessage, { tag: 'relation' }>;

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
    this.qualifiedJson = `"schema":${JSON.stringify(this.schema)},"table":${JSON.stringify(this.table)}`;
    this.shape = relation.columns.map((column) => ({ name: column.name, typeOid: column.typeOid, typeMod: column.typeMod, key: this.keyColumns.includes(column.name) }));
    this.schemaVersion = shapeVersion(this.shape);
  }

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
