// Kafka's primitive wire types (big-endian integers, int16-length strings,
// int32-length bytes, zigzag varints), written into one growing buffer so a
// whole request is built without intermediate allocations.

/** Strings up to this length are measured and copied in JS; longer ones by Buffer's native code. */
const SHORT_STRING = 64;

/** UTF-8 byte length; for short ASCII strings without a native call (headers, keys: several per record). */
export function utf8Length(value: string): number {
  if (value.length > SHORT_STRING) return Buffer.byteLength(value);
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) >= 0x80) return Buffer.byteLength(value);
  }
  return value.length;
}

export class Writer {
  buffer: Buffer;
  offset = 0;

  constructor(initialSize = 64 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialSize);
  }

  ensure(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.offset + bytes));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }

  int8(value: number): this {
    this.ensure(1);
    this.buffer.writeInt8(value, this.offset);
    this.offset += 1;
    return this;
  }

  int16(value: number): this {
    this.ensure(2);
    this.buffer.writeInt16BE(value, this.offset);
    this.offset += 2;
    return this;
  }

  int32(value: number): this {
    this.ensure(4);
    this.buffer.writeInt32BE(value, this.offset);
    this.offset += 4;
    return this;
  }

  int64(value: bigint): this {
    this.ensure(8);
    this.buffer.writeBigInt64BE(value, this.offset);
    this.offset += 8;
    return this;
  }

  /** Kafka STRING / NULLABLE_STRING: int16 length, UTF-8 bytes (-1 for null). */
  string(value: string | null): this {
    if (value === null) return this.int16(-1);
    const length = Buffer.byteLength(value);
    this.int16(length);
    this.ensure(length);
    this.offset += this.buffer.write(value, this.offset);
    return this;
  }

  /** Kafka BYTES: int32 length and the bytes. */
  bytes(value: Buffer): this {
    this.int32(value.length);
    this.ensure(value.length);
    value.copy(this.buffer, this.offset);
    this.offset += value.length;
    return this;
  }

  /** Zigzag varint (signed 32-bit). */
  varint(value: number): this {
    this.ensure(5);
    let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
    while (zigzag >= 0x80) {
      this.buffer[this.offset++] = (zigzag & 0x7f) | 0x80;
      zigzag >>>= 7;
    }
    this.buffer[this.offset++] = zigzag;
    return this;
  }

  /** A string as varint length + UTF-8, with its byte length already known. */
  varintString(value: string, byteLength: number): this {
    this.varint(byteLength);
    this.ensure(byteLength);
    if (byteLength === value.length && byteLength <= SHORT_STRING) {
      // ASCII (equal lengths imply it) and short: a loop is cheaper than a call into C++.
      const buffer = this.buffer;
      let offset = this.offset;
      for (let i = 0; i < byteLength; i++) buffer[offset++] = value.charCodeAt(i);
      this.offset = offset;
    } else {
      this.offset += this.buffer.write(value, this.offset);
    }
    return this;
  }

  /** Bytes as varint length + the bytes. */
  varintBytes(value: Uint8Array): this {
    const length = value.length;
    this.varint(length);
    this.ensure(length);
    if (length <= SHORT_STRING) {
      // Keys and ids: a loop is cheaper than a call into C++.
      const buffer = this.buffer;
      let offset = this.offset;
      for (let i = 0; i < length; i++) buffer[offset++] = value[i];
      this.offset = offset;
    } else {
      this.buffer.set(value, this.offset);
      this.offset += length;
    }
    return this;
  }

  /** Reserves an int32 to be filled in later (lengths, counts); returns its position. */
  reserveInt32(): number {
    this.ensure(4);
    const position = this.offset;
    this.offset += 4;
    return position;
  }

  fillInt32(position: number, value: number): void {
    this.buffer.writeInt32BE(value, position);
  }

  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.offset);
  }
}

/** Bytes a zigzag varint of `value` occupies. */
export function varintSize(value: number): number {
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  let size = 1;
  while (zigzag >= 0x80) {
    zigzag >>>= 7;
    size++;
  }
  return size;
}

export class Reader {
  offset = 0;

  constructor(private readonly buffer: Buffer) {}

  int8(): number {
    return this.buffer.readInt8(this.offset++);
  }

  boolean(): boolean {
    return this.int8() !== 0;
  }

  int16(): number {
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  int64(): bigint {
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  string(): string | null {
    const length = this.int16();
    if (length < 0) return null;
    const value = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  bytes(): Buffer | null {
    const length = this.int32();
    if (length < 0) return null;
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  array<T>(readItem: (reader: Reader) => T): T[] {
    const count = this.int32();
    const items: T[] = [];
    for (let i = 0; i < count; i++) items.push(readItem(this));
    return items;
  }
}
