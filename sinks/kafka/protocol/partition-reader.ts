// Reads one partition from a given offset, as a consumer without a group:
// the edge feed (docs/edges.md) is one partition that each edge reads from
// the offset it needs. Long-polling Fetch requests to the partition's
// leader; a moved leader or a lost connection reloads the metadata and asks
// again. Offsets, not groups: nothing is committed to Kafka.
import { KafkaCluster, type ClusterOptions } from './cluster.js';
import { KafkaResponseError } from './messages.js';
import { TXN_API, writeListOffset, readListEndOffset, writeFetch, readFetch, LATEST, EARLIEST } from './transaction-messages.js';
import { readCommittedRecords, type ReadRecord } from './record-batch-reader.js';
import { lastBatchEnd } from './checkpoint-reader.js';

const LEADER_NOT_AVAILABLE = 5;
/** Fetch error codes after which the leader is looked up again. */
const MOVED = new Set([3, 5, 6, 74, 75]); // unknown topic or partition, leader not available, not leader, fenced / unknown leader epoch
export const OFFSET_OUT_OF_RANGE = 1;

export interface FetchedRecords {
  records: ReadRecord[];
  /** The offset to fetch next. */
  next: bigint;
  /** The partition's end (the offset the next appended record gets). */
  end: bigint;
}

export class PartitionReader {
  private readonly cluster: KafkaCluster;

  constructor(options: ClusterOptions, readonly topic: string, readonly partition = 0) {
    this.cluster = new KafkaCluster(options);
  }

  /** The first offset still held (older records were removed by retention) and the end. */
  async bounds(): Promise<{ earliest: bigint; end: bigint }> {
    const [earliest, end] = [await this.listOffset(EARLIEST), await this.listOffset(LATEST)];
    return { earliest, end };
  }

  async end(): Promise<bigint> {
    return this.listOffset(LATEST);
  }

  /** The offset of the first record written at or after `timestampMs`; the end when there is none. */
  async offsetAt(timestampMs: number): Promise<bigint> {
    const offset = await this.listOffset(BigInt(Math.max(0, Math.floor(timestampMs))));
    return offset < 0n ? this.end() : offset;
  }

  /**
   * The records from `offset` on, waiting up to `maxWaitMs` for one to be
   * appended when there is none yet. Throws KafkaResponseError
   * OFFSET_OUT_OF_RANGE when retention removed `offset`.
   */
  async fetch(offset: bigint, maxWaitMs: number, maxBytes = 1 << 20): Promise<FetchedRecords> {
    const fetched = await this.onLeader(async (leader) => {
      const answer = readFetch(await leader.request(TXN_API.fetch, (w) => writeFetch(w, this.topic, this.partition, offset, maxBytes, maxWaitMs)));
      if (answer.errorCode !== 0) throw new KafkaResponseError(answer.errorCode, `reading ${this.topic}[${this.partition}] at ${offset}`);
      return answer;
    });
    const records = readCommittedRecords(fetched.records, fetched.aborted).filter((record) => record.offset >= offset);
    const after = lastBatchEnd(fetched.records);
    return { records, next: after > offset ? after : offset, end: fetched.lastStableOffset };
  }

  private async listOffset(timestamp: bigint): Promise<bigint> {
    return this.onLeader(async (leader) => {
      const answer = readListEndOffset(await leader.request(TXN_API.listOffsets, (w) => writeListOffset(w, this.topic, this.partition, timestamp)));
      if (answer.errorCode !== 0) throw new KafkaResponseError(answer.errorCode, `offsets of ${this.topic}[${this.partition}]`);
      return answer.offset;
    });
  }

  /** Runs `request` on the partition's leader; on a moved leader or a broken connection, once more after reloading the metadata. */
  private async onLeader<T>(request: (leader: Awaited<ReturnType<KafkaCluster['connectionTo']>>) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        if (!this.cluster.isFresh(this.topic) || this.cluster.leaderOf(this.topic, this.partition) < 0) await this.cluster.loadMetadata([this.topic]);
        const leader = this.cluster.leaderOf(this.topic, this.partition);
        if (leader < 0) throw new KafkaResponseError(LEADER_NOT_AVAILABLE, `${this.topic}[${this.partition}]`);
        return await request(await this.cluster.connectionTo(leader));
      } catch (error) {
        const moved = error instanceof KafkaResponseError ? MOVED.has(error.code) : true;
        if (!moved || attempt > 0) throw error;
        this.cluster.disconnect(); // forgets the metadata too: the next attempt looks the leader up again
      }
    }
  }

  close(): void {
    this.cluster.disconnect();
  }
}
