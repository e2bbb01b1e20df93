// The unit of idempotent delivery: a record batch for one partition with its
// sequence numbers fixed once. Kafka's broker remembers, per producer id and
// partition, the sequence numbers of the last five batches it appended; a
// batch re-sent with the same producer id, epoch and base sequence is
// recognised and not appended twice. So a retry must re-send exactly these
// batches, in this order, with these numbers (the Java client's rules).
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Writer } from './encoding.js';
import { writeRecords, type OutgoingRecord } from './record-batch.js';
import { lz4Frame } from './lz4.js';

const gzipAsync = promisify(gzip);

/** Record framing and the three walrelay headers. */
const RECORD_OVERHEAD = 120;

export interface PartitionBatch {
  topic: string;
  partition: number;
  records: OutgoingRecord[];
  /** Approximate bytes on the wire, for sizing requests. */
  bytes: number;
  baseSequence: number;
  /** Fixed at creation so a re-sent batch is byte-identical but for the CRC-free header fields. */
  timestamp: number;
  /** The compressed records, made once; null when uncompressed. */
  compressed: Buffer | null;
  /** Kafka's codec id of `compressed`: 0 none, 1 gzip, 3 lz4. */
  codec: number;
  acknowledged: boolean;
}

/** `topic\0partition`: the key of a partition's sequence counter and batch queue. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

/** Approximate bytes of a record on the wire, for sizing requests. */
export function wireBytes(record: OutgoingRecord): number {
  return Math.max(record.valueBytes, 0) + Math.max(record.keyBytes, 0) + RECORD_OVERHEAD;
}

/** Kafka's sequence numbers wrap from Integer.MAX_VALUE to 0 (DefaultRecordBatch.incrementSequence). */
export function nextSequence(sequence: number, increment: number): number {
  return sequence > 0x7fffffff - increment ? increment - (0x7fffffff - sequence) - 1 : sequence + increment;
}

/**
 * Splits one partition's records (in send order) into batches of at most
 * `maxRecords` records and about `maxBytes` bytes, numbering them from the
 * partition's next sequence in `sequences` (which it advances).
 */
export function makeBatches(
  topic: string, partition: number, records: OutgoingRecord[],
  limits: { maxBytes: number; maxRecords: number }, sequences: Map<string, number>,
): PartitionBatch[] {
  const key = partitionKey(topic, partition);
  const batches: PartitionBatch[] = [];
  const timestamp = Date.now();
  let start = 0;
  while (start < records.length) {
    let end = start;
    let bytes = 0;
    while (end < records.length && end - start < limits.maxRecords && (end === start || bytes + wireBytes(records[end]) <= limits.maxBytes)) bytes += wireBytes(records[end++]);
    const baseSequence = sequences.get(key) ?? 0;
    const slice = start === 0 && end === records.length ? records : records.slice(start, end);
    sequences.set(key, nextSequence(baseSequence, slice.length));
    batches.push({ topic, partition, records: slice, bytes, baseSequence, timestamp, compressed: null, codec: 0, acknowledged: false });
    start = end;
  }
  return batches;
}

/**
 * After the producer id changed (a fatal sequence error), numbers the
 * batches not yet acknowledged afresh from 0 per partition, in their order.
 */
export function renumber(queues: Iterable<PartitionBatch[]>, sequences: Map<string, number>): void {
  sequences.clear();
  for (const queue of queues) {
    for (const batch of queue) {
      if (batch.acknowledged) continue;
      const key = partitionKey(batch.topic, batch.partition);
      batch.baseSequence = sequences.get(key) ?? 0;
      sequences.set(key, nextSequence(batch.baseSequence, batch.records.length));
    }
  }
}

export type Compression = 'none' | 'gzip' | 'lz4';

export async function compressBatch(batch: PartitionBatch, compression: Compression): Promise<void> {
  if (compression === 'none') return;
  const writer = new Writer();
  writeRecords(writer, batch.records);
  const records = writer.buffer.subarray(0, writer.offset);
  batch.compressed = compression === 'gzip' ? await gzipAsync(records) : lz4Frame(records);
  batch.codec = compression === 'gzip' ? 1 : 3;
}
