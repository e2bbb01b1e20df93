// Kafka Connect schemas of the Debezium PostgreSQL connector's records, as
// Kafka Connect's JsonConverter (schemas.enable=true) writes them: the
// `"schema"` beside each key's and value's `"payload"`. Compared live with
// the connector 3.6.1 in a Connect 4.1 worker (test/kafka-connect/).
//
// JsonConverter's key order inside a schema: type, fields | items,
// optional, name, version, doc, parameters, default, and `field` last when
// the schema is a struct's field. Per column (PostgresValueConverter):
// - the Connect type and logical name by type, decimal.handling.mode and
//   time.precision.mode (see columnType below);
// - optional unless the column is NOT NULL;
// - a default where the connector parses the catalog's default: a literal
//   (through the column's value converter), a sequence
//   (nextval → 0), now()-like functions on temporal types (the epoch), a
//   function on a uuid (the nil UUID) or text (""); never on arrays,
//   structs, or types it has no parser for (money, bytea, inet…).
// JsonConverter writes a null of a field with a default as the default
// (replace.null.with.default: nullable columns too), and the connector
// gives a NOT NULL column without a value (a delete's old key-only row) its
// type's zero: ColumnSchema.nullJson is that JSON.
import type { ColumnInfo } from '../../relay/route/event.js';
import type { TypeCatalog } from '../../relay/source/type-catalog.js';
import { debeziumConverter } from './values.js';
import type { DebeziumOptions } from './options.js';

/** A Connect schema without its optional/default/field parts. */
interface ConnectType {
  type: string;
  /** `"fields":[…]` or `"items":{…}`, when the type has them. */
  inner?: string;
  name?: string;
  doc?: string;
  parameters?: Record<string, string>;
  /** JSON of the type's zero (the connector's fallback for a NOT NULL column without a value). */
  zero: string;
}

const quote = (text: string): string => JSON.stringify(text);

/** The JSON text of a schema, in JsonConverter's key order. */
function render(type: ConnectType, optional: boolean, defaultJson?: string, field?: string): string {
  let json = `{"type":"${type.type}"`;
  if (type.inner) json += ',' + type.inner;
  json += `,"optional":${optional}`;
  if (type.name) json += `,"name":${quote(type.name)},"version":1`;
  if (type.doc) json += `,"doc":${quote(type.doc)}`;
  if (type.parameters) json += `,"parameters":{${Object.entries(type.parameters).map(([key, value]) => `${quote(key)}:${quote(value)}`).join(',')}}`;
  if (defaultJson !== undefined) json += `,"default":${defaultJson}`;
  if (field !== undefined) json += `,"field":${quote(field)}`;
  return json + '}';
}

const plain = (type: string, zero: string): ConnectType => ({ type, zero });
const named = (type: string, name: string, zero: string, parameters?: Record<string, string>): ConnectType => ({ type, name, zero, parameters });
const STRING = plain('string', '""');
const ZERO_BYTES = '"AA=="'; // BigInteger.ZERO.toByteArray()

const VARIABLE_SCALE_DECIMAL: ConnectType = {
  type: 'struct',
  inner: '"fields":[{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}]',
  name: 'io.debezium.data.VariableScaleDecimal', doc: 'Variable scaled decimal', zero: `{"scale":0,"value":${ZERO_BYTES}}`,
};
const POINT: ConnectType = {
  type: 'struct',
  inner: '"fields":[{"type":"double","optional":false,"field":"x"},{"type":"double","optional":false,"field":"y"},{"type":"bytes","optional":true,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}]',
  name: 'io.debezium.data.geometry.Point', doc: 'Geometry (POINT)', zero: '{"x":0.0,"y":0.0,"wkb":"AQEAAAAAAAAAAAAAAAAAAAAAAAAA","srid":null}',
};

/** Types carried as plain strings (text, network addresses, ranges). */
const PLAIN_STRINGS = new Set([25, 1043, 1042, 18, 19, 869, 650, 829, 774, 3904, 3906, 3908, 3910, 3912, 3926]);
const NAMED_STRINGS: Record<number, string> = { 2950: 'io.debezium.data.Uuid', 114: 'io.debezium.data.Json', 3802: 'io.debezium.data.Json', 142: 'io.debezium.data.Xml', 3614: 'io.debezium.data.Tsvector' };

function numericType(typmod: number, mode: DebeziumOptions['decimalHandlingMode']): ConnectType {
  const scale = (typmod - 4) & 0xffff;
  // The string of BigDecimal.ZERO at the column's scale ("0.00"; "0" without one).
  if (mode === 'string') return plain('string', typmod < 4 || scale === 0 ? '"0"' : `"0.${'0'.repeat(scale)}"`);
  if (mode === 'double') return plain('double', '0.0');
  if (typmod < 4) return VARIABLE_SCALE_DECIMAL;
  const precision = ((typmod - 4) >> 16) & 0xffff;
  return named('bytes', 'org.apache.kafka.connect.data.Decimal', ZERO_BYTES, { scale: String(scale), 'connect.decimal.precision': String(precision) });
}

function builtinType(typeOid: number, typmod: number, options: DebeziumOptions): ConnectType | undefined {
  const time = options.timePrecisionMode;
  const precision = typmod < 0 ? 6 : typmod;
  switch (typeOid) {
    case 21: return plain('int16', '0');
    case 23: return plain('int32', '0');
    case 20: case 26: return plain('int64', '0');
    case 700: return plain('float', '0.0');
    case 701: return plain('double', '0.0');
    case 16: return plain('boolean', 'false');
    case 17: return plain('bytes', '""');
    case 1700: return numericType(typmod, options.decimalHandlingMode);
    case 790:
      if (options.decimalHandlingMode !== 'precise') return numericType(4 + 2, options.decimalHandlingMode);
      return named('bytes', 'org.apache.kafka.connect.data.Decimal', ZERO_BYTES, { scale: '2' });
    case 1082: return named('int32', time === 'connect' ? 'org.apache.kafka.connect.data.Date' : 'io.debezium.time.Date', '0');
    case 1083:
      if (time === 'connect') return named('int32', 'org.apache.kafka.connect.data.Time', '0');
      if (time === 'adaptive' && precision <= 3) return named('int32', 'io.debezium.time.Time', '0');
      return named('int64', 'io.debezium.time.MicroTime', '0');
    case 1114:
      if (time === 'connect') return named('int64', 'org.apache.kafka.connect.data.Timestamp', '0');
      return named('int64', precision <= 3 ? 'io.debezium.time.Timestamp' : 'io.debezium.time.MicroTimestamp', '0');
    case 1184: return named('string', 'io.debezium.time.ZonedTimestamp', '"1970-01-01T00:00:00Z"');
    case 1266: return named('string', 'io.debezium.time.ZonedTime', '"00:00:00Z"');
    case 1186: return named('int64', 'io.debezium.time.MicroDuration', '0');
    case 600: return POINT;
    case 1560: case 1562:
      if (typeOid === 1560 && typmod === 1) return plain('boolean', 'false');
      return named('bytes', 'io.debezium.data.Bits', '""', { length: String(typmod < 0 ? 2147483647 : typmod) });
  }
  if (PLAIN_STRINGS.has(typeOid)) return STRING;
  const name = NAMED_STRINGS[typeOid];
  return name ? named('string', name, '""') : undefined;
}

/** The Connect type of a column; undefined where the connector leaves the column out (values.ts agrees). */
function columnType(typeOid: number, typmod: number, catalog: TypeCatalog, options: DebeziumOptions, depth = 0): ConnectType | undefined {
  const builtin = builtinType(typeOid, typmod, options);
  if (builtin) return builtin;
  const info = catalog.info(typeOid);
  if (!info || depth > 16) return undefined;
  if (info.kind === 'enum') return named('string', 'io.debezium.data.Enum', '""', { allowed: (info.labels ?? []).join(',') });
  if (info.kind === 'domain') return columnType(info.base, typmod >= 0 ? typmod : info.baseTypmod ?? -1, catalog, options, depth + 1);
  if (info.kind === 'array') {
    const element = columnType(info.element, typmod, catalog, options, depth + 1);
    if (!element) return undefined;
    // The connector declares enum elements required, every other element optional.
    const elementOptional = catalog.info(info.element)?.kind !== 'enum';
    return { type: 'array', inner: `"items":${render(element, elementOptional)}`, zero: '[]' };
  }
  if (info.name === 'hstore') return named('string', 'io.debezium.data.Json', '""');
  if (info.name === 'ltree') return named('string', 'io.debezium.data.Ltree', '""');
  if (info.name === 'citext') return STRING;
  return undefined;
}

/** The epoch as PostgreSQL prints each temporal type: what a now()-like default becomes. */
const EPOCH_TEXT: Record<number, string> = { 1082: '1970-01-01', 1083: '00:00:00', 1114: '1970-01-01 00:00:00', 1184: '1970-01-01 00:00:00+00', 1266: '00:00:00+00' };
const ZERO_UUID = '"00000000-0000-0000-0000-000000000000"';
/** Types whose defaults the connector parses (others, e.g. money, bytea, inet, get none); enums too. */
const DEFAULT_TYPES = new Set([16, 20, 21, 23, 25, 114, 142, 700, 701, 1042, 1043, 1082, 1083, 1114, 1184, 1186, 1560, 1562, 1700, 2950, 3802]);
const TEXT_TYPES = new Set([25, 1042, 1043]);
const INTEGERS = new Set([20, 21, 23, 26]);
const NOW_LIKE = /^(now\(\)|CURRENT_(TIMESTAMP|DATE|TIME)|LOCAL(TIMESTAMP|TIME)|(statement|transaction|clock)_timestamp\(\))/i;

/** The base type of a domain (defaults of domain columns parse by it). */
function baseOid(typeOid: number, catalog: TypeCatalog): number {
  let oid = typeOid;
  for (let depth = 0; depth < 16; depth++) {
    const info = catalog.info(oid);
    if (info?.kind !== 'domain') return oid;
    oid = info.base;
  }
  return oid;
}

/**
 * A column default as the connector parses it, as JSON in the column's
 * value form; undefined when it gives none (functions other than sequences
 * and now() on temporal types, arrays, expressions).
 */
function defaultJson(column: ColumnInfo, type: ConnectType, catalog: TypeCatalog, options: DebeziumOptions): string | undefined {
  const expression = column.defaultExpression?.trim();
  if (!expression || type.type === 'array' || type.type === 'struct') return undefined;
  const oid = baseOid(column.typeOid, catalog);
  if (!DEFAULT_TYPES.has(oid) && catalog.info(oid)?.kind !== 'enum') return undefined;
  const convert = debeziumConverter(column.typeOid, column.typmod, catalog, options);
  if (!convert) return undefined;
  if (/^nextval\(/i.test(expression)) return INTEGERS.has(oid) ? type.zero : undefined;
  if (NOW_LIKE.test(expression)) return EPOCH_TEXT[oid] === undefined ? undefined : convert(EPOCH_TEXT[oid]);
  // Other functions: the nil UUID for a uuid (gen_random_uuid()…), "" for text (md5(…)), none for the rest.
  if (/^[\w.]+\(/.test(expression)) return oid === 2950 ? ZERO_UUID : TEXT_TYPES.has(oid) ? '""' : undefined;
  let text: string | undefined;
  // The connector reads a quoted literal up to its first quote: 'it''s' is "it".
  const literal = /^'([^']*)'/.exec(expression);
  if (literal) text = literal[1];
  else if (/^\(?-?\d+(\.\d+)?([eE][-+]?\d+)?\)?(::[\w\s]+)?$/.test(expression)) text = expression.replace(/::[\w\s]+$/, '').replace(/^\((.*)\)$/, '$1');
  else if (/^(true|false)$/i.test(expression)) text = expression.toLowerCase() === 'true' ? 't' : 'f';
  if (text === undefined) return undefined;
  try {
    const json = convert(text);
    return json === 'null' ? undefined : json;
  } catch {
    return undefined;
  }
}

/** One column's field schema and what a null in it is written as. */
export interface ColumnSchema {
  /** `{"type":…,"field":"name"}` */
  field: string;
  /** JSON written for a null: the column's default, else a NOT NULL column's zero, else 'null'. */
  nullJson: string;
}

/** The field schema of a column, undefined where the connector leaves it out. */
export function columnSchema(column: ColumnInfo, catalog: TypeCatalog, options: DebeziumOptions): ColumnSchema | undefined {
  const type = columnType(column.typeOid, column.typmod, catalog, options);
  if (!type) return undefined;
  const required = column.notNull === true || (column.notNull === undefined && column.key);
  const fallback = defaultJson(column, type, catalog, options);
  return { field: render(type, !required, fallback, column.name), nullJson: fallback ?? (required ? type.zero : 'null') };
}

const SOURCE = '{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},' +
  '{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},' +
  '{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},' +
  '{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"int64","optional":true,"field":"ts_us"},' +
  '{"type":"int64","optional":true,"field":"ts_ns"},{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},' +
  '{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"},' +
  '{"type":"string","optional":true,"field":"origin"},{"type":"int64","optional":true,"field":"origin_lsn"}],' +
  '"optional":false,"name":"io.debezium.connector.postgresql.Source","version":1,"field":"source"}';
const TRANSACTION = '{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},' +
  '{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}';

/** The key schema of a table: its key columns, required. */
export function keySchema(recordName: string, keyFields: string[]): string {
  return `{"type":"struct","fields":[${keyFields.join(',')}],"optional":false,"name":${quote(recordName + '.Key')}}`;
}

/** The value schema of a table: Debezium's Envelope (version 2) around its row struct. */
export function envelopeSchema(recordName: string, fields: string[]): string {
  const row = (field: string) => `{"type":"struct","fields":[${fields.join(',')}],"optional":true,"name":${quote(recordName + '.Value')},"field":"${field}"}`;
  return `{"type":"struct","fields":[${row('before')},${row('after')},${SOURCE},${TRANSACTION},` +
    '{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"int64","optional":true,"field":"ts_us"},' +
    `{"type":"int64","optional":true,"field":"ts_ns"}],"optional":false,"name":${quote(recordName + '.Envelope')},"version":2}`;
}

/** Logical-decoding messages' key and value schemas (topic <prefix>.message). */
export const MESSAGE_KEY_SCHEMA = '{"type":"struct","fields":[{"type":"string","optional":true,"field":"prefix"}],"optional":false,"name":"io.debezium.connector.postgresql.MessageKey","version":1}';
export const MESSAGE_VALUE_SCHEMA = '{"type":"struct","fields":[{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},' +
  SOURCE + ',' + TRANSACTION + ',' +
  '{"type":"struct","fields":[{"type":"string","optional":true,"field":"prefix"},{"type":"bytes","optional":true,"field":"content"}],"optional":false,"name":"io.debezium.connector.postgresql.Message","version":1,"field":"message"}],' +
  '"optional":false,"name":"io.debezium.connector.postgresql.MessageValue","version":1}';

/** `{"schema":…,"payload":…}` */
export function withSchema(schema: string, payload: string): string {
  return `{"schema":${schema},"payload":${payload}}`;
}
