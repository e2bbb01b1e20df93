// The feed sink (docs/edges.md): every event the relay's websocket sink
// would get, in commit order, appended to one Redis stream that any number
// of `walrelay edge` processes read. Durable like the redis sink: a batch
// counts as delivered (and its LSN may be confirmed) only once Redis
// acknowledged every XADD of it; failures are retried until then. A retried
// batch may append some events twice: edges skip ids they already have.
import type { Logger } from 'pino';
import type { Sink } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { FeedSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { deliverWithRetry } from '../retry.js';
import { encodeFeedEntry } from './entry.js';
import { feedRedisClient, type FeedRedis } from './redis-client.js';

export class FeedSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly client: FeedRedis;
  private closed = false;
  private lastError: string | undefined;

  constructor(private readonly config: FeedSinkConfig, index: number, private readonly logger: Logger) {
    this.name = config.name ?? `feed#${index}`;
    if (!config.redis) {
      throw new WalrelayError('FEED_KAFKA_UNSUPPORTED', `sinks[${index}] (feed): a Kafka feed is not available yet`, { kind: 'config', hint: 'use feed.redis: { url } (docs/edges.md)' });
    }
    this.client = feedRedisClient(config.redis, config.timeoutSeconds * 1000);
    this.client.on('error', (error) => logger.debug({ sink: this.name, err: describeError(error) }, 'feed redis client error'));
  }

  async start(): Promise<void> {
    try {
      await this.client.connect();
      await this.client.ping();
    } catch (error) {
      throw new WalrelayError('FEED_CONNECT', `${this.name}: cannot reach Redis at ${this.config.redis!.url.replace(/\/\/[^@]*@/, '//')}: ${describeError(error)}`, {
        retriable: true, hint: 'check feed sink redis.url and that Redis is running',
      });
    }
  }

  async write(events: readonly ChangeEvent[]): Promise<void> {
    if (events.length === 0) return;
    const entries = events.map(encodeFeedEntry);
    await deliverWithRetry(async () => {
      const pipeline = this.client.pipeline();
      for (const entry of entries) pipeline.xadd(this.config.name, 'MAXLEN', '~', this.config.maxLen, '*', 'e', entry);
      const results = await pipeline.exec();
      const failed = results?.find(([error]) => error);
      if (!results || failed) throw failed?.[0] ?? new Error('pipeline discarded');
    }, {
      sink: this.name, logger: this.logger, isClosed: () => this.closed,
      onFailure: (error) => { this.lastError = describeError(error); },
      onSuccess: () => { this.lastError = undefined; },
    });
  }

  isReady(): boolean {
    return this.client.status === 'ready' && this.lastError === undefined;
  }

  notReadyReason(): string | undefined {
    return this.lastError ?? (this.client.status === 'ready' ? undefined : `redis ${this.client.status}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.client.disconnect();
  }
}
