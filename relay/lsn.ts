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

/** PostgreSQL notation: upper and lower 32 bits in upper-case hex, no padding. */
export function formatLsn(value: Lsn | bigint): string {
  const hi = Number(value >> 32n);
  const lo = Number(value & 0xffffffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
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
