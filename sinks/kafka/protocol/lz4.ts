// LZ4 as Kafka's lz4 codec (attribute 3) expects it: the LZ4 frame format
// (lz4.github.io/lz4/lz4_Frame_format.html) with independent 64 KiB blocks
// and no checksums but the header's, each block compressed with the plain
// greedy LZ4 block algorithm (lz4_Block_format.md): a 4-byte hash of the
// input finds an earlier occurrence within 64 KiB, which becomes a match.
// Node has no LZ4; this is small enough to own (the broker decompresses
// every batch it accepts, and the tests read it back with the Java client).

const MAGIC = 0x184d2204;
const FLG = 0x60; // version 01, blocks independent, no block or content checksum, no content size
const BD = 0x40; // block maximum size 64 KiB
const BLOCK_SIZE = 64 * 1024;
const MIN_MATCH = 4;
/** The last match must start this far before the end of a block, and the last 5 bytes are literals (format rules). */
const MATCH_FIND_LIMIT = 12;
const LAST_LITERALS = 5;
const HASH_BITS = 12;

export function lz4Frame(input: Buffer): Buffer {
  const out = Buffer.allocUnsafe(7 + input.length + Math.ceil(input.length / 255) + 16 * Math.ceil(input.length / BLOCK_SIZE + 1) + 4);
  out.writeUInt32LE(MAGIC, 0);
  out[4] = FLG;
  out[5] = BD;
  out[6] = (xxh32(out.subarray(4, 6)) >>> 8) & 0xff;
  let position = 7;
  const table = new Int32Array(1 << HASH_BITS);
  for (let start = 0; start < input.length; start += BLOCK_SIZE) {
    const end = Math.min(start + BLOCK_SIZE, input.length);
    const sizeAt = position;
    position += 4;
    const written = compressBlock(input, start, end, out, position, table);
    if (written >= end - start) {
      // Not smaller: store the block uncompressed (high bit of the size).
      input.copy(out, position, start, end);
      out.writeUInt32LE((0x80000000 | (end - start)) >>> 0, sizeAt);
      position += end - start;
    } else {
      out.writeUInt32LE(written, sizeAt);
      position += written;
    }
  }
  out.writeUInt32LE(0, position); // end mark
  return out.subarray(0, position + 4);
}

/** Compresses input[start, end) into out at `at`; returns the bytes written. */
function compressBlock(input: Buffer, start: number, end: number, out: Buffer, at: number, table: Int32Array): number {
  table.fill(-1);
  let position = at;
  let anchor = start;
  let ip = start;
  const matchLimit = end - LAST_LITERALS;
  while (ip < end - MATCH_FIND_LIMIT) {
    const sequence = input.readUInt32LE(ip);
    const hash = Math.imul(sequence, 2654435761) >>> (32 - HASH_BITS);
    const candidate = table[hash];
    table[hash] = ip;
    if (candidate < start || ip - candidate > 0xffff || input.readUInt32LE(candidate) !== sequence) {
      ip++;
      continue;
    }
    let length = MIN_MATCH;
    while (ip + length < matchLimit && input[candidate + length] === input[ip + length]) length++;
    position = writeSequence(out, position, input, anchor, ip, ip - candidate, length);
    ip += length;
    anchor = ip;
  }
  return writeSequence(out, position, input, anchor, end, 0, 0) - at;
}

/** One sequence: the literals input[from, to), then a match of `length` bytes `offset` back (none when length is 0). */
function writeSequence(out: Buffer, position: number, input: Buffer, from: number, to: number, offset: number, length: number): number {
  const literals = to - from;
  const matchCode = length === 0 ? 0 : length - MIN_MATCH;
  out[position++] = (Math.min(literals, 15) << 4) | Math.min(matchCode, 15);
  if (literals >= 15) position = writeLength(out, position, literals - 15);
  input.copy(out, position, from, to);
  position += literals;
  if (length === 0) return position;
  out[position++] = offset & 0xff;
  out[position++] = offset >>> 8;
  if (matchCode >= 15) position = writeLength(out, position, matchCode - 15);
  return position;
}

function writeLength(out: Buffer, position: number, rest: number): number {
  while (rest >= 255) {
    out[position++] = 255;
    rest -= 255;
  }
  out[position++] = rest;
  return position;
}

/** xxHash32 with seed 0, for inputs shorter than 16 bytes (the frame header checksum). */
function xxh32(data: Buffer): number {
  const P1 = 2654435761, P2 = 2246822519, P3 = 3266489917, P4 = 668265263, P5 = 374761393;
  let hash = (P5 + data.length) >>> 0;
  let i = 0;
  for (; i + 4 <= data.length; i += 4) {
    hash = (hash + Math.imul(data.readUInt32LE(i), P3)) >>> 0;
    hash = Math.imul(rotateLeft(hash, 17), P4) >>> 0;
  }
  for (; i < data.length; i++) {
    hash = (hash + Math.imul(data[i], P5)) >>> 0;
    hash = Math.imul(rotateLeft(hash, 11), P1) >>> 0;
  }
  hash ^= hash >>> 15;
  hash = Math.imul(hash, P2) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, P3) >>> 0;
  hash ^= hash >>> 16;
  return hash >>> 0;
}

function rotateLeft(value: number, bits: number): number {
  return ((value << bits) | (value >>> (32 - bits))) >>> 0;
}
