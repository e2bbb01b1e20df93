// Redis Cluster's key → hash slot rule: CRC16 (XMODEM) of the key modulo
// 16384, where a key holding a non-empty "{…}" hashes only what is inside the
// first such pair (a hash tag), so that related keys can share a slot.
// walrelay needs it to group a batch by the master that owns each stream, and
// to give every exactly-once checkpoint the slot of its stream.

const TABLE = new Uint16Array(256);
for (let byte = 0; byte < 256; byte++) {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  TABLE[byte] = crc;
}

export const SLOTS = 16384;

/** The part of `key` that Redis Cluster hashes: the first non-empty {tag}, else the whole key. */
export function hashedPart(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return key;
  return key.slice(open + 1, close);
}

export function keySlot(key: string): number {
  let crc = 0;
  for (const byte of Buffer.from(hashedPart(key))) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc % SLOTS;
}
