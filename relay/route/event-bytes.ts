// A row change's JSON written as bytes straight from its pgoutput message
// (the fast path when no sink needs PostgreSQL's text values): the same
// bytes, in the same field order, as RowChange.json UTF-8 encoded
// (test/unit/event-bytes.test.ts). Each event is followed by a newline in
// the chunk, so that consecutive events are already JSON lines (stdout).
import type { RawRowMessage, Spans } from '../source/pgoutput.js';
import type { RelationDecoder } from '../source/relation.js';
import { EncodedRowChange } from './event.js';
import { JsonBytes } from './json-bytes.js';
import { SEQ_DIGITS, eventId } from './event-id.js';

/** What a transaction stamps on each of its events. */
export interface TransactionStamp {
  /** The commit LSN in 16 hex digits and '-': each event's id is this and its position in 10 digits. */
  idPrefix: string;
  commitLsn: string;
  xid: number;
  commitTime: string;
}

const OPS = {
  insert: Buffer.from('","op":"insert",'),
  update: Buffer.from('","op":"update",'),
  delete: Buffer.from('","op":"delete",'),
};
const NEW = Buffer.from(',"new":');
const OLD = Buffer.from(',"old":');
const NULL = Buffer.from('null');
const UNCHANGED = Buffer.from(',"unchanged":');
const LSN = Buffer.from(',"lsn":"');

export class EventBytesWriter {
  private readonly out = new JsonBytes();
  private stamp: TransactionStamp | null = null;
  /** `{"id":"` and `stamp`'s id prefix. */
  private head: Buffer = NULL;
  /** `","commitLsn":"…","xid":…,"commitTime":"…"}` of `stamp`. */
  private tail: Buffer = NULL;

  /** The row change at position `seq` of `stamp`'s transaction. */
  rowChange(message: RawRowMessage, relation: RelationDecoder, stamp: TransactionStamp, seq: number, lsn: string): EncodedRowChange {
    if (stamp !== this.stamp) {
      this.stamp = stamp;
      this.head = Buffer.from(`{"id":"${stamp.idPrefix}`);
      this.tail = Buffer.from(`","commitLsn":"${stamp.commitLsn}","xid":${stamp.xid},"commitTime":"${stamp.commitTime}"}`);
    }
    // The id's bytes are written from the number: the id string is a concatenation, which reading back would flatten.
    const id = eventId(stamp.idPrefix, seq);
    const out = this.out;
    const buffer = message.buffer;
    // Positions relative to the event's start: a new chunk moves the event.
    const parts = [-1, -1, -1, -1, -1, -1, -1];
    out.begin();
    out.bytes(this.head);
    out.digits(seq, SEQ_DIGITS);
    out.bytes(OPS[message.tag]);
    out.bytes(relation.eventHead);
    let unchanged: string[] | undefined;
    if (message.tag === 'insert') {
      const row = message.newSpans!;
      this.key(relation, buffer, row, parts);
      out.bytes(NEW);
      parts[2] = out.pos - out.eventStart;
      unchanged = relation.writeRow(buffer, row, out);
      parts[3] = out.pos - out.eventStart;
      out.bytes(OLD);
      out.bytes(NULL);
    } else if (message.tag === 'update') {
      const row = relation.withKnownSpans(message.newSpans!, message.oldSpans, message.keySpans);
      this.key(relation, buffer, row, parts);
      out.bytes(NEW);
      parts[2] = out.pos - out.eventStart;
      unchanged = relation.writeRow(buffer, row, out);
      parts[3] = out.pos - out.eventStart;
      out.bytes(OLD);
      this.old(relation, buffer, message, parts);
    } else {
      const old = message.oldSpans ?? message.keySpans;
      if (old) this.key(relation, buffer, old, parts);
      else out.bytes(NULL);
      out.bytes(NEW);
      out.bytes(NULL);
      out.bytes(OLD);
      this.old(relation, buffer, message, parts);
    }
    if (unchanged) {
      out.bytes(UNCHANGED);
      out.text(JSON.stringify(unchanged));
    }
    out.bytes(LSN);
    parts[6] = out.pos - out.eventStart;
    out.ascii(lsn);
    out.bytes(this.tail);
    // Room for the newline first: making room later would move the event to a new chunk after its position was taken.
    out.ensure(1);
    const start = out.eventStart;
    const end = out.pos;
    out.byte(0x0a);
    for (let i = 0; i < parts.length; i++) if (parts[i] >= 0) parts[i] += start;
    return new EncodedRowChange(id, message.tag, relation.schema, relation.table, unchanged, lsn, stamp.commitLsn, stamp.xid, stamp.commitTime, relation.schemaVersion,
      out.buffer, start, end, parts);
  }

  /** The key object (or null) of `spans`. */
  private key(relation: RelationDecoder, buffer: Buffer, spans: Spans, parts: number[]): void {
    const out = this.out;
    const start = out.pos - out.eventStart;
    if (relation.writeKey(buffer, spans, out)) {
      parts[0] = start;
      parts[1] = out.pos - out.eventStart;
    } else {
      out.bytes(NULL);
    }
  }

  /** An update's or delete's old row: the whole old row (REPLICA IDENTITY FULL), else the old key, else null. */
  private old(relation: RelationDecoder, buffer: Buffer, message: RawRowMessage, parts: number[]): void {
    const out = this.out;
    const start = out.pos - out.eventStart;
    if (message.oldSpans) relation.writeRow(buffer, message.oldSpans, out);
    else if (!message.keySpans || !relation.writeKey(buffer, message.keySpans, out)) {
      out.bytes(NULL);
      return;
    }
    parts[4] = start;
    parts[5] = out.pos - out.eventStart;
  }
}
