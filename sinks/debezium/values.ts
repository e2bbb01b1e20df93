// Column values as Debezium's PostgreSQL connector sends them (JSON
// converter, schemas off), from PostgreSQL's text output and the column's
// type and type modifier (pgoutput's Relation message):
// - int2/int4/int8/oid → JSON numbers, every digit kept; float4/float8 → Java's
//   Float/Double.toString; bool → true/false.
// - numeric and money by decimal.handling.mode: precise → base64 of the
//   unscaled two's-complement bytes (numeric without a scale: {scale, value},
//   trailing zeros stripped); string → the digits PostgreSQL printed; double → a number.
// - date → epoch days; time → µs (ms under adaptive for time(0..3) and under
//   connect); timestamp → epoch µs (ms likewise); timestamptz → ISO UTC with
//   six fractional digits; timetz → UTC "HH:MM:SS[.f]Z"; interval → µs.
// - json, jsonb, xml, text types, uuid, enums, inet/cidr/macaddr, ranges,
//   tsvector → a JSON string; hstore → its JSON object's text as a string;
//   bytea → base64; point → {x, y, wkb, srid}; bit(1) → boolean, bit(n) →
//   bytes; arrays → arrays. Types Debezium does not know are left out.
import type { TypeCatalog } from '../../relay/source/type-catalog.js';
import { joinJsonArray, parseArrayLiteral } from '../../relay/source/array-literal.js';
import { byteaToBase64 } from '../../relay/source/values.js';
import { javaDouble, javaFloat, parseDecimal, plainString, rescale, stripTrailingZeros, unscaledBase64 } from './java-numbers.js';
import { dateToEpochDays, epochMicrosToZoned, intervalToMicros, timeToMicros, timestampToEpochMicros, timetzToUtc } from './temporal.js';
import type { DebeziumOptions } from './options.js';

/** PostgreSQL text → JSON text of Debezium's value. */
export type DebeziumConverter = (text: string) => string;

const quote = (text: string): string => JSON.stringify(text);
const orNull = (value: number | null, render: (value: number) => string = String): string => (value === null ? 'null' : render(value));

/** numeric(p,s) → s; unconstrained numeric → undefined. */
function numericScale(typmod: number): number | undefined {
  return typmod < 4 ? undefined : (typmod - 4) & 0xffff;
}

/** time(p)/timestamp(p) → p; no modifier → 6. */
function fractionPrecision(typmod: number): number {
  return typmod < 0 ? 6 : typmod;
}

/** NaN and infinities in string mode: the names of Debezium's SpecialValueDecimal. */
const SPECIAL_NUMERIC_NAMES: Record<string, string> = { NaN: 'NAN', Infinity: 'POSITIVE_INFINITY', '-Infinity': 'NEGATIVE_INFINITY' };

/**
 * PostgreSQL's infinite timestamps and dates as Debezium 3.6.1 sends them
 * (constants of the JDBC driver carried through its conversions).
 */
const INFINITE_TIMESTAMP_MICROS: Record<string, bigint> = { infinity: 9223372036825200000n, '-infinity': -9223372036832400000n };
const INFINITE_DATE: Record<string, string> = { infinity: '-2147472692', '-infinity': '-2147472691' };

function numeric(typmod: number, mode: DebeziumOptions['decimalHandlingMode']): DebeziumConverter {
  const scale = numericScale(typmod);
  return (text) => {
    const decimal = parseDecimal(text);
    if (mode === 'double') return decimal === null ? quote(text) : javaDouble(Number(text));
    if (decimal === null) return mode === 'string' ? quote(SPECIAL_NUMERIC_NAMES[text] ?? text) : 'null'; // no BigDecimal holds NaN or ±Infinity
    if (mode === 'string') return quote(plainString(scale === undefined ? decimal : rescale(decimal, scale)));
    if (scale !== undefined) return quote(unscaledBase64(rescale(decimal, scale).unscaled));
    const stripped = stripTrailingZeros(decimal);
    return `{"scale":${stripped.scale},"value":${quote(unscaledBase64(stripped.unscaled))}}`;
  };
}

/** money prints with a currency symbol and group separators ("-$1,234.56"); Debezium reads it as a decimal of scale 2. */
function money(mode: DebeziumOptions['decimalHandlingMode']): DebeziumConverter {
  return (text) => {
    const digits = text.replace(/[^0-9.]/g, '');
    const negative = text.includes('-') || text.startsWith('(');
    const decimal = parseDecimal((negative ? '-' : '') + digits);
    if (decimal === null) return 'null';
    const scaled = rescale(decimal, 2);
    if (mode === 'double') return javaDouble(Number(plainString(scaled)));
    if (mode === 'string') return quote(plainString(scaled));
    return quote(unscaledBase64(scaled.unscaled));
  };
}

function time(typmod: number, mode: DebeziumOptions['timePrecisionMode']): DebeziumConverter {
  const millis = mode === 'connect' || (mode === 'adaptive' && fractionPrecision(typmod) <= 3);
  return (text) => orNull(timeToMicros(text), (micros) => String(millis ? Math.floor(micros / 1000) : micros));
}

function timestamp(typmod: number, mode: DebeziumOptions['timePrecisionMode']): DebeziumConverter {
  const millis = mode === 'connect' || fractionPrecision(typmod) <= 3;
  return (text) => {
    const infinite = INFINITE_TIMESTAMP_MICROS[text];
    if (infinite !== undefined) return String(millis ? infinite / 1000n : infinite);
    return orNull(timestampToEpochMicros(text), (micros) => String(millis ? Math.floor(micros / 1000) : micros));
  };
}

/** WKB of a point (little endian, type 1), as Debezium's Point struct carries it. */
function point(text: string): string {
  const match = /^\(([^,]+),([^)]+)\)$/.exec(text);
  if (!match) return quote(text);
  const x = Number(match[1]);
  const y = Number(match[2]);
  const wkb = Buffer.alloc(21);
  wkb.writeUInt8(1, 0);
  wkb.writeUInt32LE(1, 1);
  wkb.writeDoubleLE(x, 5);
  wkb.writeDoubleLE(y, 13);
  return `{"x":${javaDouble(x)},"y":${javaDouble(y)},"wkb":"${wkb.toString('base64')}","srid":null}`;
}

/** Java's String.hashCode (UTF-16 code units, 32-bit overflow). */
function javaStringHash(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  return hash;
}

/**
 * The order a java.util.HashMap filled with these keys (in this order)
 * iterates them: by bucket (spread hash & (capacity - 1); capacity 16,
 * doubled whenever more than 3/4 full), insertion order within a bucket.
 * Debezium's hstore map is one, and Jackson writes it in that order.
 */
export function javaHashMapOrder(keys: readonly string[]): string[] {
  let capacity = 16;
  while (keys.length > capacity * 0.75) capacity *= 2;
  const buckets = new Map<number, string[]>();
  for (const key of keys) {
    const hash = javaStringHash(key);
    const bucket = (hash ^ (hash >>> 16)) & (capacity - 1);
    const entries = buckets.get(bucket);
    if (entries) entries.push(key);
    else buckets.set(bucket, [key]);
  }
  return [...buckets.keys()].sort((a, b) => a - b).flatMap((bucket) => buckets.get(bucket)!);
}

/** hstore text ("a"=>"1", "b"=>NULL) → the JSON object's text, as a string (hstore.handling.mode=json). */
function hstore(text: string): string {
  const map = new Map<string, string | null>();
  const pair = /"((?:[^"\\]|\\.)*)"\s*=>\s*(?:NULL|"((?:[^"\\]|\\.)*)")/g;
  const unquote = (value: string) => value.replace(/\\(.)/g, '$1');
  for (const match of text.matchAll(pair)) map.set(unquote(match[1]), match[2] === undefined ? null : unquote(match[2]));
  const ordered = javaHashMapOrder([...map.keys()]).map((key) => `${JSON.stringify(key)}:${JSON.stringify(map.get(key))}`);
  return quote(`{${ordered.join(',')}}`);
}

/**
 * bit(1) → boolean; longer bit strings → the number they spell as
 * little-endian bytes, at least one byte per eight bits (as Debezium's
 * convertBits pads them).
 */
function bits(typmod: number): DebeziumConverter {
  if (typmod === 1) return (text) => (text === '1' ? 'true' : 'false');
  return (text) => {
    let value = text === '' ? 0n : BigInt('0b' + text);
    const bytes: number[] = [];
    while (value > 0n) {
      bytes.push(Number(value & 0xffn));
      value >>= 8n;
    }
    while (bytes.length < Math.max(1, Math.ceil(text.length / 8))) bytes.push(0);
    return quote(Buffer.from(bytes).toString('base64'));
  };
}

/**
 * Built-in types Debezium carries as the text's string. Other types it does
 * not know (geometric types but point, composites, multiranges…) it leaves
 * out of the row altogether (include.unknown.datatypes=false).
 */
const TEXT_TYPES = new Set([
  25, 1043, 1042, 18, 2950, 114, 3802, 142, 869, 650, 829, 774, 3614,
  3904, 3906, 3908, 3910, 3912, 3926, // ranges
]);
const TEXT_EXTENSION_TYPES = new Set(['citext', 'ltree']);

const float4: DebeziumConverter = (text) => javaFloat(Number(text));
const float8: DebeziumConverter = (text) => javaDouble(Number(text));
const copy: DebeziumConverter = (text) => text;

function builtin(typeOid: number, typmod: number, options: DebeziumOptions): DebeziumConverter | undefined {
  switch (typeOid) {
    case 21: case 23: case 20: case 26: return copy;
    case 700: return float4;
    case 701: return float8;
    case 1700: return numeric(typmod, options.decimalHandlingMode);
    case 790: return money(options.decimalHandlingMode);
    case 16: return (text) => (text === 't' ? 'true' : 'false');
    case 17: return (text) => quote(byteaToBase64(text));
    case 1082: return (text) => INFINITE_DATE[text] ?? orNull(dateToEpochDays(text));
    case 1083: return time(typmod, options.timePrecisionMode);
    case 1266: return (text) => { const utc = timetzToUtc(text); return utc === null ? 'null' : quote(utc); };
    case 1114: return timestamp(typmod, options.timePrecisionMode);
    case 1184: return (text) => (text === 'infinity' || text === '-infinity' ? quote(text) : orNull(timestampToEpochMicros(text), (micros) => quote(epochMicrosToZoned(micros))));
    case 1186: return (text) => orNull(intervalToMicros(text));
    case 600: return point;
    case 1560: case 1562: return bits(typmod);
    case 19: return () => 'null'; // name: Debezium's converter yields no value for it
    default: return TEXT_TYPES.has(typeOid) ? quote : undefined;
  }
}

/** The converter of a column of type `typeOid` with modifier `typmod`; undefined when Debezium leaves such columns out. */
export function debeziumConverter(typeOid: number, typmod: number, catalog: TypeCatalog, options: DebeziumOptions, depth = 0): DebeziumConverter | undefined {
  const special = builtin(typeOid, typmod, options);
  if (special) return special;
  const info = catalog.info(typeOid);
  if (!info || depth > 16) return undefined;
  if (info.kind === 'enum') return quote;
  // A domain's own modifier (numeric(8,2)) applies: the column's is -1.
  if (info.kind === 'domain') return debeziumConverter(info.base, typmod >= 0 ? typmod : info.baseTypmod ?? -1, catalog, options, depth + 1);
  if (info.kind === 'array') {
    const element = debeziumConverter(info.element, typmod, catalog, options, depth + 1);
    if (!element) return undefined;
    return (text) => {
      try {
        return joinJsonArray(parseArrayLiteral(text, element, info.delimiter));
      } catch {
        return quote(text);
      }
    };
  }
  if (info.name === 'hstore') return hstore;
  return TEXT_EXTENSION_TYPES.has(info.name) ? quote : undefined;
}

const UNAVAILABLE = '__debezium_unavailable_value';

/** What Debezium writes for an unchanged TOASTed value that PostgreSQL did not send: the placeholder as text, bytes or a one-element array. */
export function unavailableValue(typeOid: number, catalog: TypeCatalog): string {
  if (typeOid === 17) return quote(Buffer.from(UNAVAILABLE).toString('base64'));
  return catalog.info(typeOid)?.kind === 'array' ? `[${quote(UNAVAILABLE)}]` : quote(UNAVAILABLE);
}
