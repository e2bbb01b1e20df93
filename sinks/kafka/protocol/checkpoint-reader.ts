// Reads back the newest committed record of one key from one partition, as a
// read_committed consumer sees it: walrelay's exactly-once checkpoint. It
// looks at the last few records before the partition's last stable offset
// first and reaches further back only when the key is not among them (the
// partition is shared by the checkpoints of other slots).
import type { KafkaConnection } from './connection.js';
import { KafkaResponseError } from './messages.js';
import { TXN_API, writeListEndOffset, readListEndOffset, writeFetch, readFetch } from './transaction-messages.js';
import { readCommittedRecords, type ReadRecord } from './record-batch-reader.js';

const FETCH_BYTES = 1 << 20;

export async function readLastCommittedValue(leader: KafkaConnection, topic: string, partition: number, key: string): Promise<string | null> {
  const end = readListEndOffset(await leader.request(TXN_API.listOffsets, (w) => writeListEndOffset(w, topic, partition)));
  if (end.errorCode !== 0) throw new KafkaResponseError(end.errorCode, `end offset of ${topic}[${partition}]`);
  let window = 64n;
  let until = end.offset;
  while (until > 0n) {
    const from = until > window ? until - window : 0n;
    const records = await readRange(leader, topic, partition, from, until);
    const mine = records.filter((record) => record.key === key);
    if (mine.length > 0) return mine[mine.length - 1].value;
    until = from;
    window *= 4n;
  }
  return null;
}

/** Every committed record with an offset in [from, until). */
async function readRange(leader: KafkaConnection, topic: string, partition: number, from: bigint, until: bigint): Promise<ReadRecord[]> {
  const records: ReadRecord[] = [];
  let next = from;
  while (next < until) {
    const fetched = readFetch(await leader.request(TXN_API.fetch, (w) => writeFetch(w, topic, partition, next, FETCH_BYTES)));
    if (fetched.errorCode !== 0) throw new KafkaResponseError(fetched.errorCode, `reading ${topic}[${partition}] at ${next}`);
    const batch = readCommittedRecords(fetched.records, fetched.aborted);
    if (fetched.records.length === 0) break; // nothing readable below the last stable offset any more
    for (const record of batch) if (record.offset >= from && record.offset < until) records.push(record);
    // Control markers and aborted batches occupy offsets too: move past the last byte of the answer's last whole batch.
    const last = lastBatchEnd(fetched.records);
    if (last <= next) break;
    next = last;
  }
  return records;
}

/** The offset after the last complete batch in a fetch answer (-1 when it holds none). */
export function lastBatchEnd(data: Buffer): bigint {
  let position = 0;
  let end = -1n;
  while (position + 61 <= data.length) {
    const length = data.readInt32BE(position + 8);
    if (position + 12 + length > data.length) break;
    end = data.readBigInt64BE(position) + BigInt(data.readInt32BE(position + 23)) + 1n;
    position += 12 + length;
  }
  return end;
}
