// Reading a Kafka feed back from an event id (sinks/websocket/feed-history.ts),
// for clients that resume from further back than an edge's ring. The feed is
// one partition and event ids sort in delivery order: a binary search over
// offsets (one Fetch per step; the records a Fetch returns narrow it further)
// finds a record at or before the point, the anchor; reading goes on from it
// in Fetches of CHUNK_BYTES. A Fetch refused with OFFSET_OUT_OF_RANGE means
// retention removed what follows the client's point: a gap.
import { decodeFeedEntry } from '../../sinks/feed/entry.js';
import type { OriginDecoder } from '../../sinks/feed/entry-origin.js';
import { PartitionReader, OFFSET_OUT_OF_RANGE } from '../../sinks/kafka/protocol/partition-reader.js';
import type { ClusterOptions } from '../../sinks/kafka/protocol/cluster.js';
import { KafkaResponseError } from '../../sinks/kafka/protocol/messages.js';
import type { ReadRecord } from '../../sinks/kafka/protocol/record-batch-reader.js';
import type { ChangeEvent } from '../route/event.js';
import type { FeedChunk, FeedCursor, FeedHistory } from '../../sinks/websocket/feed-history.js';

/** Bytes asked for per Fetch (the broker returns at least one whole record batch, up to the relay's ~900 KB). */
const SEARCH_BYTES = 1;
const CHUNK_BYTES = 256 * 1024;

/** The record's event; with its origin (for format: debezium) when `origins` is given, as when reading for a client. */
function eventOf(record: ReadRecord, origins?: OriginDecoder): ChangeEvent | null {
  try {
    return decodeFeedEntry(record.value ?? '', origins);
  } catch {
    return null; // not a walrelay feed entry: skipped, as the edge's reader skips it
  }
}

/** A record whose event is at or before `afterId` (a record that is no event counts as before: it is skipped). */
function atOrBefore(record: ReadRecord, afterId: string): boolean {
  const event = eventOf(record);
  return event === null || event.id <= afterId;
}

export class KafkaFeedHistory implements FeedHistory {
  /** One connection to the leader for every catch-up of this edge, apart from the follower's long polls. */
  private readonly reader: PartitionReader;

  constructor(options: ClusterOptions, topic: string, private readonly origins: OriginDecoder) {
    this.reader = new PartitionReader(options, topic);
  }

  async open(afterId: string): Promise<FeedCursor | null> {
    const { earliest, end } = await this.reader.bounds();
    const records = await this.recordsFrom(earliest, end);
    // The feed must hold a record at or before the point, else what came between may be gone.
    if (records === null || records.length === 0 || !atOrBefore(records[0], afterId)) return null;
    // lo: the offset of a record at or before the point; hi: an offset from which every record is after it (or the end).
    let lo = records[0].offset;
    let hi = end;
    const narrow = (fetched: ReadRecord[]): boolean => {
      for (const record of fetched) {
        if (!atOrBefore(record, afterId)) {
          hi = record.offset;
          return true;
        }
        lo = record.offset;
      }
      return false;
    };
    if (!narrow(records)) {
      while (hi - lo > 1n) {
        const mid = lo + (hi - lo) / 2n;
        const fetched = await this.recordsFrom(mid, end);
        if (fetched === null) return null;
        if (fetched.length === 0 || !atOrBefore(fetched[0], afterId)) {
          hi = mid;
          continue;
        }
        if (narrow(fetched)) break;
      }
    }
    return new KafkaFeedCursor(this.reader, this.origins, lo, afterId);
  }

  /** The records of the first batch at or after `offset` ([] at the end); null when retention removed `offset`. */
  private async recordsFrom(offset: bigint, end: bigint): Promise<ReadRecord[] | null> {
    if (offset >= end) return [];
    try {
      return (await this.reader.fetch(offset, 0, SEARCH_BYTES)).records;
    } catch (error) {
      if (error instanceof KafkaResponseError && error.code === OFFSET_OUT_OF_RANGE) return null;
      throw error;
    }
  }

  close(): void {
    this.reader.close();
  }
}

class KafkaFeedCursor implements FeedCursor {
  /** Records fetched and not yet handed out: at most one Fetch's worth. */
  private buffered: ReadRecord[] = [];
  private atEnd = false;

  constructor(private readonly reader: PartitionReader, private readonly origins: OriginDecoder, private next_: bigint, public lastId: string) {}

  async next(count: number): Promise<FeedChunk | null> {
    if (this.buffered.length === 0) {
      try {
        const fetched = await this.reader.fetch(this.next_, 0, CHUNK_BYTES);
        this.buffered = fetched.records;
        this.next_ = fetched.next;
        this.atEnd = fetched.next >= fetched.end;
      } catch (error) {
        if (error instanceof KafkaResponseError && error.code === OFFSET_OUT_OF_RANGE) return null;
        throw error;
      }
    }
    const taken = this.buffered.splice(0, count);
    const events: ChangeEvent[] = [];
    for (const record of taken) {
      const event = eventOf(record, this.origins);
      // An event appended again (a retried batch, a relay restart) is not above the last one read: skipped, as live.
      if (event === null || event.id <= this.lastId) continue;
      this.lastId = event.id;
      events.push(event);
    }
    return { events, atEnd: this.atEnd && this.buffered.length === 0 };
  }
}
