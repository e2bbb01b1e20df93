// The two hashes the Kafka wire needs: CRC-32C over a record batch (the
// broker rejects a batch whose checksum differs) and the Java client's
// murmur2, which decides a key's partition.
import { createRequire } from 'node:module';

const CRC32C_TABLES = buildCrc32cTables();

/** Castagnoli polynomial, reflected: 0x82F63B78. Slicing-by-8 tables. */
function buildCrc32cTables(): Int32Array[] {
  const tables = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let n = 0; n < 256; n++) {
    let crc = n;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    tables[0][n] = crc;
  }
  for (let n = 0; n < 256; n++) {
    for (let t = 1; t < 8; t++) tables[t][n] = (tables[t - 1][n] >>> 8) ^ tables[0][tables[t - 1][n] & 0xff];
  }
  return tables;
}

/**
 * CRC-32C in native code (the CPU's CRC instructions) from @node-rs/crc32's prebuilt binaries: 0.3 ns per byte
 * against 1.6 for the loop below (bench/OPTIMISATIONS.md); the loop where no binary loads (another platform).
 */
const native = loadNativeCrc32c();
/** Whether the native CRC-32C loaded (tests check that this platform takes it). */
export const crc32cIsNative = native !== null;

/** Shorter inputs cost less in the loop below than a call into native code (~0.35 µs). */
const NATIVE_FROM_BYTES = 512;

function loadNativeCrc32c(): ((input: Buffer) => number) | null {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32c(input: Buffer): number }).crc32c;
  } catch {
    return null;
  }
}

export function crc32c(data: Buffer, start = 0, end = data.length): number {
  if (native !== null && end - start >= NATIVE_FROM_BYTES) return native(start === 0 && end === data.length ? data : data.subarray(start, end)) >>> 0;
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC32C_TABLES;
  let crc = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const low = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
    crc = t7[low & 0xff] ^ t6[(low >>> 8) & 0xff] ^ t5[(low >>> 16) & 0xff] ^ t4[low >>> 24] ^
      t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]];
  }
  for (; i < end; i++) crc = t0[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** org.apache.kafka.common.utils.Utils.murmur2, as a signed 32-bit integer. */
export function murmur2(data: Buffer): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length & 3;
  if (tail === 3) h ^= data[whole + 2] << 16;
  if (tail >= 2) h ^= data[whole + 1] << 8;
  if (tail >= 1) h = Math.imul(h ^ data[whole], m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The Java client's default partition for a keyed record:
 * toPositive(murmur2(UTF-8 bytes of key)) % partitions.
 */
export function partitionForKey(key: string | Buffer, partitions: number): number {
  const bytes = typeof key === 'string' ? (isAscii(key) ? asciiBytes(key) : Buffer.from(key)) : key;
  return (murmur2(bytes) & 0x7fffffff) % partitions;
}

/** Reused for ASCII keys (the usual JSON key): no allocation per record. */
let scratch = Buffer.allocUnsafe(256);

function asciiBytes(key: string): Buffer {
  if (key.length > scratch.length) scratch = Buffer.allocUnsafe(key.length * 2);
  return scratch.subarray(0, scratch.write(key, 0, 'latin1'));
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}
