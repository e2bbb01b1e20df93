// A PostgreSQL WAL position. Kept as a 64-bit bigint so that comparisons are
// numeric: LSN strings come in two spellings (0/152FF48, 00000000/0152FF48)
// and string comparison orders them wrongly.
export type Lsn = bigint & { readonly __brand: 'Lsn' };

export const ZERO_LSN = 0n as Lsn;

export function lsn(value: bigint): Lsn {
  return value as Lsn;
}

/** Parses "X/Y" (hex halves, any zero padding). Throws on anything else. */
export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match) throw new TypeError(`not an LSN: '${text}' (expected hex 'X/Y' such as 0/16B3748)`);
  return ((BigInt('0x' + match[1]) << 32n) | BigInt('0x' + match[2])) as Lsn;
}

const TWO_TO_32 = 4_294_967_296;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** The upper half last formatted, and its text with the slash: it changes once per 4 GiB of WAL. */
let lastHigh = -1;
let lastHighText = '';

/** PostgreSQL notation: upper and lower 32 bits in upper-case hex, no padding. */
export function formatLsn(value: Lsn | bigint): string {
  // Called once per event: halves from one Number conversion (exact below 2^53) instead of two BigInt operations.
  if (value <= MAX_SAFE) {
    const n = Number(value);
    const high = Math.floor(n / TWO_TO_32);
    if (high !== lastHigh) {
      lastHigh = high;
      lastHighText = `${high.toString(16).toUpperCase()}/`;
    }
    return lastHighText + (n - high * TWO_TO_32).toString(16).toUpperCase();
  }
  return `${Number(value >> 32n).toString(16).toUpperCase()}/${Number(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Fixed-width hex, so that identifiers built from LSNs sort as the LSNs do. */
export function lsnKey(value: Lsn | bigint): string {
  return value.toString(16).toUpperCase().padStart(16, '0');
}

export function readLsn(buffer: Buffer, offset: number): Lsn {
  return buffer.readBigUInt64BE(offset) as Lsn;
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}
