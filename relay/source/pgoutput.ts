// A pgoutput message decoder (protocol versions 1–4 with streaming and
// two-phase off, which is how walrelay subscribes). Reads the payload of one
// XLogData message; every read is bounds-checked and every string must be
// valid UTF-8, so that a malformed, truncated or corrupted message raises
// PGOUTPUT_MALFORMED naming the offset, never a RangeError from deep inside
// Buffer nor a silently replaced character (test/pgoutput-fuzz.test.ts).
import type { Lsn } from '../lsn.js';
import { WalrelayError } from '../errors.js';

/** A TOASTed value PostgreSQL did not send because it did not change ('u'). */
export const UNCHANGED: unique symbol = Symbol('unchanged');

export type TupleValue = string | null | typeof UNCHANGED;
export type Tuple = TupleValue[];

export interface RelationColumn {
  /** 1 = part of the replica identity (key). */
  flags: number;
  name: string;
  typeOid: number;
  typeMod: number;
}

/**
 * A tuple as positions in its message (a row message's fast path,
 * relay/route/event-bytes.ts): column i's text is buffer[spans[2i],
 * spans[2i+1]); a start of NULL_SPAN is NULL, UNCHANGED_SPAN an unchanged
 * TOASTed value. Nothing is decoded or copied.
 */
export type Spans = number[];
export const NULL_SPAN = -1;
export const UNCHANGED_SPAN = -2;

/** Insert, update or delete with its tuples as spans of `buffer` (the message). */
export interface RawRowMessage {
  raw: true;
  tag: 'insert' | 'update' | 'delete';
  relationId: number;
  buffer: Buffer;
  keySpans: Spans | null;
  oldSpans: Spans | null;
  newSpans: Spans | null;
}

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; commitTime: bigint; xid: number }
  | { tag: 'commit'; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint }
  | { tag: 'origin'; originLsn: Lsn; name: string }
  | { tag: 'relation'; relationId: number; schema: string; name: string; replicaIdentity: 'd' | 'n' | 'f' | 'i'; columns: RelationColumn[] }
  | { tag: 'type'; typeOid: number; schema: string; name: string }
  | { tag: 'insert'; relationId: number; newTuple: Tuple }
  | { tag: 'update'; relationId: number; keyTuple: Tuple | null; oldTuple: Tuple | null; newTuple: Tuple }
  | { tag: 'delete'; relationId: number; keyTuple: Tuple | null; oldTuple: Tuple | null }
  | { tag: 'truncate'; cascade: boolean; restartIdentity: boolean; relationIds: number[] }
  | { tag: 'message'; transactional: boolean; lsn: Lsn; prefix: string; content: Buffer };

const STREAMING_TAGS = new Set(['S', 'E', 'c', 'A']);
const TWO_PHASE_TAGS = new Set(['b', 'P', 'K', 'r', 'p']);
/**
 * A message that cannot be decoded stops the relay (a retry would read the
 * same bytes again): nothing past the last delivered transaction is confirmed.
 */
export const DECODE_ERROR_HINT = 'walrelay stopped and confirmed nothing past the last delivered transaction; ' +
  'start it again to resume from there, and if the same error returns, report it with this message';

function malformed(message: string): WalrelayError {
  return new WalrelayError('PGOUTPUT_MALFORMED', message, { hint: DECODE_ERROR_HINT });
}

/**
 * Strict: PostgreSQL sends text in the connection's encoding (UTF-8), so invalid UTF-8 means corruption, never data.
 * A leading U+FEFF (byte order mark) is part of the value, not something to strip.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** 8.64e15 ms (Date's limit) less the 30 years between 1970 and 2000, in µs. */
const MAX_COMMIT_TIME = 8_640_000_000_000_000_000n - 946_684_800_000_000n;

function hex(byte: number): string {
  return '0x' + byte.toString(16).padStart(2, '0');
}

class Reader {
  offset = 0;

  constructor(private readonly buffer: Buffer, private readonly tag: string) {}

  need(bytes: number, what: string): void {
    if (this.offset + bytes > this.buffer.length) {
      throw malformed(`pgoutput '${this.tag}' message truncated: needed ${bytes} byte(s) for ${what} at offset ${this.offset}, message has ${this.buffer.length}`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buffer[this.offset++];
  }

  /** Column counts are int16 on the wire but never negative: read unsigned so a corrupt count cannot make a negative array length. */
  u16(what: string): number {
    this.need(2, what);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  i32(what: string): number {
    this.need(4, what);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  i64(what: string): bigint {
    this.need(8, what);
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  /**
   * A commit time: microseconds since 2000-01-01. Events carry it as an ISO
   * string, so it must lie within what a JavaScript Date holds (±275,000
   * years), as every real clock reading does.
   */
  timestamp(what: string): bigint {
    const value = this.i64(what);
    if (value > MAX_COMMIT_TIME || value < -MAX_COMMIT_TIME) {
      throw malformed(`pgoutput '${this.tag}' message has a ${what} ${value} µs from 2000-01-01 at offset ${this.offset - 8}, beyond any clock`);
    }
    return value;
  }

  cstring(what: string): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) {
      throw malformed(`pgoutput '${this.tag}' message truncated: unterminated string for ${what} at offset ${this.offset}`);
    }
    const value = this.utf8(this.offset, end, what);
    this.offset = end + 1;
    return value;
  }

  private utf8(start: number, end: number, what: string): string {
    try {
      return utf8.decode(this.buffer.subarray(start, end));
    } catch {
      throw malformed(`pgoutput '${this.tag}' message has invalid UTF-8 in ${what} at offset ${start}`);
    }
  }

  text(length: number, what: string): string {
    if (length < 0) throw malformed(`pgoutput '${this.tag}' message has a negative ${what} length ${length} at offset ${this.offset - 4}`);
    this.need(length, what);
    const start = this.offset;
    const end = start + length;
    this.offset = end;
    // Short ASCII values (ids, booleans, small numbers: most columns) are
    // built in JavaScript: crossing into Buffer's C++ decoder costs ~4x more.
    if (length <= 6) {
      let value = '';
      for (let i = start; i < end; i++) {
        const byte = this.buffer[i];
        if (byte >= 0x80) return this.utf8(start, end, what);
        value += String.fromCharCode(byte);
      }
      return value;
    }
    return this.utf8(start, end, what);
  }

  bytes(length: number, what: string): Buffer {
    this.need(length, what);
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  tuple(): Tuple {
    const count = this.u16('column count');
    const values: Tuple = new Array(count);
    for (let i = 0; i < count; i++) {
      const kind = this.u8('column kind');
      switch (kind) {
        case 0x6e: values[i] = null; break; // 'n'
        case 0x75: values[i] = UNCHANGED; break; // 'u'
        case 0x74: values[i] = this.text(this.i32('value length'), 'value'); break; // 't'
        case 0x62: // 'b'
          throw new WalrelayError('PGOUTPUT_UNSUPPORTED', `pgoutput '${this.tag}' message carries a binary column value ('b') at offset ${this.offset - 1}, but walrelay subscribes in text mode`, {
            hint: 'walrelay never requests binary = true; check that nothing else changes the subscription options, and report it',
          });
        default:
          throw malformed(`pgoutput '${this.tag}' message has an unknown tuple column kind ${hex(kind)} at offset ${this.offset - 1} (expected 'n', 'u' or 't')`);
      }
    }
    return values;
  }

  /** A tuple's column positions (see Spans); the same checks as tuple(), UTF-8 left to the value converters. */
  spans(): Spans {
    const count = this.u16('column count');
    const spans: Spans = new Array(2 * count);
    for (let i = 0; i < count; i++) {
      const kind = this.u8('column kind');
      switch (kind) {
        case 0x6e: spans[2 * i] = NULL_SPAN; spans[2 * i + 1] = 0; break;
        case 0x75: spans[2 * i] = UNCHANGED_SPAN; spans[2 * i + 1] = 0; break;
        case 0x74: {
          const length = this.i32('value length');
          if (length < 0) throw malformed(`pgoutput '${this.tag}' message has a negative value length ${length} at offset ${this.offset - 4}`);
          this.need(length, 'value');
          spans[2 * i] = this.offset;
          this.offset += length;
          spans[2 * i + 1] = this.offset;
          break;
        }
        case 0x62:
          throw new WalrelayError('PGOUTPUT_UNSUPPORTED', `pgoutput '${this.tag}' message carries a binary column value ('b') at offset ${this.offset - 1}, but walrelay subscribes in text mode`, {
            hint: 'walrelay never requests binary = true; check that nothing else changes the subscription options, and report it',
          });
        default:
          throw malformed(`pgoutput '${this.tag}' message has an unknown tuple column kind ${hex(kind)} at offset ${this.offset - 1} (expected 'n', 'u' or 't')`);
      }
    }
    return spans;
  }

  /** 'K' or 'O' old tuple, then (for updates) the 'N' new tuple marker. */
  oldTuples(): { keyTuple: Tuple | null; oldTuple: Tuple | null; next: number } {
    const marker = this.u8('tuple marker');
    if (marker === 0x4b) return { keyTuple: this.tuple(), oldTuple: null, next: this.u8('tuple marker') };
    if (marker === 0x4f) return { keyTuple: null, oldTuple: this.tuple(), next: this.u8('tuple marker') };
    return { keyTuple: null, oldTuple: null, next: marker };
  }
}

/**
 * An insert, update or delete with its tuples as spans, nothing decoded;
 * null for every other message (parsePgoutput reads those). The spans
 * point into `payload`, which must outlive the message.
 */
export function parseRowMessage(payload: Buffer): RawRowMessage | null {
  const first = payload[0];
  if (first !== 0x49 && first !== 0x55 && first !== 0x44) return null; // I, U, D
  const tag = String.fromCharCode(first);
  const reader = new Reader(payload, tag);
  reader.offset = 1;
  const relationId = reader.u32('relation id');
  const marker = reader.u8('tuple marker');
  if (first === 0x49) {
    if (marker !== 0x4e) throw malformed(`pgoutput 'I' message: expected new tuple 'N' at offset 5, got ${hex(marker)}`);
    return { raw: true, tag: 'insert', relationId, buffer: payload, keySpans: null, oldSpans: null, newSpans: reader.spans() };
  }
  if (first === 0x44) {
    if (marker === 0x4b) return { raw: true, tag: 'delete', relationId, buffer: payload, keySpans: reader.spans(), oldSpans: null, newSpans: null };
    if (marker === 0x4f) return { raw: true, tag: 'delete', relationId, buffer: payload, keySpans: null, oldSpans: reader.spans(), newSpans: null };
    throw malformed(`pgoutput 'D' message: expected old tuple 'K' or 'O' at offset 5, got ${hex(marker)}`);
  }
  let keySpans: Spans | null = null;
  let oldSpans: Spans | null = null;
  let next = marker;
  if (marker === 0x4b) { keySpans = reader.spans(); next = reader.u8('tuple marker'); }
  else if (marker === 0x4f) { oldSpans = reader.spans(); next = reader.u8('tuple marker'); }
  if (next !== 0x4e) throw malformed(`pgoutput 'U' message: expected new tuple 'N' at offset ${reader.offset - 1}, got ${hex(next)}`);
  return { raw: true, tag: 'update', relationId, buffer: payload, keySpans, oldSpans, newSpans: reader.spans() };
}

export function parsePgoutput(payload: Buffer): PgoutputMessage {
  if (payload.length === 0) throw malformed('empty pgoutput message (no tag byte at offset 0)');
  const tag = String.fromCharCode(payload[0]);
  const reader = new Reader(payload, tag);
  reader.offset = 1;
  switch (tag) {
    case 'B': {
      const finalLsn = reader.u64('final LSN') as Lsn;
      const commitTime = reader.timestamp('commit time');
      return { tag: 'begin', finalLsn, commitTime, xid: reader.u32('xid') };
    }
    case 'C': {
      const flags = reader.u8('flags');
      const commitLsn = reader.u64('commit LSN') as Lsn;
      const endLsn = reader.u64('end LSN') as Lsn;
      return { tag: 'commit', flags, commitLsn, endLsn, commitTime: reader.timestamp('commit time') };
    }
    case 'O': {
      const originLsn = reader.u64('origin LSN') as Lsn;
      return { tag: 'origin', originLsn, name: reader.cstring('origin name') };
    }
    case 'R': {
      const relationId = reader.u32('relation id');
      const schema = reader.cstring('namespace');
      const name = reader.cstring('relation name');
      const identityOffset = reader.offset;
      const identity = String.fromCharCode(reader.u8('replica identity'));
      if (identity !== 'd' && identity !== 'n' && identity !== 'f' && identity !== 'i') {
        throw malformed(`pgoutput 'R' message has an unknown replica identity ${hex(identity.charCodeAt(0))} at offset ${identityOffset} (expected d, n, f or i)`);
      }
      const count = reader.u16('column count');
      const columns: RelationColumn[] = new Array(count);
      for (let i = 0; i < count; i++) {
        const flags = reader.u8('column flags');
        const columnName = reader.cstring('column name');
        columns[i] = { flags, name: columnName, typeOid: reader.u32('type oid'), typeMod: reader.i32('type modifier') };
      }
      return { tag: 'relation', relationId, schema: schema === '' ? 'pg_catalog' : schema, name, replicaIdentity: identity as 'd' | 'n' | 'f' | 'i', columns };
    }
    case 'Y': {
      const typeOid = reader.u32('type oid');
      const schema = reader.cstring('namespace');
      return { tag: 'type', typeOid, schema: schema === '' ? 'pg_catalog' : schema, name: reader.cstring('type name') };
    }
    case 'I': {
      const relationId = reader.u32('relation id');
      const marker = reader.u8('tuple marker');
      if (marker !== 0x4e) throw malformed(`pgoutput 'I' message: expected new tuple 'N' at offset 5, got ${hex(marker)}`);
      return { tag: 'insert', relationId, newTuple: reader.tuple() };
    }
    case 'U': {
      const relationId = reader.u32('relation id');
      const { keyTuple, oldTuple, next } = reader.oldTuples();
      if (next !== 0x4e) throw malformed(`pgoutput 'U' message: expected new tuple 'N' at offset ${reader.offset - 1}, got ${hex(next)}`);
      return { tag: 'update', relationId, keyTuple, oldTuple, newTuple: reader.tuple() };
    }
    case 'D': {
      const relationId = reader.u32('relation id');
      const marker = reader.u8('tuple marker');
      if (marker === 0x4b) return { tag: 'delete', relationId, keyTuple: reader.tuple(), oldTuple: null };
      if (marker === 0x4f) return { tag: 'delete', relationId, keyTuple: null, oldTuple: reader.tuple() };
      throw malformed(`pgoutput 'D' message: expected old tuple 'K' or 'O' at offset 5, got ${hex(marker)}`);
    }
    case 'T': {
      const count = reader.u32('relation count');
      const options = reader.u8('options');
      const relationIds: number[] = [];
      for (let i = 0; i < count; i++) relationIds.push(reader.u32('relation id'));
      return { tag: 'truncate', cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0, relationIds };
    }
    case 'M': {
      const flags = reader.u8('flags');
      const lsn = reader.u64('message LSN') as Lsn;
      const prefix = reader.cstring('prefix');
      const length = reader.u32('content length');
      return { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix, content: reader.bytes(length, 'content') };
    }
    default:
      if (STREAMING_TAGS.has(tag) || TWO_PHASE_TAGS.has(tag)) {
        const kind = STREAMING_TAGS.has(tag) ? 'streaming' : 'two-phase';
        throw new WalrelayError('PGOUTPUT_UNSUPPORTED', `pgoutput sent a '${tag}' message (${kind} protocol), which walrelay never requests`, {
          hint: `walrelay subscribes with ${kind === 'streaming' ? 'streaming' : 'two_phase'} off; check that nothing else changes the subscription options, and report it`,
        });
      }
      throw malformed(`unknown pgoutput message tag ${hex(payload[0])} ('${tag}') at offset 0`);
  }
}
