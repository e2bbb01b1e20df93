// The replication connection's socket data cut into backend messages by
// walrelay instead of pg's parser, once streaming starts. pg's parser grows
// one shared buffer by doubling while a message arrives, copying what it
// holds each time, and later overwrites that buffer with the next messages,
// so a payload had to be copied again to be kept (bench/OPTIMISATIONS.md,
// large values). Here a CopyData message that lies within one socket chunk
// is handed on as a view of that chunk (Node reads each chunk into a buffer
// of its own and never reuses it), and a longer one is gathered into a buffer
// of exactly its size: each byte is copied at most once, and no payload is
// ever overwritten. Every other message (CopyDone, errors, CommandComplete,
// ReadyForQuery, notices) goes to pg's parser unchanged, in order.

const HEADER_BYTES = 5;
/** PostgreSQL builds no message over 1 GB (MaxAllocSize); a larger length is corruption, left to pg's parser to report. */
const MAX_LENGTH = 0x40000000 + 1024;
/** CopyData ('d'). */
const COPY_DATA = 0x64;

export class CopyDataFramer {
  /** The message being gathered across chunks (header included), and how much of it has arrived. */
  private partial: Buffer | null = null;
  private filled = 0;
  /** A header cut by a chunk's end. */
  private header: Buffer | null = null;
  /** Once a length makes no sense, everything goes to pg's parser as it comes (it reports the error). */
  private passThrough = false;

  /**
   * `onCopyData` gets each CopyData body (its bytes never change afterwards);
   * `passOn` gets every other message's bytes, whole.
   */
  constructor(private readonly onCopyData: (body: Buffer) => void, private readonly passOn: (bytes: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (this.passThrough) {
      this.passOn(chunk);
      return;
    }
    if (this.header !== null) {
      // Rare (a header across two chunks): joined with the next chunk, a copy of it that is also never reused.
      chunk = Buffer.concat([this.header, chunk]);
      this.header = null;
    }
    let offset = 0;
    while (offset < chunk.length) {
      if (this.partial !== null) {
        const copied = chunk.copy(this.partial, this.filled, offset, Math.min(chunk.length, offset + this.partial.length - this.filled));
        this.filled += copied;
        offset += copied;
        if (this.filled < this.partial.length) return;
        const whole = this.partial;
        this.partial = null;
        this.deliver(whole, 0, whole.length);
        continue;
      }
      if (chunk.length - offset < HEADER_BYTES) {
        this.header = Buffer.from(chunk.subarray(offset));
        return;
      }
      const length = chunk.readUInt32BE(offset + 1);
      if (length < 4 || length > MAX_LENGTH) {
        this.passThrough = true;
        this.passOn(chunk.subarray(offset));
        return;
      }
      const end = offset + 1 + length;
      if (end <= chunk.length) {
        this.deliver(chunk, offset, end);
        offset = end;
        continue;
      }
      // Longer than what this chunk holds: gathered into a buffer of its exact size.
      this.partial = Buffer.allocUnsafe(1 + length);
      this.filled = chunk.copy(this.partial, 0, offset);
      return;
    }
  }

  private deliver(bytes: Buffer, start: number, end: number): void {
    if (bytes[start] === COPY_DATA) this.onCopyData(bytes.subarray(start + HEADER_BYTES, end));
    else this.passOn(bytes.subarray(start, end));
  }
}
