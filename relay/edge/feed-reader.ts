// An edge's side of the feed (docs/edges.md): at start the newest `backlog`
// entries (what the rings hold, so `since` works after an edge restart and
// across edges), then every new entry in feed order, XREAD BLOCK from the
// last id read. A batch the relay retried may hold an event twice: ids sort
// in delivery order (contract section 3), so an id not above the last one
// handed on is a duplicate and skipped.
import type { Logger } from 'pino';
import type { ChangeEvent } from '../route/event.js';
import { describeError } from '../errors.js';
import { decodeFeedEntry } from '../../sinks/feed/entry.js';
import { OriginDecoder } from '../../sinks/feed/entry-origin.js';
import { feedRedisClient, type FeedRedis } from '../../sinks/feed/redis-client.js';
import type { FeedHistory } from '../../sinks/websocket/feed-history.js';
import { RedisFeedHistory } from './redis-feed-history.js';

const BLOCK_MS = 1000;
const READ_COUNT = 1000;
/** Entries counted when measuring how far behind the feed's tail the edge is (beyond: reported as this many). */
export const LAG_COUNT_CAP = 10_000;

export interface FeedSettings {
  redis: { url: string; cluster: boolean; password?: string };
  name: string;
}

/** An edge's reader of the feed, wherever it lives (Redis: this file; Kafka: kafka-feed-reader.ts). */
export interface FeedReader {
  readonly ready: boolean;
  readonly notReadyReason: string | undefined;
  /** The feed read back from an event id, for clients resuming from further back than the rings. */
  readonly history: FeedHistory;
  /** Fills the rings with the newest `backlog` entries, then follows the feed in the background. */
  start(backlog: number): Promise<void>;
  /** Entries added to the feed after the last one this edge read (capped at LAG_COUNT_CAP). */
  entriesBehind(): Promise<number>;
  stop(): Promise<void>;
}

export class RedisFeedReader implements FeedReader {
  private readonly client: FeedRedis;
  /** A second connection: the first one is blocked in XREAD most of the time. */
  private readonly probe: FeedRedis;
  readonly history: FeedHistory;
  private lastStreamId = '0-0';
  private lastEventId = '';
  /** Origins (feed sink debeziumOrigins) for websocket sinks with format: debezium. */
  private readonly origins = new OriginDecoder();
  private stopped = false;
  private failure: string | undefined = 'not connected yet';
  private loop: Promise<void> | null = null;
  /** host:port of the feed's Redis, and the last connection error ioredis reported (what a failure names). */
  private readonly address: string;
  private connectionError: string | undefined;

  constructor(private readonly settings: FeedSettings, private readonly logger: Logger, private readonly deliver: (events: ChangeEvent[]) => Promise<void>) {
    this.client = feedRedisClient(settings.redis, 10_000, { blocking: true });
    this.probe = feedRedisClient(settings.redis, 10_000);
    this.history = new RedisFeedHistory(this.probe, settings.name, this.origins);
    for (const client of [this.client, this.probe]) {
      client.on('error', (error) => {
        this.connectionError = describeError(error);
        logger.debug({ err: this.connectionError }, 'feed redis client error');
      });
      client.on('ready', () => { this.connectionError = undefined; });
    }
    const url = new URL(settings.redis.url);
    this.address = `${url.hostname || '127.0.0.1'}:${url.port || 6379}`;
  }

  get ready(): boolean {
    return this.failure === undefined;
  }

  get notReadyReason(): string | undefined {
    return this.failure;
  }

  /**
   * Fills the rings with the newest `backlog` entries, then follows the feed
   * in the background. When Redis cannot be reached yet the edge starts all
   * the same: /readyz says why, and the backlog is read once it can be.
   */
  async start(backlog: number): Promise<void> {
    let positioned = true;
    try {
      await this.position(backlog);
    } catch (error) {
      positioned = false;
      this.failure = this.describe(error);
      this.logger.warn({ feed: this.settings.name, err: this.failure }, 'edge: cannot read the feed yet; retrying');
    }
    this.loop = this.follow(backlog, positioned);
  }

  /** Connects and reads the backlog (the newest `backlog` entries). */
  private async position(backlog: number): Promise<void> {
    // lazyConnect: the first connect() is ours; after a failure ioredis reconnects by itself and queues commands meanwhile.
    await Promise.all([this.client, this.probe].map((client) => (client.status === 'wait' ? client.connect() : undefined)));
    if (backlog > 0) {
      const newest = await this.client.xrevrange(this.settings.name, '+', '-', 'COUNT', backlog);
      newest.reverse();
      await this.hand(newest);
    }
    this.failure = undefined;
    this.logger.info({ feed: this.settings.name, lastEventId: this.lastEventId || null }, 'edge: following the feed');
  }

  /** A failure in plain words: which Redis, and why (ioredis' own messages name neither). */
  private describe(error: unknown): string {
    const reason = this.connectionError ?? describeError(error);
    const unreachable = this.connectionError !== undefined || /Connection is closed|max retries per request/i.test(describeError(error));
    return unreachable ? `feed ${this.settings.name}: Redis at ${this.address} is not reachable (${reason})` : `feed ${this.settings.name}: ${reason}`;
  }

  private async follow(backlog: number, positioned: boolean): Promise<void> {
    let delay = 100;
    while (!this.stopped) {
      try {
        if (!positioned) {
          await this.position(backlog);
          positioned = true;
        }
        const reply = await this.client.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.settings.name, this.lastStreamId);
        if (this.failure !== undefined) this.logger.info({ feed: this.settings.name }, 'edge: feed reachable again');
        this.failure = undefined;
        delay = 100;
        if (reply) for (const [, entries] of reply) await this.hand(entries);
      } catch (error) {
        if (this.stopped) return;
        this.failure = this.describe(error);
        this.logger.warn({ feed: this.settings.name, err: this.failure, retryInMs: delay }, 'edge: reading the feed failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(5000, delay * 2);
      }
    }
  }

  private async hand(entries: [id: string, fields: string[]][]): Promise<void> {
    const events: ChangeEvent[] = [];
    for (const [streamId, fields] of entries) {
      this.lastStreamId = streamId;
      const entry = fields[fields.indexOf('e') + 1];
      let event: ChangeEvent;
      try {
        event = decodeFeedEntry(entry ?? '', this.origins);
      } catch (error) {
        this.logger.error({ feed: this.settings.name, entry: streamId, err: (error as Error).message }, 'edge: skipping an entry that is not a walrelay feed entry');
        continue;
      }
      if (event.id <= this.lastEventId) continue;
      this.lastEventId = event.id;
      events.push(event);
    }
    if (events.length > 0) await this.deliver(events);
  }

  /** Entries added to the feed after the last one this edge read (capped at LAG_COUNT_CAP). */
  async entriesBehind(): Promise<number> {
    const after = await this.probe.xrange(this.settings.name, `(${this.lastStreamId}`, '+', 'COUNT', LAG_COUNT_CAP);
    return after.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.client.disconnect();
    this.probe.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
