// The requests of Kafka transactions and of reading back walrelay's
// checkpoint, in classic (non-flexible) versions that Kafka 2.4 through 4.x
// accept: FindCoordinator v1, InitProducerId v1 (with a transactional id),
// AddPartitionsToTxn v1, EndTxn v1, ListOffsets v4, Fetch v4. Field lists
// follow the protocol guide at kafka.apache.org/protocol.
import type { Writer, Reader } from './encoding.js';

export const TXN_API = {
  fetch: { key: 1, version: 4 },
  listOffsets: { key: 2, version: 4 },
  findCoordinator: { key: 10, version: 1 },
  initProducerId: { key: 22, version: 1 },
  addPartitionsToTxn: { key: 24, version: 1 },
  endTxn: { key: 26, version: 1 },
} as const;

export function writeFindTransactionCoordinator(writer: Writer, transactionalId: string): void {
  writer.string(transactionalId).int8(1); // key type 1: transaction
}

export function readFindCoordinator(reader: Reader): { errorCode: number; nodeId: number; host: string; port: number } {
  reader.int32(); // throttle_time_ms
  const errorCode = reader.int16();
  reader.string(); // error_message
  const nodeId = reader.int32();
  const host = reader.string() ?? '';
  const port = reader.int32();
  return { errorCode, nodeId, host, port };
}

export function writeTransactionalInitProducerId(writer: Writer, transactionalId: string, transactionTimeoutMs: number): void {
  writer.string(transactionalId).int32(transactionTimeoutMs);
}

export interface TxnIdentity {
  transactionalId: string;
  producerId: bigint;
  producerEpoch: number;
}

export function writeAddPartitionsToTxn(writer: Writer, identity: TxnIdentity, partitions: Map<string, number[]>): void {
  writer.string(identity.transactionalId).int64(identity.producerId).int16(identity.producerEpoch);
  writer.int32(partitions.size);
  for (const [topic, indexes] of partitions) {
    writer.string(topic).int32(indexes.length);
    for (const index of indexes) writer.int32(index);
  }
}

/** The first partition error code of an AddPartitionsToTxn answer (0 when all were added). */
export function readAddPartitionsToTxn(reader: Reader): number {
  reader.int32(); // throttle_time_ms
  let worst = 0;
  reader.array((r) => {
    r.string();
    r.array((p) => {
      p.int32();
      const code = p.int16();
      if (code !== 0 && worst === 0) worst = code;
    });
  });
  return worst;
}

export function writeEndTxn(writer: Writer, identity: TxnIdentity, commit: boolean): void {
  writer.string(identity.transactionalId).int64(identity.producerId).int16(identity.producerEpoch).int8(commit ? 1 : 0);
}

export function readEndTxn(reader: Reader): number {
  reader.int32(); // throttle_time_ms
  return reader.int16();
}

/** ListOffsets for the end of one partition: with read_committed, the last stable offset. */
export function writeListEndOffset(writer: Writer, topic: string, partition: number): void {
  writeListOffset(writer, topic, partition, LATEST);
}

/** ListOffsets timestamps: the end of the partition, or its first offset still held (retention). */
export const LATEST = -1n;
export const EARLIEST = -2n;

export function writeListOffset(writer: Writer, topic: string, partition: number, timestamp: bigint): void {
  writer.int32(-1).int8(1); // replica id: a client; isolation: read_committed
  writer.int32(1).string(topic).int32(1).int32(partition).int32(-1).int64(timestamp); // no leader epoch
}

export function readListEndOffset(reader: Reader): { errorCode: number; offset: bigint } {
  reader.int32(); // throttle_time_ms
  let result = { errorCode: 3, offset: -1n };
  reader.array((r) => {
    r.string();
    r.array((p) => {
      p.int32();
      const errorCode = p.int16();
      p.int64(); // timestamp
      const offset = p.int64();
      p.int32(); // leader epoch
      result = { errorCode, offset };
    });
  });
  return result;
}

/** With maxWaitMs > 0 the broker holds the request until a record arrives or the wait ends (a long poll). */
export function writeFetch(writer: Writer, topic: string, partition: number, offset: bigint, maxBytes: number, maxWaitMs = 0): void {
  writer.int32(-1).int32(maxWaitMs).int32(maxWaitMs > 0 ? 1 : 0).int32(maxBytes).int8(1); // replica, max wait, min bytes, max bytes, read_committed
  writer.int32(1).string(topic).int32(1).int32(partition).int64(offset).int32(maxBytes);
}

export interface FetchedPartition {
  errorCode: number;
  highWatermark: bigint;
  lastStableOffset: bigint;
  /** Transactions whose records in this answer were aborted: producer id → first offset. */
  aborted: { producerId: bigint; firstOffset: bigint }[];
  records: Buffer;
}

export function readFetch(reader: Reader): FetchedPartition {
  reader.int32(); // throttle_time_ms
  let result: FetchedPartition = { errorCode: 3, highWatermark: -1n, lastStableOffset: -1n, aborted: [], records: Buffer.alloc(0) };
  reader.array((r) => {
    r.string();
    r.array((p) => {
      p.int32();
      const errorCode = p.int16();
      const highWatermark = p.int64();
      const lastStableOffset = p.int64();
      const aborted = p.array((a) => ({ producerId: a.int64(), firstOffset: a.int64() })) ?? [];
      const records = p.bytes() ?? Buffer.alloc(0);
      result = { errorCode, highWatermark, lastStableOffset, aborted, records };
    });
  });
  return result;
}
