// An edge's side of a Kafka feed (docs/edges.md): the feed is one partition,
// read without a consumer group from the offset this edge needs. At start
// that is the end minus `backlog` (what the rings hold, so `since` works
// after an edge restart and across edges), then every new record in order,
// with long-polling Fetch requests (walrelay's own protocol code,
// sinks/kafka/protocol/partition-reader.ts). A batch the relay retried may
// hold an event twice: ids sort in delivery order, so an id not above the
// last one handed on is skipped. When retention removed the offset this
// edge wanted (it was stopped too long), it goes on from the oldest record
// still held, and its clients' older `since` get resume_gap.
import type { Logger } from 'pino';
import type { ChangeEvent } from '../route/event.js';
import { describeError } from '../errors.js';
import { decodeFeedEntry } from '../../sinks/feed/entry.js';
import { OriginDecoder } from '../../sinks/feed/entry-origin.js';
import { PartitionReader, OFFSET_OUT_OF_RANGE } from '../../sinks/kafka/protocol/partition-reader.js';
import { KafkaResponseError } from '../../sinks/kafka/protocol/messages.js';
import { LAG_COUNT_CAP, type FeedReader } from './feed-reader.js';
import { KafkaFeedHistory } from './kafka-feed-history.js';
import { protocolSecurity, type KafkaSecurityConfig } from '../../sinks/kafka/security.js';

/** How long one Fetch waits at the broker for a new record (a long poll); also bounds how late a stop is noticed. */
const FETCH_WAIT_MS = 500;

export interface KafkaFeedSettings {
  kafka: KafkaSecurityConfig & { brokers: string[]; clientId: string };
  name: string;
}

export class KafkaFeedReader implements FeedReader {
  private readonly reader: PartitionReader;
  /** A second reader for the lag probe: the first one is waiting in a long poll most of the time. */
  private readonly probe: PartitionReader;
  readonly history: KafkaFeedHistory;
  private next = 0n;
  private lastEventId = '';
  /** Origins (feed sink debeziumOrigins) for websocket sinks with format: debezium. */
  private readonly origins = new OriginDecoder();
  private stopped = false;
  private failure: string | undefined = 'not connected yet';
  private loop: Promise<void> | null = null;

  constructor(private readonly settings: KafkaFeedSettings, private readonly logger: Logger, private readonly deliver: (events: ChangeEvent[]) => Promise<void>) {
    const options = { brokers: settings.kafka.brokers, clientId: settings.kafka.clientId, ...protocolSecurity(settings.kafka), connectTimeoutMs: 3000, requestTimeoutMs: 10_000 + FETCH_WAIT_MS };
    this.reader = new PartitionReader(options, settings.name);
    this.probe = new PartitionReader(options, settings.name);
    this.history = new KafkaFeedHistory(options, settings.name, this.origins);
  }

  get ready(): boolean {
    return this.failure === undefined;
  }

  get notReadyReason(): string | undefined {
    return this.failure;
  }

  /**
   * Reads the backlog into the rings, then follows the feed in the background.
   * When the topic cannot be read yet (Kafka down, or no relay has created
   * it) the edge starts all the same: /readyz says why, and the backlog is
   * read as soon as it can be.
   */
  async start(backlog: number): Promise<void> {
    let positioned = true;
    try {
      await this.position(backlog);
      this.failure = undefined;
    } catch (error) {
      positioned = false;
      this.failure = `feed ${this.settings.name}: ${describeError(error)}`;
      this.logger.warn({ feed: this.settings.name, err: describeError(error) }, 'edge: cannot read the feed yet; retrying');
    }
    this.loop = this.follow(backlog, positioned);
  }

  /** The backlog: from the end minus `backlog` to the end known now. */
  private async position(backlog: number): Promise<void> {
    const { earliest, end } = await this.reader.bounds();
    const from = end - BigInt(backlog);
    this.next = from > earliest ? from : earliest;
    while (this.next < end) {
      const fetched = await this.reader.fetch(this.next, 0);
      if (fetched.next === this.next) break;
      await this.hand(fetched.records);
      this.next = fetched.next;
    }
    this.logger.info({ feed: this.settings.name, offset: String(this.next), lastEventId: this.lastEventId || null }, 'edge: following the feed');
  }

  private async follow(backlog: number, positioned: boolean): Promise<void> {
    let delay = 100;
    while (!this.stopped) {
      try {
        if (!positioned) {
          await this.position(backlog);
          positioned = true;
          this.failure = undefined;
        }
        const fetched = await this.reader.fetch(this.next, FETCH_WAIT_MS);
        if (this.failure !== undefined) this.logger.info({ feed: this.settings.name }, 'edge: feed reachable again');
        this.failure = undefined;
        delay = 100;
        await this.hand(fetched.records);
        this.next = fetched.next;
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof KafkaResponseError && error.code === OFFSET_OUT_OF_RANGE) {
          const { earliest } = await this.reader.bounds().catch(() => ({ earliest: this.next }));
          this.logger.warn({ feed: this.settings.name, wanted: String(this.next), oldest: String(earliest) }, 'edge: the feed no longer holds the next entry (retention); going on from the oldest held');
          if (earliest > this.next) { this.next = earliest; continue; }
        }
        this.failure = `feed ${this.settings.name}: ${describeError(error)}`;
        this.logger.warn({ feed: this.settings.name, err: describeError(error), retryInMs: delay }, 'edge: reading the feed failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(5000, delay * 2);
      }
    }
  }

  private async hand(records: readonly { offset: bigint; value: string | null }[]): Promise<void> {
    const events: ChangeEvent[] = [];
    for (const record of records) {
      let event: ChangeEvent;
      try {
        event = decodeFeedEntry(record.value ?? '', this.origins);
      } catch (error) {
        this.logger.error({ feed: this.settings.name, offset: String(record.offset), err: (error as Error).message }, 'edge: skipping a record that is not a walrelay feed entry');
        continue;
      }
      if (event.id <= this.lastEventId) continue;
      this.lastEventId = event.id;
      events.push(event);
    }
    if (events.length > 0) await this.deliver(events);
  }

  async entriesBehind(): Promise<number> {
    const end = await this.probe.end();
    const behind = end - this.next;
    return behind <= 0n ? 0 : Number(behind > BigInt(LAG_COUNT_CAP) ? BigInt(LAG_COUNT_CAP) : behind);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reader.close(); // ends a long poll in progress
    this.probe.close();
    this.history.close();
    await this.loop?.catch(() => undefined);
    this.reader.close(); // a request the loop began meanwhile may have reconnected
  }
}
