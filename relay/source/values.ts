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
// - bool → true/false; json, jsonb → the JSON value as minimal JSON text,
//   number and string tokens byte for byte (minifyJson).
// - timestamptz → "2026-11-22T10:00:00.123456Z", timestamp → the same without
//   "Z", date → "2026-11-22", time → "10:00:00.123456", timetz →
//   "10:00:00.000000+02:00": always six fractional digits; years outside
//   0000–9999 in ECMAScript's expanded form, so that Date.parse reads them:
//   1 BC is year 0000, 44 BC is "-000043-…", 10000 AD is "+010000-…".
//   'infinity' and '-infinity' stay those strings.
// - bytea → base64.
// - arrays → nested JSON arrays of the element mapping (bounds dropped).
// - domains → their base type's mapping; everything else (text types, enums,
//   interval, inet, money, composites, ranges, unknown types) →
//   PostgreSQL's text form as a string. An array literal walrelay cannot
//   parse is passed through as its text too, rather than stopping the stream.
import type { TypeCatalog } from './type-catalog.js';
import { joinJsonArray, parseArrayLiteral } from './array-literal.js';
import { dateToIso, timeToIso, timestampToIso } from './datetime.js';
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
const toJson: Converter = (text) => JSON.parse(text); // the value; digits beyond a double's are exact only in the JSON fragment

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

/**
 * json and jsonb text → minimal JSON: whitespace between tokens is dropped
 * (a json column keeps its text as written, newlines included, and an event
 * must stay one line), while every string and number token is copied byte for
 * byte (parsing and re-serialising would round 12345678901234567890 and turn
 * 1.000 into 1). PostgreSQL validated the text on input.
 */
export function minifyJson(text: string): string {
  let out = '';
  let copied = 0; // text before this index is in `out` or dropped
  const length = text.length;
  let i = 0;
  while (i < length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: jump to its closing quote, one not escaped by an odd run of backslashes
      let end = text.indexOf('"', i + 1);
      for (;;) {
        if (end < 0) return out + text.slice(copied); // not reached for valid JSON
        let backslashes = 0;
        while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes++;
        if (backslashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      i = end + 1;
    } else if (c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d) {
      out += text.slice(copied, i);
      do i++; while (i < length && isJsonSpace(text.charCodeAt(i)));
      copied = i;
    } else {
      i++;
    }
  }
  return copied === 0 ? text : out + text.slice(copied);
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

const toTimestamp: Converter = (text) => timestampToIso(text, false);
const toTimestamptz: Converter = (text) => timestampToIso(text, true);
const toDate: Converter = dateToIso;
const toTime: Converter = (text) => timeToIso(text, false);
const toTimetz: Converter = (text) => timeToIso(text, true);

/** Built-in types with a mapping of their own, by OID (a user type may share a built-in's name, never its OID). */
const VALUE_BY_OID: Record<number, Converter> = {
  21: toNumber, 23: toNumber, 26: toNumber, // int2, int4, oid
  700: toFloat, 701: toFloat, // float4, float8
  20: identity, 1700: identity, // int8, numeric
  16: toBoolean,
  114: toJson, 3802: toJson, // json, jsonb
  17: byteaToBase64,
  1114: toTimestamp, 1184: toTimestamptz,
  1082: toDate, 1083: toTime, 1266: toTimetz,
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
  114: minifyJson, 3802: minifyJson, // PostgreSQL checked the JSON on input
  17: (text) => quote(byteaToBase64(text)),
  // Digits, '-', ':', '.', '+', 'T', 'Z', 'infinity': nothing to escape.
  1114: (text) => quote(timestampToIso(text, false)),
  1184: (text) => quote(timestampToIso(text, true)),
  1082: (text) => quote(dateToIso(text)),
  1083: (text) => quote(timeToIso(text, false)),
  1266: (text) => quote(timeToIso(text, true)),
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

/** A built-in type with a JSON mapping of its own (anything else is text, a domain or an array). */
export function hasJsonMapping(typeOid: number): boolean {
  return JSON_BY_OID[typeOid] !== undefined;
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
