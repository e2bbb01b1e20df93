// Builds pgoutput messages byte by byte (layouts from PostgreSQL's "Logical
// Replication Message Formats"), and reads the hex fixtures captured from
// real servers by test/fixtures/capture-pgoutput.ts.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PgFlavor } from './postgres.js';

export class Bytes {
  private parts: Buffer[] = [];
  tag(tag: string) { return this.u8(tag.charCodeAt(0)); }
  u8(value: number) { this.parts.push(Buffer.from([value])); return this; }
  i16(value: number) { const b = Buffer.alloc(2); b.writeInt16BE(value); this.parts.push(b); return this; }
  u32(value: number) { const b = Buffer.alloc(4); b.writeUInt32BE(value); this.parts.push(b); return this; }
  i32(value: number) { const b = Buffer.alloc(4); b.writeInt32BE(value); this.parts.push(b); return this; }
  u64(value: bigint) { const b = Buffer.alloc(8); b.writeBigUInt64BE(value); this.parts.push(b); return this; }
  cstring(value: string) { this.parts.push(Buffer.from(value + '\0', 'utf8')); return this; }
  text(value: string) { const body = Buffer.from(value, 'utf8'); return this.tag('t').i32(body.length).raw(body); }
  raw(buffer: Buffer) { this.parts.push(buffer); return this; }
  done() { return Buffer.concat(this.parts); }
}

/** test/fixtures in the source tree (this file runs from dist/test/harness). */
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures');

export interface CapturedMessage {
  /** Tag and ordinal, e.g. "I3": the third Insert of the capture. */
  name: string;
  bytes: Buffer;
}

/** The messages PostgreSQL sent for the capture workload, in stream order. */
export function capturedMessages(flavor: PgFlavor): CapturedMessage[] {
  return readFileSync(join(FIXTURES, `pgoutput-${flavor}.hex`), 'utf8').split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [name, hex] = line.split(' ');
      return { name, bytes: Buffer.from(hex, 'hex') };
    });
}

/** The captured stream cut into transactions (Begin … Commit) and the messages outside one. */
export function capturedTransactions(flavor: PgFlavor): Buffer[][] {
  const transactions: Buffer[][] = [];
  let open: Buffer[] | null = null;
  for (const { bytes } of capturedMessages(flavor)) {
    const tag = String.fromCharCode(bytes[0]);
    if (tag === 'B') open = [bytes];
    else if (open) open.push(bytes);
    else transactions.push([bytes]);
    if (tag === 'C' && open) {
      transactions.push(open);
      open = null;
    }
  }
  return transactions;
}
