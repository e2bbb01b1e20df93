// The feed sink (docs/edges.md): every event the relay's websocket sink
// would get, in commit order, appended to one Redis stream or one Kafka
// topic of one partition that any number of `walrelay edge` processes read.
// Durable like the redis and kafka sinks: a batch counts as delivered (and
// its LSN may be confirmed) only once the server acknowledged all of it;
// failures are retried until then. A retried batch may append some events
// twice: edges skip ids they already have.
import type { Logger } from 'pino';
import type { Sink } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { FeedSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { deliverWithRetry } from '../retry.js';
import { encodeFeedEntry } from './entry.js';
import type { FeedWriter } from './writer.js';
import { RedisFeedWriter } from './redis-writer.js';
import { KafkaFeedWriter } from './kafka-writer.js';

export class FeedSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly writer: FeedWriter;
  private closed = false;
  private lastError: string | undefined;
  private readonly withOrigins: boolean;

  constructor(config: FeedSinkConfig, index: number, private readonly logger: Logger, private readonly database?: string) {
    this.withOrigins = config.debeziumOrigins;
    this.name = config.name ?? `feed#${index}`;
    if (config.redis) this.writer = new RedisFeedWriter({ ...config, redis: config.redis }, this.name, logger);
    else if (config.kafka) this.writer = new KafkaFeedWriter({ ...config, kafka: config.kafka }, this.name, logger);
    else throw new WalrelayError('CONFIG_INVALID', `sinks[${index}] (feed): a feed sink needs redis or kafka`, { kind: 'config', hint: 'docs/edges.md' });
  }

  start(): Promise<void> {
    return this.writer.start();
  }

  async write(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    if (events.length === 0) return;
    const entries = events.map((event) => encodeFeedEntry(event, this.withOrigins, this.database));
    await deliverWithRetry(() => this.writer.append(entries), {
      sink: this.name, logger: this.logger, isClosed: () => this.closed, signal,
      permanent: (error) => (error instanceof WalrelayError && !error.retriable ? error : null),
      onFailure: (error) => { this.lastError = describeError(error); },
      onSuccess: () => { this.lastError = undefined; },
    });
  }

  isReady(): boolean {
    return this.notReadyReason() === undefined;
  }

  notReadyReason(): string | undefined {
    return this.lastError ?? this.writer.connectionProblem;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writer.close();
  }
}
