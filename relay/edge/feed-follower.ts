// What an edge's feed readers share, whatever the feed lives in (subclasses:
// feed-reader.ts for Redis, kafka-feed-reader.ts for Kafka): start even when
// the feed cannot be read yet (/readyz says why), read the backlog once it
// can be, then follow the feed with a backoff on failures, and hand on each
// event once. A batch the relay retried may hold an event twice: ids sort in
// delivery order (contract section 3), so an id not above the last one
// handed on is a duplicate and skipped.
import type { Logger } from 'pino';
import type { ChangeEvent } from '../route/event.js';
import { decodeFeedEntry } from '../../sinks/feed/entry.js';
import { OriginDecoder } from '../../sinks/feed/entry-origin.js';

/** Hands entries read from the feed on as events. */
export type HandEntries<Entry> = (entries: readonly Entry[]) => Promise<void>;

/** A failure in words: for /readyz (names the feed), and for the log line's err field. */
export interface FeedFailure {
  reason: string;
  err: string;
}

const FIRST_RETRY_MS = 100;
const LONGEST_RETRY_MS = 5000;

/** A feed reader, but for the parts that differ by transport (the abstract members). */
export abstract class FeedFollower<Entry> {
  /** Origins (feed sink debeziumOrigins) for websocket sinks with format: debezium. */
  protected readonly origins = new OriginDecoder();
  private stopped = false;
  private failure: string | undefined = 'not connected yet';
  private loop: Promise<void> | null = null;
  private lastEventId = '';

  constructor(private readonly feed: string, protected readonly logger: Logger, private readonly deliver: (events: ChangeEvent[]) => Promise<void>) {}

  /** How the skip log line names an entry ('an entry', 'a record'). */
  protected abstract readonly entryKind: string;
  /** Connects and hands on the newest `backlog` entries; returns what the 'following the feed' log line adds. */
  protected abstract position(backlog: number, hand: HandEntries<Entry>): Promise<Record<string, string>>;
  /** The next entries, waited for a while (a long poll; none when none came); reading goes on after them. */
  protected abstract readNext(): Promise<readonly Entry[]>;
  /** The encoded event an entry holds. */
  protected abstract valueOf(entry: Entry): string;
  /** Where an entry stands, for the log line that skips it. */
  protected abstract placeOf(entry: Entry): Record<string, string>;
  protected abstract describeFailure(error: unknown): FeedFailure;

  /** Mends a failure at once where the transport can (true: read again without waiting). */
  protected async recover(_error: unknown): Promise<boolean> {
    return false;
  }

  get ready(): boolean {
    return this.failure === undefined;
  }

  get notReadyReason(): string | undefined {
    return this.failure;
  }

  /** Reads the backlog, then follows the feed in the background; when the feed cannot be read yet, the loop reads the backlog once it can. */
  async start(backlog: number): Promise<void> {
    let positioned = true;
    try {
      await this.takePosition(backlog);
    } catch (error) {
      positioned = false;
      const { reason, err } = this.describeFailure(error);
      this.failure = reason;
      this.logger.warn({ feed: this.feed, err }, 'edge: cannot read the feed yet; retrying');
    }
    this.loop = this.follow(backlog, positioned);
  }

  /** Ends the loop: called before the transport's connections close, so that their errors are not reported as failures. */
  protected halt(): void {
    this.stopped = true;
  }

  /** Resolves once the loop has ended (after halt). */
  protected async ended(): Promise<void> {
    await this.loop?.catch(() => undefined);
  }

  private async takePosition(backlog: number): Promise<void> {
    const place = await this.position(backlog, this.hand);
    this.failure = undefined;
    this.logger.info({ feed: this.feed, ...place, lastEventId: this.lastEventId || null }, 'edge: following the feed');
  }

  private async follow(backlog: number, positioned: boolean): Promise<void> {
    let delay = FIRST_RETRY_MS;
    while (!this.stopped) {
      try {
        if (!positioned) {
          await this.takePosition(backlog);
          positioned = true;
        }
        const entries = await this.readNext();
        if (this.failure !== undefined) this.logger.info({ feed: this.feed }, 'edge: feed reachable again');
        this.failure = undefined;
        delay = FIRST_RETRY_MS;
        await this.hand(entries);
      } catch (error) {
        if (this.stopped) return;
        if (await this.recover(error)) continue;
        const { reason, err } = this.describeFailure(error);
        this.failure = reason;
        this.logger.warn({ feed: this.feed, err, retryInMs: delay }, 'edge: reading the feed failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(LONGEST_RETRY_MS, delay * 2);
      }
    }
  }

  private readonly hand = async (entries: readonly Entry[]): Promise<void> => {
    const events: ChangeEvent[] = [];
    for (const entry of entries) {
      let event: ChangeEvent;
      try {
        event = decodeFeedEntry(this.valueOf(entry), this.origins);
      } catch (error) {
        this.logger.error({ feed: this.feed, ...this.placeOf(entry), err: (error as Error).message }, `edge: skipping ${this.entryKind} that is not a walrelay feed entry`);
        continue;
      }
      if (event.id <= this.lastEventId) continue;
      this.lastEventId = event.id;
      events.push(event);
    }
    if (events.length > 0) await this.deliver(events);
  };
}
