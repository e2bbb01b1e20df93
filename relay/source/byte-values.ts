// PostgreSQL text output → JSON fragments, read from pgoutput's bytes and
// written as bytes (relay/route/json-bytes.ts): the same output, byte for
// byte, as values.ts' JSON converters followed by UTF-8 encoding
// (test/unit/byte-values.test.ts compares them). The common types are
// handled on the bytes (text escaped, digits copied, common timestamps
// rearranged); every other type and every unusual form goes through its
// values.ts converter on the decoded text.
//
// UTF-8 is checked wherever a byte of 0x80 or above appears, as the text
// path's strict decoder does: invalid UTF-8 is a malformed message.
import { isUtf8 } from 'node:buffer';
import type { TypeCatalog } from './type-catalog.js';
import type { JsonBytes } from '../route/json-bytes.js';
import { hasJsonMapping, jsonConverterFor, type JsonConverter } from './values.js';
import { DECODE_ERROR_HINT } from './pgoutput.js';
import { WalrelayError } from '../errors.js';

/** Writes the JSON of the value at `src[start, end)` (its text output) to `out`. */
export type ByteConverter = (src: Buffer, start: number, end: number, out: JsonBytes) => void;

/** Same settings as the message decoder's (pgoutput.ts): strict, and a leading U+FEFF is data. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function invalidUtf8(start: number): WalrelayError {
  return new WalrelayError('PGOUTPUT_MALFORMED', `pgoutput row message has invalid UTF-8 in value at offset ${start}`, { hint: DECODE_ERROR_HINT });
}

function checkUtf8(src: Buffer, start: number, end: number): void {
  if (!isUtf8(src.subarray(start, end))) throw invalidUtf8(start);
}

/** The value's text, decoded strictly; short ASCII built in JavaScript (a call into the decoder costs more). */
export function decodeValue(src: Buffer, start: number, end: number): string {
  if (end - start <= 6) {
    let value = '';
    let i = start;
    for (; i < end; i++) {
      const byte = src[i];
      if (byte >= 0x80) break;
      value += String.fromCharCode(byte);
    }
    if (i === end) return value;
  }
  try {
    return utf8.decode(src.subarray(start, end));
  } catch {
    throw invalidUtf8(start);
  }
}

/** Through the text converter: decode, convert, encode. */
function viaText(convert: JsonConverter): ByteConverter {
  return (src, start, end, out) => out.text(convert(decodeValue(src, start, end)));
}

/** JSON.stringify's escapes for the bytes below 0x20, '"' and '\'. */
const ESCAPES: Uint8Array[] = [];
for (let c = 0; c < 0x60; c++) {
  const escaped = JSON.stringify(String.fromCharCode(c));
  ESCAPES.push(escaped.length > 3 ? Buffer.from(escaped.slice(1, -1), 'latin1') : new Uint8Array(0));
}

/** Values up to this many bytes are copied byte by byte; longer ones in runs between escapes. */
const SHORT_VALUE = 64;

/** Text types: a JSON string (JSON.stringify of the text). */
export const escapeText: ByteConverter = (src, start, end, out) => {
  const length = end - start;
  if (length <= SHORT_VALUE) {
    out.ensure(6 * length + 2);
    const buffer = out.buffer;
    let pos = out.pos;
    let high = 0;
    buffer[pos++] = 0x22;
    for (let i = start; i < end; i++) {
      const c = src[i];
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
        high |= c;
        buffer[pos++] = c;
      } else {
        const sequence = ESCAPES[c];
        for (let e = 0; e < sequence.length; e++) buffer[pos++] = sequence[e];
      }
    }
    buffer[pos++] = 0x22;
    out.pos = pos;
    if (high >= 0x80) checkUtf8(src, start, end);
    return;
  }
  out.ensure(length + 2);
  let buffer = out.buffer;
  let pos = out.pos;
  buffer[pos++] = 0x22;
  let run = start;
  for (;;) {
    const at = nextEscape(src, run, end);
    if (at < 0) break;
    const sequence = ESCAPES[src[at]];
    const room = at - run + sequence.length + (end - at) + 1;
    if (pos + room > buffer.length) {
      out.pos = pos;
      out.ensure(room);
      buffer = out.buffer;
      pos = out.pos;
    }
    // Short runs and the escape itself copied here: a native copy costs more than tens of bytes by hand.
    if (at - run < SHORT_RUN) for (let i = run; i < at; i++) buffer[pos++] = src[i];
    else pos += src.copy(buffer, pos, run, at);
    for (let e = 0; e < sequence.length; e++) buffer[pos++] = sequence[e];
    run = at + 1;
  }
  out.pos = pos;
  out.ensure(end - run + 1);
  out.pos += src.copy(out.buffer, out.pos, run, end);
  out.buffer[out.pos++] = 0x22;
  checkUtf8(src, start, end); // native and fast: cheaper than tracking high bytes in the scan
};

/** Runs between escapes shorter than this are copied by a JavaScript loop. */
const SHORT_RUN = 48;

/** 1 for the bytes JSON escapes. */
const ESCAPED = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) ESCAPED[c] = 1;
ESCAPED[0x22] = 1;
ESCAPED[0x5c] = 1;

/** The next byte at or after `from` that JSON escapes, or -1; eight bytes per step (twice as fast as one). */
function nextEscape(src: Buffer, from: number, end: number): number {
  let i = from;
  for (; i + 8 <= end; i += 8) {
    if ((ESCAPED[src[i]] | ESCAPED[src[i + 1]] | ESCAPED[src[i + 2]] | ESCAPED[src[i + 3]] | ESCAPED[src[i + 4]] | ESCAPED[src[i + 5]] | ESCAPED[src[i + 6]] | ESCAPED[src[i + 7]]) !== 0) break;
  }
  for (; i < end; i++) if (ESCAPED[src[i]] !== 0) return i;
  return -1;
}

/**
 * Copies ASCII text with `open`/`close` around it (0: none); false, having
 * written nothing, when a byte is not ASCII (the caller takes the text path).
 */
function copyAscii(src: Buffer, start: number, end: number, out: JsonBytes, open: number, close: number): boolean {
  out.ensure(end - start + 2);
  const buffer = out.buffer;
  let pos = out.pos;
  if (open !== 0) buffer[pos++] = open;
  for (let i = start; i < end; i++) {
    const c = src[i];
    if (c >= 0x80) return false;
    buffer[pos++] = c;
  }
  if (close !== 0) buffer[pos++] = close;
  out.pos = pos;
  return true;
}

function copying(open: number, close: number, fallback: ByteConverter): ByteConverter {
  return (src, start, end, out) => {
    if (!copyAscii(src, start, end, out, open, close)) fallback(src, start, end, out);
  };
}

function floatConverter(fallback: ByteConverter): ByteConverter {
  return (src, start, end, out) => {
    const first = src[start];
    // NaN, Infinity, -Infinity become strings (values.ts).
    if (first === 0x4e || first === 0x49 || (first === 0x2d && src[start + 1] === 0x49) || !copyAscii(src, start, end, out, 0, 0)) fallback(src, start, end, out);
  };
}

function boolConverter(fallback: ByteConverter): ByteConverter {
  const TRUE = Buffer.from('true');
  const FALSE = Buffer.from('false');
  return (src, start, end, out) => {
    if (src[start] >= 0x80 || end - start > 1) fallback(src, start, end, out);
    else out.bytes(end - start === 1 && src[start] === 0x74 ? TRUE : FALSE);
  };
}

/**
 * "2026-11-22 10:00:00.123456+00" → "2026-11-22T10:00:00.123456Z" and the
 * same without a zone: the forms with six fractional digits and a four-digit
 * AD year, as values.ts' fast path; anything else goes to the text path.
 */
function timestampConverter(withZone: boolean, fallback: ByteConverter): ByteConverter {
  const length = withZone ? 29 : 26;
  return (src, start, end, out) => {
    if (end - start !== length || src[start + 4] !== 0x2d || src[start + 19] !== 0x2e ||
      (withZone ? src[start + 26] !== 0x2b || src[start + 27] !== 0x30 || src[start + 28] !== 0x30 : src[start + 25] === 0x43)) {
      fallback(src, start, end, out);
      return;
    }
    // Room first: a new chunk made inside copyAscii would move the event and leave `before` pointing into the old one.
    out.ensure(26 + 4);
    const before = out.pos;
    if (!copyAscii(src, start, start + 26, out, 0x22, 0)) {
      fallback(src, start, end, out);
      return;
    }
    out.buffer[before + 11] = 0x54; // 'T' for the space
    if (withZone) out.byte(0x5a); // 'Z'
    out.byte(0x22);
  };
}

/**
 * json and jsonb: values.ts' minifyJson over the bytes. Whitespace outside
 * strings is dropped, strings are copied as they are (a backslash takes the
 * byte after it along); PostgreSQL validated the JSON on input. UTF-8 is
 * checked as the text path's decoder does.
 */
const minifiedJson: ByteConverter = (src, start, end, out) => {
  out.ensure(end - start);
  const buffer = out.buffer;
  let pos = out.pos;
  let high = 0;
  let i = start;
  while (i < end) {
    const c = src[i++];
    if (c === 0x22) {
      buffer[pos++] = c;
      while (i < end) {
        const s = src[i++];
        buffer[pos++] = s;
        high |= s;
        if (s === 0x22) break;
        if (s === 0x5c && i < end) {
          const escaped = src[i++];
          high |= escaped;
          buffer[pos++] = escaped;
        }
      }
    } else if (c !== 0x20 && c !== 0x0a && c !== 0x09 && c !== 0x0d) {
      high |= c;
      buffer[pos++] = c;
    }
  }
  out.pos = pos;
  if (high >= 0x80) checkUtf8(src, start, end);
};

/**
 * bytea in hex output ("\x0aff") → its base64 as a JSON string, encoded
 * from the hex digits straight into the output: the same characters as
 * values.ts' byteaToBase64. The escape output format, an odd number of
 * digits or anything not a hex digit goes to the text path.
 */
function byteaConverter(fallback: ByteConverter): ByteConverter {
  return (src, start, end, out) => {
    if (end - start < 2 || src[start] !== 0x5c || src[start + 1] !== 0x78 || !hexToBase64(src, start + 2, end, out)) fallback(src, start, end, out);
  };
}

/** A hex digit's value; 0x100 for any other byte. */
const HEX_VALUE = new Uint16Array(256).fill(0x100);
for (let c = 0; c < 10; c++) HEX_VALUE[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX_VALUE[0x61 + c] = HEX_VALUE[0x41 + c] = 10 + c;
const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');

/** Writes the bytes the hex digits src[from, end) stand for as a base64 JSON string; false, having written nothing, if they are not hex digit pairs. */
function hexToBase64(src: Buffer, from: number, end: number, out: JsonBytes): boolean {
  const digits = end - from;
  if (digits % 2 !== 0) return false;
  const bytes = digits / 2;
  out.ensure(4 * Math.ceil(bytes / 3) + 2);
  const buffer = out.buffer;
  let pos = out.pos;
  buffer[pos++] = 0x22;
  let bad = 0;
  let i = from;
  // Three bytes (six digits) make four characters.
  for (const whole = from + 6 * Math.floor(bytes / 3); i < whole; i += 6) {
    const a = HEX_VALUE[src[i]], b = HEX_VALUE[src[i + 1]], c = HEX_VALUE[src[i + 2]];
    const d = HEX_VALUE[src[i + 3]], e = HEX_VALUE[src[i + 4]], f = HEX_VALUE[src[i + 5]];
    bad |= a | b | c | d | e | f;
    const n = (a << 20) | (b << 16) | (c << 12) | (d << 8) | (e << 4) | f;
    buffer[pos++] = BASE64[(n >> 18) & 63];
    buffer[pos++] = BASE64[(n >> 12) & 63];
    buffer[pos++] = BASE64[(n >> 6) & 63];
    buffer[pos++] = BASE64[n & 63];
  }
  if (end - i === 2) {
    const a = HEX_VALUE[src[i]], b = HEX_VALUE[src[i + 1]];
    bad |= a | b;
    const n = (a << 4) | b;
    buffer[pos++] = BASE64[(n >> 2) & 63];
    buffer[pos++] = BASE64[(n & 3) << 4];
    buffer[pos++] = 0x3d;
    buffer[pos++] = 0x3d;
  } else if (end - i === 4) {
    const a = HEX_VALUE[src[i]], b = HEX_VALUE[src[i + 1]], c = HEX_VALUE[src[i + 2]], d = HEX_VALUE[src[i + 3]];
    bad |= a | b | c | d;
    const n = (a << 12) | (b << 8) | (c << 4) | d;
    buffer[pos++] = BASE64[(n >> 10) & 63];
    buffer[pos++] = BASE64[(n >> 4) & 63];
    buffer[pos++] = BASE64[(n & 15) << 2];
    buffer[pos++] = 0x3d;
  }
  if ((bad & 0x100) !== 0) return false;
  buffer[pos++] = 0x22;
  out.pos = pos;
  return true;
}

const QUOTE = 0x22;

function special(typeOid: number, text: ByteConverter): ByteConverter | undefined {
  switch (typeOid) {
    case 21: case 23: case 26: return copying(0, 0, text); // int2, int4, oid
    case 20: case 1700: return copying(QUOTE, QUOTE, text); // int8, numeric
    case 700: case 701: return floatConverter(text);
    case 16: return boolConverter(text);
    case 114: case 3802: return minifiedJson; // json, jsonb
    case 17: return byteaConverter(text);
    case 1114: return timestampConverter(false, text);
    case 1184: return timestampConverter(true, text);
    default: return undefined;
  }
}

function build(typeOid: number, catalog: TypeCatalog, depth: number): ByteConverter {
  if (hasJsonMapping(typeOid)) {
    const text = viaText(jsonConverterFor(typeOid, catalog));
    return special(typeOid, text) ?? text;
  }
  const info = catalog.info(typeOid);
  if (!info || depth > 16) return escapeText;
  switch (info.kind) {
    case 'domain':
      return build(info.base, catalog, depth + 1);
    case 'array':
      return viaText(jsonConverterFor(typeOid, catalog));
    default:
      return escapeText;
  }
}

const caches = new WeakMap<TypeCatalog, { version: number; converters: Map<number, ByteConverter> }>();

/** The byte converter of type `typeOid` (equal to jsonConverterFor's, UTF-8 encoded). */
export function byteConverterFor(typeOid: number, catalog: TypeCatalog): ByteConverter {
  let cache = caches.get(catalog);
  if (!cache || cache.version !== catalog.version) {
    cache = { version: catalog.version, converters: new Map() };
    caches.set(catalog, cache);
  }
  let converter = cache.converters.get(typeOid);
  if (!converter) {
    converter = build(typeOid, catalog, 0);
    cache.converters.set(typeOid, converter);
  }
  return converter;
}
