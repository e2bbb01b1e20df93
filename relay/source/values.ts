// PostgreSQL text output → JSON values (contract section 3). The walsender
// session is opened with datestyle=ISO, timezone=UTC, extra_float_digits=3,
// intervalstyle=iso_8601 and bytea_output=hex (replication-stream.ts), which
// fixes the text forms handled here. Converters are built once per type OID
// and catalog version, not per value.
//
// Encodings (README "Value mapping"):
// - int2, int4, oid → number; float4, float8 → number, except NaN, Infinity
//   and -Infinity, which JSON cannot hold: the strings "NaN", "Infinity", "-Infinity".
// - int8, numeric → string with every digit as PostgreSQL printed it
//   (numeric NaN, Infinity, -Infinity included).
// - bool → true/false; json, jsonb → the JSON value.
// - timestamptz → "2026-11-22T10:00:00.123456Z", timestamp → the same without
//   "Z": every fractional digit PostgreSQL sent, none added. Years outside
//   0000–9999 use ECMAScript's expanded years, so that Date.parse reads them:
//   1 BC is year 0000, 44 BC is "-000043-…", 10000 AD is "+010000-…".
//   'infinity' and '-infinity' stay those strings.
// - bytea → base64.
// - arrays → nested JSON arrays of the element mapping (bounds dropped).
// - domains → their base type's mapping; everything else (text types, enums,
//   date, time, interval, inet, money, composites, ranges, unknown types) →
//   PostgreSQL's text form as a string. An array literal walrelay cannot
//   parse is passed through as its text too, rather than stopping the stream.
import type { TypeCatalog } from './type-catalog.js';
import { joinJsonArray, parseArrayLiteral } from './array-literal.js';
import { guarded } from './value-guard.js';
import { WalrelayError } from '../errors.js';

export type Converter = (text: string) => unknown;
/** Text output → a JSON fragment, without building a JavaScript value first (the hot path). */
export type JsonConverter = (text: string) => string;

const identity: Converter = (text) => text;
const toNumber: Converter = (text) => Number(text);
const toFloat: Converter = (text) => {
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
};
const toBoolean: Converter = (text) => text === 't';
const toJson: Converter = (text) => JSON.parse(text);

/** bytea in hex output ("\x0aff") → base64; the escape output format is decoded too, should a session ever use it. */
export function byteaToBase64(text: string): string {
  if (text.charCodeAt(0) === 0x5c && text.charCodeAt(1) === 0x78) return Buffer.from(text.slice(2), 'hex').toString('base64');
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c && text.charCodeAt(i + 1) === 0x5c) {
      bytes.push(0x5c);
      i++;
    } else if (c === 0x5c) {
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString('base64');
}

function isoYear(year: number): string {
  if (year >= 0 && year <= 9999) return String(year).padStart(4, '0');
  return (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(6, '0');
}

/**
 * "2026-11-22 10:00:00.123456+00" → "2026-11-22T10:00:00.123456Z" (withZone),
 * "2026-11-22 10:00:00.123456" → "2026-11-22T10:00:00.123456".
 */
export function timestampToIso(text: string, withZone: boolean): string {
  const length = text.length;
  const bc = text.charCodeAt(length - 1) === 0x43 && text.endsWith(' BC');
  // The common case: a four-digit AD year in a UTC session.
  if (!bc && length >= 19 && text.charCodeAt(4) === 0x2d && text.charCodeAt(10) === 0x20) {
    if (!withZone) return text.slice(0, 10) + 'T' + text.slice(11);
    if (text.charCodeAt(length - 3) === 0x2b && text.charCodeAt(length - 2) === 0x30 && text.charCodeAt(length - 1) === 0x30) {
      return text.slice(0, 10) + 'T' + text.slice(11, length - 3) + 'Z';
    }
  }
  const first = text.charCodeAt(0);
  if (first < 0x30 || first > 0x39) return text; // 'infinity', '-infinity'
  const dash = text.indexOf('-');
  const space = text.indexOf(' ');
  if (dash < 4 || space < dash) return text;
  const year = bc || dash !== 4 ? isoYear(bc ? 1 - Number(text.slice(0, dash)) : Number(text.slice(0, dash))) : text.slice(0, 4);
  const iso = year + text.slice(dash, space) + 'T' + text.slice(space + 1, bc ? length - 3 : length);
  if (!withZone) return iso;
  const timeStart = year.length + 7;
  for (let i = iso.length - 1; i > timeStart; i--) {
    const c = iso.charCodeAt(i);
    if (c !== 0x2b && c !== 0x2d) continue;
    const zone = iso.slice(i);
    if (zone === '+00' || zone === '-00' || zone === '+00:00' || zone === '+00:00:00') return iso.slice(0, i) + 'Z';
    return zone.length === 3 ? iso + ':00' : iso; // "+05" → "+05:00"; "+05:30" as is
  }
  return iso;
}

const toTimestamp: Converter = (text) => timestampToIso(text, false);
const toTimestamptz: Converter = (text) => timestampToIso(text, true);

/** Built-in types with a mapping of their own, by OID (a user type may share a built-in's name, never its OID). */
const VALUE_BY_OID: Record<number, Converter> = {
  21: toNumber, 23: toNumber, 26: toNumber, // int2, int4, oid
  700: toFloat, 701: toFloat, // float4, float8
  20: identity, 1700: identity, // int8, numeric
  16: toBoolean,
  114: toJson, 3802: toJson, // json, jsonb
  17: byteaToBase64,
  1114: toTimestamp, 1184: toTimestamptz,
};

const quote: JsonConverter = (text) => '"' + text + '"';
const copy: JsonConverter = (text) => text;
const escapeText: JsonConverter = (text) => JSON.stringify(text);

const JSON_BY_OID: Record<number, JsonConverter> = {
  21: copy, 23: copy, 26: copy,
  700: (text) => (text === 'NaN' || text === 'Infinity' || text === '-Infinity' ? quote(text) : text),
  701: (text) => (text === 'NaN' || text === 'Infinity' || text === '-Infinity' ? quote(text) : text),
  20: quote, 1700: quote, // digits, '-', '.', 'e', NaN, Infinity: nothing to escape
  16: (text) => (text === 't' ? 'true' : 'false'),
  114: copy, 3802: copy, // PostgreSQL checked the JSON on input
  17: (text) => quote(byteaToBase64(text)),
  1114: (text) => JSON.stringify(timestampToIso(text, false)),
  1184: (text) => JSON.stringify(timestampToIso(text, true)),
};

function isArrayText(text: string): boolean {
  const c = text.charCodeAt(0);
  return c === 0x7b || c === 0x5b; // '{' or '[' (explicit bounds)
}

function arrayConverter(element: Converter, delimiter: string): Converter {
  return (text) => {
    if (!isArrayText(text)) return text; // int2vector-like types print "1 2 3"
    try {
      return parseArrayLiteral(text, element, delimiter);
    } catch (error) {
      if (error instanceof WalrelayError && error.code === 'VALUE_MALFORMED') return text;
      throw error;
    }
  };
}

function arrayJsonConverter(element: JsonConverter, delimiter: string): JsonConverter {
  return (text) => {
    if (!isArrayText(text)) return escapeText(text);
    try {
      return joinJsonArray(parseArrayLiteral(text, element, delimiter));
    } catch (error) {
      if (error instanceof WalrelayError && error.code === 'VALUE_MALFORMED') return escapeText(text);
      throw error;
    }
  };
}

interface Built<T> {
  special: Record<number, T>;
  text: T;
  array: (element: T, delimiter: string) => T;
}

const VALUE: Built<Converter> = { special: VALUE_BY_OID, text: identity, array: arrayConverter };
const JSON_FRAGMENT: Built<JsonConverter> = { special: JSON_BY_OID, text: escapeText, array: arrayJsonConverter };

function build<T>(kind: Built<T>, typeOid: number, catalog: TypeCatalog, depth: number): T {
  const special = kind.special[typeOid];
  if (special) return guarded(typeOid, special as (text: string) => unknown) as T;
  const info = catalog.info(typeOid);
  if (!info || depth > 16) return kind.text;
  switch (info.kind) {
    case 'domain':
      return build(kind, info.base, catalog, depth + 1);
    case 'array':
      return kind.array(build(kind, info.element, catalog, depth + 1), info.delimiter);
    default:
      return kind.text;
  }
}

interface Cache {
  version: number;
  values: Map<number, Converter>;
  json: Map<number, JsonConverter>;
}

const caches = new WeakMap<TypeCatalog, Cache>();

function cacheOf(catalog: TypeCatalog): Cache {
  let cache = caches.get(catalog);
  if (!cache || cache.version !== catalog.version) {
    cache = { version: catalog.version, values: new Map(), json: new Map() };
    caches.set(catalog, cache);
  }
  return cache;
}

/** Text output of a value of type `typeOid` → its JSON value. */
export function converterFor(typeOid: number, catalog: TypeCatalog): Converter {
  const cache = cacheOf(catalog).values;
  let converter = cache.get(typeOid);
  if (!converter) {
    converter = build(VALUE, typeOid, catalog, 0);
    cache.set(typeOid, converter);
  }
  return converter;
}

/** Text output of a value of type `typeOid` → its JSON text (equal to JSON.stringify(converterFor(…)(text))). */
export function jsonConverterFor(typeOid: number, catalog: TypeCatalog): JsonConverter {
  const cache = cacheOf(catalog).json;
  let converter = cache.get(typeOid);
  if (!converter) {
    converter = build(JSON_FRAGMENT, typeOid, catalog, 0);
    cache.set(typeOid, converter);
  }
  return converter;
}
