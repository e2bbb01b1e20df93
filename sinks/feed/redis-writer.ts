// The feed in one Redis stream: each batch is one pipeline of XADD
// (MAXLEN ~ maxLen), acknowledged as a whole or retried by the sink.
import type { Logger } from 'pino';
import type { FeedSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { feedRedisClient, type FeedRedis } from './redis-client.js';
import type { FeedWriter } from './writer.js';

export class RedisFeedWriter implements FeedWriter {
  private readonly client: FeedRedis;

  constructor(private readonly config: FeedSinkConfig & { redis: NonNullable<FeedSinkConfig['redis']> }, private readonly sink: string, logger: Logger) {
    this.client = feedRedisClient(config.redis, config.timeoutSeconds * 1000);
    this.client.on('error', (error) => logger.debug({ sink, err: describeError(error) }, 'feed redis client error'));
  }

  async start(): Promise<void> {
    try {
      await this.client.connect();
      await this.client.ping();
    } catch (error) {
      throw new WalrelayError('FEED_CONNECT', `${this.sink}: cannot reach Redis at ${this.config.redis.url.replace(/\/\/[^@]*@/, '//')}: ${describeError(error)}`, {
        retriable: true, hint: 'check feed sink redis.url and that Redis is running',
      });
    }
  }

  async append(entries: readonly string[]): Promise<void> {
    const pipeline = this.client.pipeline();
    for (const entry of entries) pipeline.xadd(this.config.name, 'MAXLEN', '~', this.config.maxLen, '*', 'e', entry);
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error('pipeline discarded');
  }

  get connectionProblem(): string | undefined {
    return this.client.status === 'ready' ? undefined : `redis ${this.client.status}`;
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
