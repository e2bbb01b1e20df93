// An edge's side of the feed (docs/edges.md): at start the newest `backlog`
// entries (what the rings hold, so `since` works after an edge restart and
// across edges), then every new entry in feed order, XREAD BLOCK from the
// last id read. Retries, backoff and skipping repeated events:
// feed-follower.ts.
import type { Logger } from 'pino';
import type { ChangeEvent } from '../route/event.js';
import { describeError } from '../errors.js';
import { feedRedisClient, type FeedRedis } from '../../sinks/feed/redis-client.js';
import type { FeedHistory } from '../../sinks/websocket/feed-history.js';
import { RedisFeedHistory } from './redis-feed-history.js';
import { FeedFollower, type FeedFailure, type HandEntries } from './feed-follower.js';

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

type StreamEntry = [id: string, fields: string[]];

export class RedisFeedReader extends FeedFollower<StreamEntry> implements FeedReader {
  private readonly client: FeedRedis;
  /** A second connection: the first one is blocked in XREAD most of the time. */
  private readonly probe: FeedRedis;
  readonly history: FeedHistory;
  private lastStreamId = '0-0';
  /** host:port of the feed's Redis, and the last connection error ioredis reported (what a failure names). */
  private readonly address: string;
  private connectionError: string | undefined;
  protected readonly entryKind = 'an entry';

  constructor(private readonly settings: FeedSettings, logger: Logger, deliver: (events: ChangeEvent[]) => Promise<void>) {
    super(settings.name, logger, deliver);
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

  /** Connects and reads the backlog (the newest `backlog` entries). */
  protected async position(backlog: number, hand: HandEntries<StreamEntry>): Promise<Record<string, string>> {
    // lazyConnect: the first connect() is ours; after a failure ioredis reconnects by itself and queues commands meanwhile.
    await Promise.all([this.client, this.probe].map((client) => (client.status === 'wait' ? client.connect() : undefined)));
    if (backlog > 0) {
      const newest = await this.client.xrevrange(this.settings.name, '+', '-', 'COUNT', backlog);
      newest.reverse();
      this.passed(newest);
      await hand(newest);
    }
    return {};
  }

  protected async readNext(): Promise<readonly StreamEntry[]> {
    const reply = await this.client.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.settings.name, this.lastStreamId);
    const entries = reply ? reply.flatMap(([, streamEntries]) => streamEntries) : [];
    this.passed(entries);
    return entries;
  }

  /** Reading goes on after these entries (skipped ones included). */
  private passed(entries: readonly StreamEntry[]): void {
    if (entries.length > 0) this.lastStreamId = entries[entries.length - 1][0];
  }

  protected valueOf([, fields]: StreamEntry): string {
    return fields[fields.indexOf('e') + 1] ?? '';
  }

  protected placeOf([streamId]: StreamEntry): Record<string, string> {
    return { entry: streamId };
  }

  /** A failure in plain words: which Redis, and why (ioredis' own messages name neither). */
  protected describeFailure(error: unknown): FeedFailure {
    const reason = this.connectionError ?? describeError(error);
    const unreachable = this.connectionError !== undefined || /Connection is closed|max retries per request/i.test(describeError(error));
    const described = unreachable ? `feed ${this.settings.name}: Redis at ${this.address} is not reachable (${reason})` : `feed ${this.settings.name}: ${reason}`;
    return { reason: described, err: described };
  }

  /** Entries added to the feed after the last one this edge read (capped at LAG_COUNT_CAP). */
  async entriesBehind(): Promise<number> {
    const after = await this.probe.xrange(this.settings.name, `(${this.lastStreamId}`, '+', 'COUNT', LAG_COUNT_CAP);
    return after.length;
  }

  async stop(): Promise<void> {
    this.halt();
    this.client.disconnect();
    this.probe.disconnect();
    await this.ended();
  }
}
