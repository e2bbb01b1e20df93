// Event JSON written as UTF-8 bytes into shared chunks, instead of being
// built as JavaScript strings from one piece per column: turning such a
// string (a V8 cons string) back into bytes for a socket cost a quarter of
// the relay's CPU (bench/OPTIMISATIONS.md, round two). A chunk is never
// reused: events keep theirs alive until every sink has encoded them, and a
// full chunk is simply left to the garbage collector.

/** Bytes per chunk; an event larger than this gets a chunk of its own size. */
const CHUNK_BYTES = 256 * 1024;

export class JsonBytes {
  buffer: Buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  /** Next byte to write. */
  pos = 0;
  /** Where the event being written began: on a chunk change it moves along with it. */
  private start = 0;

  /** Starts an event at the current position. */
  begin(): void {
    this.start = this.pos;
  }

  /** Where the event being written began in `buffer` (valid until the next `ensure`). */
  get eventStart(): number {
    return this.start;
  }

  /** Room for `bytes` more; a new chunk takes the event's bytes so far along. */
  ensure(bytes: number): void {
    if (this.pos + bytes <= this.buffer.length) return;
    const written = this.pos - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, 2 * (written + bytes)));
    this.buffer.copy(next, 0, this.start, this.pos);
    this.buffer = next;
    this.start = 0;
    this.pos = written;
  }

  byte(value: number): void {
    this.ensure(1);
    this.buffer[this.pos++] = value;
  }

  /** Bytes prepared once (column names, per-relation parts). */
  bytes(value: Uint8Array): void {
    const length = value.length;
    this.ensure(length);
    const buffer = this.buffer;
    let pos = this.pos;
    if (length <= 24) {
      for (let i = 0; i < length; i++) buffer[pos++] = value[i];
    } else {
      buffer.set(value, pos);
      pos += length;
    }
    this.pos = pos;
  }

  /** A string known to be ASCII (ids, LSNs, times, digits). */
  ascii(value: string): void {
    const length = value.length;
    this.ensure(length);
    const buffer = this.buffer;
    let pos = this.pos;
    for (let i = 0; i < length; i++) buffer[pos++] = value.charCodeAt(i);
    this.pos = pos;
  }

  /** Any string, UTF-8 encoded. */
  text(value: string): void {
    const length = value.length;
    if (length <= 64) {
      this.ensure(length);
      const buffer = this.buffer;
      let pos = this.pos;
      let i = 0;
      for (; i < length; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buffer[pos++] = c;
      }
      this.pos = pos;
      if (i === length) return;
      value = value.slice(i);
    }
    this.ensure(3 * value.length);
    this.pos += this.buffer.write(value, this.pos, 'utf8');
  }

  /** A non-negative integer below 10^width in decimal, zero-padded to `width` digits. */
  digits(value: number, width: number): void {
    this.ensure(width);
    const buffer = this.buffer;
    for (let i = this.pos + width - 1; i >= this.pos; i--) {
      const next = Math.floor(value / 10);
      buffer[i] = 0x30 + value - next * 10;
      value = next;
    }
    this.pos += width;
  }

  /** A non-negative integer in decimal. */
  integer(value: number): void {
    if (value < 10) {
      this.byte(0x30 + value);
      return;
    }
    this.ascii(String(value));
  }
}

/** `text` as UTF-8 bytes (parts prepared once). */
export function utf8Bytes(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}
