// Reads RecordBatches (magic 2) from a Fetch answer as a read_committed
// consumer must: records of aborted transactions are dropped (the Fetch
// answer lists each aborted transaction's producer id and first offset; its
// records run until that producer's ABORT control batch), control batches
// are skipped. Used only for walrelay's checkpoint records, so it favours
// plainness over speed. Layout: the protocol guide's "Record Batch".
import { gunzipSync } from 'node:zlib';

export interface ReadRecord {
  offset: bigint;
  key: string | null;
  value: string | null;
}

const COMPRESSION_MASK = 0x07;
const TRANSACTIONAL = 0x10;
const CONTROL = 0x20;

export function readCommittedRecords(data: Buffer, aborted: readonly { producerId: bigint; firstOffset: bigint }[]): ReadRecord[] {
  const records: ReadRecord[] = [];
  // One producer id (a transactional id keeps it across epochs) may have aborted several transactions here.
  const pendingAborts = [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  const inAbortedTxn = new Set<bigint>();
  let position = 0;
  // A fetch answer may end with a partial batch: stop there.
  while (position + 61 <= data.length) {
    const baseOffset = data.readBigInt64BE(position);
    const length = data.readInt32BE(position + 8);
    const end = position + 12 + length;
    if (end > data.length) break;
    const attributes = data.readInt16BE(position + 21);
    const producerId = data.readBigInt64BE(position + 43);
    const count = data.readInt32BE(position + 57);
    const body = position + 61;
    position = end;
    if (attributes & CONTROL) {
      inAbortedTxn.delete(producerId); // the ABORT (or COMMIT) marker ends that transaction
      continue;
    }
    // As the Java consumer: an aborted transaction begins at its first offset and ends at its producer's next control batch.
    while (pendingAborts.length > 0 && pendingAborts[0].firstOffset <= baseOffset) inAbortedTxn.add(pendingAborts.shift()!.producerId);
    if ((attributes & TRANSACTIONAL) && inAbortedTxn.has(producerId)) continue;
    const compression = attributes & COMPRESSION_MASK;
    if (compression !== 0 && compression !== 1) throw new Error(`checkpoint batch compressed with codec ${compression}; walrelay reads none or gzip`);
    const payload = compression === 1 ? gunzipSync(data.subarray(body, end)) : data.subarray(body, end);
    const cursor = { at: 0 };
    for (let i = 0; i < count; i++) {
      const recordLength = varint(payload, cursor);
      const recordEnd = cursor.at + recordLength;
      cursor.at += 1; // attributes
      varint(payload, cursor); // timestamp delta
      const offsetDelta = varint(payload, cursor);
      const key = text(payload, cursor);
      const value = text(payload, cursor);
      cursor.at = recordEnd; // headers are not needed
      records.push({ offset: baseOffset + BigInt(offsetDelta), key, value });
    }
  }
  return records;
}

/** A zigzag varint (as Kafka writes record fields); values here fit in 32 bits. */
function varint(buffer: Buffer, cursor: { at: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    const byte = buffer[cursor.at++];
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) break;
    shift += 7;
  }
  return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
}

function text(buffer: Buffer, cursor: { at: number }): string | null {
  const length = varint(buffer, cursor);
  if (length < 0) return null;
  const value = buffer.toString('utf8', cursor.at, cursor.at + length);
  cursor.at += length;
  return value;
}
