// Debezium's change event envelope (JSON converter, schemas off), field by
// field in Debezium Server 3.6's order, and the records one walrelay event
// becomes: a delete is followed by a tombstone (same key, null value); an
// update that changes the key is a delete, a tombstone and a create. An
// unchanged TOASTed value is "__debezium_unavailable_value", unless the old
// row (REPLICA IDENTITY FULL) holds it.
//
// Row values come from PostgreSQL's text (the event's origin, see
// relay/route/event.ts) through values.ts; events without one (backfill
// reads) carry walrelay's values.
import { UNCHANGED, type Tuple } from '../../relay/source/pgoutput.js';
import { originOf, RowChange, type ChangeEvent, type ColumnInfo, type EventOrigin } from '../../relay/route/event.js';
import { parseLsn } from '../../relay/lsn.js';
import { GAP_PREFIX } from '../../relay/route/gap.js';

/** Debezium has no schema event: it is a logical-decoding message with this prefix. */
export const SCHEMA_MESSAGE_PREFIX = 'walrelay.schema';
import { debeziumConverter, unavailableValue, type DebeziumConverter } from './values.js';
import { timestampToEpochMicros } from './temporal.js';
import type { DebeziumOptions } from './options.js';
import { columnSchema, envelopeSchema, keySchema, MESSAGE_KEY_SCHEMA, MESSAGE_VALUE_SCHEMA, withSchema } from './connect-schema.js';

/** One Kafka record / Redis stream entry. A null value is a tombstone; a null key has none. */
export interface DebeziumRecord {
  key: string | null;
  value: string | null;
}

const OP: Record<string, string> = { insert: 'c', update: 'u', delete: 'd', read: 'r', truncate: 't' };

interface Table {
  columns: readonly ColumnInfo[];
  converters: (DebeziumConverter | undefined)[];
  /** Per column, the JSON for an unchanged TOASTed value. */
  unavailable: string[];
  names: string[];
  /** Columns Debezium writes (it leaves out those of types it does not know). */
  included: number[];
  keyIndexes: number[];
  /** With `schemas`: Kafka Connect's key and value schemas, built once per table shape. */
  keySchema?: string;
  valueSchema?: string;
  /** Per column, the JSON of a null: 'null', or with `schemas` a NOT NULL column's default or zero. */
  nullJson: string[];
}

export class DebeziumRenderer {
  private readonly tables = new WeakMap<readonly ColumnInfo[], Table>();
  private readonly cache = new WeakMap<ChangeEvent, DebeziumRecord[]>();

  constructor(readonly options: DebeziumOptions, private readonly database: string) {}

  /** The records of one event, computed once per renderer. */
  records(event: ChangeEvent): DebeziumRecord[] {
    let records = this.cache.get(event);
    if (records === undefined) {
      records = this.render(event);
      this.cache.set(event, records);
    }
    return records;
  }

  private render(event: ChangeEvent): DebeziumRecord[] {
    // walrelay's transaction events have no Debezium record (Debezium's transaction topic is not supported).
    if (event.op === 'begin' || event.op === 'commit') return [];
    const origin = originOf(event);
    const now = processingTime();
    if (event.op === 'message' || event.op === 'gap' || event.op === 'schema') {
      // Debezium has no gap or schema event: they travel as walrelay.gap / walrelay.schema logical-decoding messages.
      const prefix = event.op === 'gap' ? GAP_PREFIX : event.op === 'schema' ? SCHEMA_MESSAGE_PREFIX : event.prefix;
      const content = event.op === 'gap' ? Buffer.from(JSON.stringify({ slot: event.slot, fromLsn: event.fromLsn, toLsn: event.toLsn })).toString('base64')
        : event.op === 'schema' ? Buffer.from(JSON.stringify({ schema: event.schema, table: event.table, schemaVersion: event.schemaVersion, columns: event.columns })).toString('base64')
        : event.contentEncoding === 'base64' ? event.content : Buffer.from(event.content ?? '', 'utf8').toString('base64');
      const transactional = event.op === 'gap' || event.op === 'schema' || event.transactional;
      const source = this.source(event, origin, transactional ? event.commitTime : origin?.previousCommitTime ?? null, '', '');
      const value = `{"op":"m","ts_ms":${now.ms},"source":${source},"transaction":null,"message":${JSON.stringify({ prefix, content })}}`;
      const key = JSON.stringify({ prefix });
      if (this.options.schemas) return [{ key: withSchema(MESSAGE_KEY_SCHEMA, key), value: withSchema(MESSAGE_VALUE_SCHEMA, value) }];
      return [{ key, value }];
    }
    const source = this.source(event, origin, event.commitTime, event.schema ?? '', event.table ?? '');
    const envelope = (op: string, before: string, after: string) =>
      `{"before":${before},"after":${after},"source":${source},"transaction":null,"op":"${op}","ts_ms":${now.ms},"ts_us":${now.us},"ts_ns":${now.ns}}`;
    if (event.op === 'truncate') {
      const value = envelope('t', 'null', 'null');
      if (!this.options.schemas) return [{ key: null, value }];
      return [{ key: null, value: origin?.columns && origin.catalog ? withSchema(this.table(origin, event).valueSchema!, value) : withSchema('null', value) }];
    }
    if (!origin?.columns || !origin.catalog || (event.op === 'delete' ? !origin.oldTuple : !origin.newTuple)) return this.renderWithoutOrigin(event, envelope);

    const table = this.table(origin, event);
    if (this.options.schemas) return this.renderRecords(event, table, origin, envelope).map((record) => this.withSchemas(table, record));
    return this.renderRecords(event, table, origin, envelope);
  }

  /** Key and value as JsonConverter writes them with schemas.enable=true (tombstones stay null). */
  private withSchemas(table: Table, record: DebeziumRecord): DebeziumRecord {
    return {
      key: record.key === null ? null : withSchema(table.keySchema!, record.key),
      value: record.value === null ? null : withSchema(table.valueSchema!, record.value),
    };
  }

  private renderRecords(event: ChangeEvent, table: Table, origin: EventOrigin, envelope: (op: string, before: string, after: string) => string): DebeziumRecord[] {
    const { newTuple, oldTuple } = origin;
    const tombstone = (key: string | null): DebeziumRecord[] => (this.options.tombstonesOnDelete ? [{ key, value: null }] : []);
    if (event.op === 'delete') {
      const key = this.key(table, oldTuple!);
      return [{ key, value: envelope('d', this.row(table, oldTuple!), 'null') }, ...tombstone(key)];
    }
    // REPLICA IDENTITY FULL: the old row holds the TOASTed values the new one did not send.
    const complete = oldTuple && !origin.oldIsKey ? newTuple!.map((value, i) => (value === UNCHANGED ? oldTuple[i] : value)) : newTuple!;
    const after = this.row(table, complete);
    const key = this.key(table, complete);
    if (event.op === 'update' && oldTuple) {
      const oldKey = this.key(table, oldTuple);
      if (oldKey !== key) {
        return [
          { key: oldKey, value: envelope('d', this.row(table, oldTuple), 'null') },
          ...tombstone(oldKey),
          { key, value: envelope('c', 'null', after) },
        ];
      }
      if (!origin.oldIsKey) return [{ key, value: envelope('u', this.row(table, oldTuple), after) }];
    }
    return [{ key, value: envelope(OP[event.op], 'null', after) }];
  }

  /** Events without PostgreSQL's text (backfill reads): walrelay's values under Debezium's envelope. */
  private renderWithoutOrigin(event: ChangeEvent, envelope: (op: string, before: string, after: string) => string): DebeziumRecord[] {
    const key = event.key ? JSON.stringify(event.key) : null;
    // A row change's rows are spliced in as walrelay wrote them: parsing and serialising again would round big numbers in json columns.
    const before = event instanceof RowChange ? event.oldJson ?? 'null' : JSON.stringify(event.old ?? null);
    const after = event instanceof RowChange ? event.newJson ?? 'null' : JSON.stringify(event.new ?? null);
    const records: DebeziumRecord[] = [{ key, value: envelope(OP[event.op], before, after) }];
    if (event.op === 'delete' && this.options.tombstonesOnDelete) records.push({ key, value: null });
    // No column types here, so no schema: JsonConverter reads "schema": null as schemaless data.
    if (this.options.schemas) return records.map((record) => ({ key: record.key === null ? null : withSchema('null', record.key), value: record.value === null ? null : withSchema('null', record.value) }));
    return records;
  }

  /** What rendering a table's rows needs, built once per table shape (a Relation message's columns). */
  private table(origin: EventOrigin, event: ChangeEvent): Table {
    const columns = origin.columns!;
    let table = this.tables.get(columns);
    if (!table) {
      const catalog = origin.catalog!;
      table = {
        columns,
        converters: columns.map((column) => debeziumConverter(column.typeOid, column.typmod, catalog, this.options)),
        unavailable: columns.map((column) => unavailableValue(column.typeOid, catalog)),
        names: columns.map((column) => JSON.stringify(column.name) + ':'),
        included: [],
        keyIndexes: columns.flatMap((column, index) => (column.key ? [index] : [])),
        nullJson: columns.map(() => 'null'),
      };
      table.included = table.converters.flatMap((converter, index) => (converter ? [index] : []));
      if (this.options.schemas) {
        const schemas = columns.map((column) => columnSchema(column, catalog, this.options));
        table.included = table.included.filter((index) => schemas[index] !== undefined);
        table.nullJson = schemas.map((schema) => schema?.nullJson ?? 'null');
        const recordName = `${this.options.topicPrefix}.${event.schema ?? ''}.${event.table ?? ''}`;
        table.keySchema = keySchema(recordName, table.keyIndexes.map((index) => schemas[index]?.field ?? `{"type":"string","optional":true,"field":${JSON.stringify(columns[index].name)}}`));
        table.valueSchema = envelopeSchema(recordName, table.included.map((index) => schemas[index]!.field));
      }
      this.tables.set(columns, table);
    }
    return table;
  }

  private value(table: Table, tuple: Tuple, index: number): string {
    const text = tuple[index];
    if (text === null || text === undefined) return table.nullJson[index];
    if (text === UNCHANGED) return table.unavailable[index];
    return table.converters[index]!(text as string);
  }

  private row(table: Table, tuple: Tuple): string {
    let json = '{';
    for (const i of table.included) json += (json.length === 1 ? '' : ',') + table.names[i] + this.value(table, tuple, i);
    return json + '}';
  }

  private key(table: Table, tuple: Tuple): string | null {
    if (table.keyIndexes.length === 0) return null;
    return '{' + table.keyIndexes.map((i) => table.names[i] + this.value(table, tuple, i)).join(',') + '}';
  }

  private source(event: ChangeEvent, origin: EventOrigin | undefined, time: string | null, schema: string, table: string): string {
    const micros = (time === null ? null : timestampToEpochMicros(time)) ?? processingTime().usNumber;
    const lsn = parseLsn(event.lsn).toString();
    const previous = origin?.previousCommitEnd ? `\\"${parseLsn(origin.previousCommitEnd).toString()}\\"` : 'null';
    return `{"version":"walrelay","connector":"postgresql","name":${JSON.stringify(this.options.topicPrefix)},"ts_ms":${Math.floor(micros / 1000)},` +
      `"snapshot":"${event.op === 'read' ? 'true' : 'false'}","db":${JSON.stringify(origin?.database ?? this.database)},"sequence":"[${previous},\\"${lsn}\\"]",` +
      `"ts_us":${micros},"ts_ns":${micros}000,"schema":${JSON.stringify(schema)},"table":${JSON.stringify(table)},` +
      `"txId":${event.xid ?? 'null'},"lsn":${lsn},"xmin":null,"origin":null,"origin_lsn":null}`;
  }
}

/** Wall-clock time with microseconds (the envelope's processing time). */
function processingTime(): { ms: number; us: string; ns: string; usNumber: number } {
  const usNumber = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  return { ms: Math.floor(usNumber / 1000), us: String(usNumber), ns: `${usNumber}000`, usNumber };
}

const renderers = new Map<string, DebeziumRenderer>();

/** One renderer (and cache) per distinct options and database, shared by the sinks using them. */
export function debeziumRenderer(options: DebeziumOptions, database: string): DebeziumRenderer {
  const id = JSON.stringify([options, database]);
  let renderer = renderers.get(id);
  if (!renderer) {
    renderer = new DebeziumRenderer(options, database);
    renderers.set(id, renderer);
  }
  return renderer;
}
