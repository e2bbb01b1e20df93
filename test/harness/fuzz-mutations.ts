// Seeded randomness and the ways a pgoutput message is damaged for the fuzz
// test: truncated, bits flipped, lengths and counts overwritten, bytes
// inserted or removed, unknown tags, invalid UTF-8, two messages spliced,
// random garbage. Every case draws from its own generator, seeded from the
// run's seed and the case number, so one case can be replayed alone.

/** mulberry32: small, fast, good enough to pick mutations. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The generator of case `index` of a run seeded with `seed`. */
export function caseRandom(seed: number, index: number): () => number {
  return random(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
}

export type Rng = () => number;

const int = (rng: Rng, below: number) => Math.floor(rng() * below);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];

const INTERESTING_BYTES = [0x00, 0x01, 0x4b, 0x4e, 0x4f, 0x6e, 0x74, 0x75, 0x7b, 0x7d, 0x22, 0x5c, 0x7f, 0x80, 0xc0, 0xff];
const INTERESTING_INT32 = [0, 1, -1, 2, 0x7fffffff, -0x80000000, 0xffff, 0x10000, 1 << 24];
const BAD_UTF8 = [[0xff], [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0x80]];
const TAGS = 'BCORYIUDTMSEcAbPKrpZ\0\xff';

type Mutation = (bytes: Buffer, rng: Rng, other: Buffer) => Buffer;

const MUTATIONS: Record<string, Mutation> = {
  truncate: (b, rng) => b.subarray(0, int(rng, b.length)),
  flipBits: (b, rng) => {
    const out = Buffer.from(b);
    for (let n = 1 + int(rng, 8); n > 0 && out.length > 0; n--) out[int(rng, out.length)] ^= 1 << int(rng, 8);
    return out;
  },
  setBytes: (b, rng) => {
    const out = Buffer.from(b);
    for (let n = 1 + int(rng, 4); n > 0 && out.length > 0; n--) out[int(rng, out.length)] = rng() < 0.7 ? pick(rng, INTERESTING_BYTES) : int(rng, 256);
    return out;
  },
  /** A length, count or OID field anywhere gets a value that is off by one, negative, huge or zero. */
  overwriteInt: (b, rng) => {
    if (b.length < 4) return b;
    const out = Buffer.from(b);
    const offset = int(rng, out.length - 3);
    const choice = rng();
    if (choice < 0.4) out.writeInt32BE(pick(rng, INTERESTING_INT32) | 0, offset);
    else if (choice < 0.7) out.writeInt32BE((out.readInt32BE(offset) + pick(rng, [-2, -1, 1, 2, 1000])) | 0, offset);
    else out.writeUInt16BE(pick(rng, [0, 1, 0x7fff, 0x8000, 0xffff, out.readUInt16BE(offset) + 1]) & 0xffff, offset);
    return out;
  },
  insertBytes: (b, rng) => {
    const at = int(rng, b.length + 1);
    const extra = Buffer.from(Array.from({ length: 1 + int(rng, 16) }, () => (rng() < 0.5 ? pick(rng, INTERESTING_BYTES) : int(rng, 256))));
    return Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]);
  },
  deleteBytes: (b, rng) => {
    const at = int(rng, b.length + 1);
    return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(rng, 16)))]);
  },
  duplicateRange: (b, rng) => {
    const at = int(rng, b.length + 1);
    const range = b.subarray(at, at + 1 + int(rng, 24));
    return Buffer.concat([b.subarray(0, at), range, range, b.subarray(at + range.length)]);
  },
  retag: (b, rng) => {
    const out = Buffer.from(b.length > 0 ? b : [0]);
    out[0] = rng() < 0.5 ? TAGS.charCodeAt(int(rng, TAGS.length)) : int(rng, 256);
    return out;
  },
  badUtf8: (b, rng) => {
    const sequence = Buffer.from(pick(rng, BAD_UTF8));
    const at = 1 + int(rng, Math.max(1, b.length - 1));
    return rng() < 0.5
      ? Buffer.concat([b.subarray(0, at), sequence, b.subarray(at + sequence.length)]) // same length: framing intact
      : Buffer.concat([b.subarray(0, at), sequence, b.subarray(at)]);
  },
  splice: (b, rng, other) => Buffer.concat([b.subarray(0, int(rng, b.length + 1)), other.subarray(int(rng, other.length + 1))]),
  garbage: (b, rng) => {
    const out = Buffer.from(Array.from({ length: int(rng, 64) }, () => int(rng, 256)));
    if (out.length > 0 && rng() < 0.8) out[0] = b[0] ?? 0x49;
    return out;
  },
};

const NAMES = Object.keys(MUTATIONS);

/** One to three mutations of `bytes`; `other` is another real message, for splicing. */
export function mutate(bytes: Buffer, rng: Rng, other: Buffer): { bytes: Buffer; applied: string[] } {
  const applied: string[] = [];
  let out = bytes;
  for (let n = 1 + (rng() < 0.3 ? int(rng, 3) : 0); n > 0; n--) {
    const name = pick(rng, NAMES);
    out = MUTATIONS[name](out, rng, other);
    applied.push(name);
  }
  return { bytes: out, applied };
}
