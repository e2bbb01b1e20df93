// The RESP payload of a batch for the Redis sink (index.ts): one XADD per
// stream entry, pipelined; in the walrelay format, from the events' own
// bytes where they have them. Also the entries themselves, for exactly-once
// and cluster/Sentinel writes, which send them otherwise.
import { EncodedRowChange, type ChangeEvent } from '../../relay/route/event.js';
import type { RedisSinkConfig } from '../../config/schema.js';
import { NameTemplate } from '../stream-name.js';
import { debeziumRecords, debeziumTemplates, encodeEvent, type FormatContext } from '../formats.js';
import { domainRecordOf } from '../../relay/stages/domain-event.js';
import type { StreamEntry } from './exactly-once.js';

export class XaddPayloads {
  private readonly streams: NameTemplate;

  constructor(private readonly config: RedisSinkConfig, private readonly formatContext: FormatContext) {
    const debezium = config.format === 'debezium' ? debeziumTemplates(formatContext) : undefined;
    this.streams = new NameTemplate(config.stream ?? debezium?.table ?? 'walrelay:{schema}.{table}', config.messageStream ?? debezium?.message ?? 'walrelay:messages');
  }

  /**
   * The stream entries one event appends, in either mode: a domain event's
   * fields (event, key, headers); Debezium Server's layout (XADD <stream> *
   * <key JSON> <value JSON>, "default" for a missing key or a tombstone's
   * value, its redis.null.key / redis.null.value defaults), one entry per
   * record; otherwise the field `event`.
   */
  entriesOf(event: ChangeEvent): StreamEntry[] {
    const domain = domainRecordOf(event);
    if (domain) return [{ stream: domain.destination, id: event.id, fields: domainFields(domain) }];
    const stream = this.streams.nameFor(event);
    if (this.config.format !== 'debezium') return [{ stream, id: event.id, fields: ['event', encodeEvent(event, this.config.format, this.formatContext)] }];
    // A record after the first (a delete's tombstone) gets the id
    // "<event id>+n", which sorts after the event's own id and before every
    // later id (the next position, and a schema event's "<event id>.schema"),
    // as the exactly-once checkpoint needs.
    return debeziumRecords(event, this.formatContext).map((record, index) => ({
      stream,
      id: index === 0 ? event.id : `${event.id}+${index}`,
      fields: [record.key ?? DEBEZIUM_NULL, record.value ?? DEBEZIUM_NULL],
    }));
  }

  /** One XADD per stream entry, as a single pipelined RESP payload. */
  encode(events: readonly ChangeEvent[]): { payload: string | Buffer | Buffer[]; count: number } {
    const trim = this.config.maxLen === undefined ? '' : `$6\r\nMAXLEN\r\n$1\r\n~\r\n$${String(this.config.maxLen).length}\r\n${this.config.maxLen}\r\n`;
    if (this.config.format === 'walrelay') return this.encodeBytes(events, trim);
    const head = `*${this.config.maxLen === undefined ? 5 : 8}\r\n$4\r\nXADD\r\n`;
    const plainFormat = this.config.format !== 'debezium';
    let payload = '';
    let count = 0;
    for (const event of events) {
      if (plainFormat && domainRecordOf(event) === undefined) {
        // The hot path: the event's JSON under the field `event`, without building an entry object.
        const stream = this.streams.nameFor(event);
        const json = encodeEvent(event, this.config.format);
        payload += `${head}$${Buffer.byteLength(stream)}\r\n${stream}\r\n${trim}$1\r\n*\r\n$5\r\nevent\r\n$${Buffer.byteLength(json)}\r\n${json}\r\n`;
        count++;
        continue;
      }
      for (const entry of this.entriesOf(event)) {
        payload += encodeEntry(entry, trim);
        count++;
      }
    }
    return { payload, count };
  }

  /**
   * The walrelay format as bytes: a row change written as bytes
   * (event-bytes.ts) is copied into the payload as it is, its length known
   * without measuring; anything else is encoded as text. An event of
   * LARGE_EVENT_BYTES or more is not copied: the payload becomes pieces
   * around the event's own bytes, written together (one writev).
   */
  private encodeBytes(events: readonly ChangeEvent[], trim: string): { payload: Buffer | Buffer[]; count: number } {
    const parts: (Buffer | null)[] = new Array(events.length);
    let size = 0;
    let count = 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      if (event instanceof EncodedRowChange && domainRecordOf(event) === undefined) {
        const head = this.xaddHead(this.streams.nameFor(event), trim);
        parts[i] = head;
        const length = event.end - event.start;
        size += head.length + decimalLength(length) + (length >= LARGE_EVENT_BYTES ? 0 : length) + 5;
        count++;
      } else {
        const entries = this.entriesOf(event);
        let text = '';
        for (const entry of entries) text += encodeEntry(entry, trim);
        const encoded = Buffer.from(text);
        parts[i] = encoded;
        size += encoded.length;
        count += entries.length;
      }
    }
    const payload = Buffer.allocUnsafe(size);
    let pieces: Buffer[] | null = null;
    let pieceStart = 0;
    let at = 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      const part = parts[i]!;
      at += part.copy(payload, at);
      if (!(event instanceof EncodedRowChange) || domainRecordOf(event) !== undefined) continue;
      // $<length>\r\n<json>\r\n
      const length = event.end - event.start;
      payload[at++] = 0x24;
      const digits = String(length);
      for (let d = 0; d < digits.length; d++) payload[at++] = digits.charCodeAt(d);
      payload[at++] = 0x0d;
      payload[at++] = 0x0a;
      if (length >= LARGE_EVENT_BYTES) {
        pieces ??= [];
        pieces.push(payload.subarray(pieceStart, at), event.chunk.subarray(event.start, event.end));
        pieceStart = at;
      } else {
        at += event.chunk.copy(payload, at, event.start, event.end);
      }
      payload[at++] = 0x0d;
      payload[at++] = 0x0a;
    }
    if (pieces === null) return { payload, count };
    pieces.push(payload.subarray(pieceStart, at));
    return { payload: pieces, count };
  }

  /** `XADD <stream> [MAXLEN ~ n] * event` up to the value, per stream name (a few tables: a small cache). */
  private xaddHead(stream: string, trim: string): Buffer {
    let head = this.heads.get(stream);
    if (head === undefined) {
      if (this.heads.size >= 1000) this.heads.clear();
      head = Buffer.from(`*${trim ? 8 : 5}\r\n$4\r\nXADD\r\n$${Buffer.byteLength(stream)}\r\n${stream}\r\n${trim}$1\r\n*\r\n$5\r\nevent\r\n`);
      this.heads.set(stream, head);
    }
    return head;
  }

  private readonly heads = new Map<string, Buffer>();
}

/** Events this large are written from their own bytes rather than copied into the batch's payload. */
const LARGE_EVENT_BYTES = 64 * 1024;

/** Decimal digits of a non-negative integer. */
function decimalLength(value: number): number {
  let digits = 1;
  while (value >= 10) {
    value = Math.floor(value / 10);
    digits++;
  }
  return digits;
}

/** Debezium Server's redis.null.key and redis.null.value default. */
const DEBEZIUM_NULL = 'default';

/** A domain event (outbox, routed message): fields event (the value), key when there is one, then its headers. */
function domainFields(domain: NonNullable<ReturnType<typeof domainRecordOf>>): string[] {
  return ['event', domain.value, ...(domain.key === null ? [] : ['key', domain.key]), ...domain.headers.flat()];
}

/** XADD <stream> [MAXLEN ~ n] * <fields…> in RESP. */
function encodeEntry(entry: StreamEntry, trim: string): string {
  let text = `*${3 + entry.fields.length + (trim ? 3 : 0)}\r\n$4\r\nXADD\r\n$${Buffer.byteLength(entry.stream)}\r\n${entry.stream}\r\n${trim}$1\r\n*\r\n`;
  for (const field of entry.fields) text += `$${Buffer.byteLength(field)}\r\n${field}\r\n`;
  return text;
}
