// An edge's side of a Kafka feed (docs/edges.md): the feed is one partition,
// read without a consumer group from the offset this edge needs. At start
// that is the end minus `backlog` (what the rings hold, so `since` works
// after an edge restart and across edges), then every new record in order,
// with long-polling Fetch requests (walrelay's own protocol code,
// sinks/kafka/protocol/partition-reader.ts). Retries, backoff and skipping
// repeated events: feed-follower.ts. When retention removed the offset this
// edge wanted (it was stopped too long), it goes on from the oldest record
// still held, and its clients' older `since` get resume_gap.
import type { Logger } from 'pino';
import type { ChangeEvent } from '../route/event.js';
import { describeError } from '../errors.js';
import { PartitionReader, OFFSET_OUT_OF_RANGE } from '../../sinks/kafka/protocol/partition-reader.js';
import { KafkaResponseError } from '../../sinks/kafka/protocol/messages.js';
import { LAG_COUNT_CAP, type FeedReader } from './feed-reader.js';
import { KafkaFeedHistory } from './kafka-feed-history.js';
import { FeedFollower, type FeedFailure, type HandEntries } from './feed-follower.js';
import { protocolSecurity, type KafkaSecurityConfig } from '../../sinks/kafka/security.js';

/** How long one Fetch waits at the broker for a new record (a long poll); also bounds how late a stop is noticed. */
const FETCH_WAIT_MS = 500;

export interface KafkaFeedSettings {
  kafka: KafkaSecurityConfig & { brokers: string[]; clientId: string };
  name: string;
}

type FeedRecord = { offset: bigint; value: string | null };

export class KafkaFeedReader extends FeedFollower<FeedRecord> implements FeedReader {
  private readonly reader: PartitionReader;
  /** A second reader for the lag probe: the first one is waiting in a long poll most of the time. */
  private readonly probe: PartitionReader;
  readonly history: KafkaFeedHistory;
  private next = 0n;
  protected readonly entryKind = 'a record';

  constructor(private readonly settings: KafkaFeedSettings, logger: Logger, deliver: (events: ChangeEvent[]) => Promise<void>) {
    super(settings.name, logger, deliver);
    const options = { brokers: settings.kafka.brokers, clientId: settings.kafka.clientId, ...protocolSecurity(settings.kafka), connectTimeoutMs: 3000, requestTimeoutMs: 10_000 + FETCH_WAIT_MS };
    this.reader = new PartitionReader(options, settings.name);
    this.probe = new PartitionReader(options, settings.name);
    this.history = new KafkaFeedHistory(options, settings.name, this.origins);
  }

  /** The backlog: from the end minus `backlog` to the end known now. */
  protected async position(backlog: number, hand: HandEntries<FeedRecord>): Promise<Record<string, string>> {
    const { earliest, end } = await this.reader.bounds();
    const from = end - BigInt(backlog);
    this.next = from > earliest ? from : earliest;
    while (this.next < end) {
      const fetched = await this.reader.fetch(this.next, 0);
      if (fetched.next === this.next) break;
      await hand(fetched.records);
      this.next = fetched.next;
    }
    return { offset: String(this.next) };
  }

  protected async readNext(): Promise<readonly FeedRecord[]> {
    const fetched = await this.reader.fetch(this.next, FETCH_WAIT_MS);
    this.next = fetched.next;
    return fetched.records;
  }

  protected valueOf(record: FeedRecord): string {
    return record.value ?? '';
  }

  protected placeOf(record: FeedRecord): Record<string, string> {
    return { offset: String(record.offset) };
  }

  protected describeFailure(error: unknown): FeedFailure {
    return { reason: `feed ${this.settings.name}: ${describeError(error)}`, err: describeError(error) };
  }

  /** Retention removed the next record (the edge was stopped too long): goes on from the oldest still held. */
  protected override async recover(error: unknown): Promise<boolean> {
    if (!(error instanceof KafkaResponseError && error.code === OFFSET_OUT_OF_RANGE)) return false;
    const { earliest } = await this.reader.bounds().catch(() => ({ earliest: this.next }));
    this.logger.warn({ feed: this.settings.name, wanted: String(this.next), oldest: String(earliest) }, 'edge: the feed no longer holds the next entry (retention); going on from the oldest held');
    if (earliest <= this.next) return false;
    this.next = earliest;
    return true;
  }

  async entriesBehind(): Promise<number> {
    const end = await this.probe.end();
    const behind = end - this.next;
    return behind <= 0n ? 0 : Number(behind > BigInt(LAG_COUNT_CAP) ? BigInt(LAG_COUNT_CAP) : behind);
  }

  async stop(): Promise<void> {
    this.halt();
    this.reader.close(); // ends a long poll in progress
    this.probe.close();
    this.history.close();
    await this.ended();
    this.reader.close(); // a request the loop began meanwhile may have reconnected
  }
}
