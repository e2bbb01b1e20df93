// The feed in one Kafka topic of one partition, so that its order is the
// relay's commit order. Records go out through walrelay's own idempotent
// producer (acks=all, sinks/kafka/protocol): a batch counts as delivered
// only once the leader acknowledged all of it, and a retry keeps the
// producer id and sequence numbers, so the broker drops what it already
// has. The topic is created when missing (kafka-topic.ts).
import type { Logger } from 'pino';
import type { FeedSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { KafkaProducer, addressedRecord, type AddressedRecord } from '../kafka/protocol/producer.js';
import { ensureFeedTopic } from './kafka-topic.js';
import { protocolSecurity } from '../kafka/security.js';
import type { FeedWriter } from './writer.js';

type KafkaFeed = NonNullable<FeedSinkConfig['kafka']>;

/** Record bytes per produce request: under the broker's default message.max.bytes (1 MiB). */
const MAX_REQUEST_BYTES = 900_000;

export class KafkaFeedWriter implements FeedWriter {
  private readonly producer: KafkaProducer;
  private topicReady = false;
  /** The batch being delivered and its records, kept across the sink's retries of it. */
  private pending: { entries: readonly string[]; records: AddressedRecord[] } | null = null;
  private problem: string | undefined = 'not connected yet';

  constructor(private readonly config: FeedSinkConfig & { kafka: KafkaFeed }, private readonly sink: string, private readonly logger: Logger) {
    const { brokers, clientId } = config.kafka;
    const timeoutMs = config.timeoutSeconds * 1000;
    this.producer = new KafkaProducer({
      brokers, clientId, ...protocolSecurity(config.kafka), compression: 'none', maxRequestBytes: MAX_REQUEST_BYTES, maxRequestRecords: 10_000,
      connectTimeoutMs: 3000, requestTimeoutMs: timeoutMs, logger: logger.child({ sink }),
    });
  }

  async start(): Promise<void> {
    try {
      await this.ensureTopic();
      await this.producer.connect();
      this.problem = undefined;
    } catch (error) {
      if (error instanceof WalrelayError) throw error;
      this.problem = describeError(error);
      // Like the kafka sink: the relay starts, and the first batch retries until Kafka is there.
      this.logger.warn({ sink: this.sink, err: this.problem }, 'feed: kafka not reachable yet; events wait until it is');
    }
  }

  async append(entries: readonly string[]): Promise<void> {
    // A retry of the same batch must hand the producer the same records: it then resumes the same numbered batches.
    if (this.pending?.entries !== entries) this.pending = { entries, records: entries.map((entry) => addressedRecord(this.config.name, null, entry, [])) };
    try {
      await this.ensureTopic();
      await this.producer.send(this.pending.records);
      this.pending = null;
      this.problem = undefined;
    } catch (error) {
      this.problem = describeError(error);
      this.producer.disconnect(); // fresh connections for the retry; the producer id and sequence numbers stay
      throw error;
    }
  }

  get connectionProblem(): string | undefined {
    return this.problem;
  }

  private async ensureTopic(): Promise<void> {
    if (this.topicReady) return;
    await ensureFeedTopic({ ...this.config.kafka, topic: this.config.name }, this.config.timeoutSeconds * 1000, this.logger.child({ sink: this.sink }));
    this.topicReady = true;
  }

  async close(): Promise<void> {
    this.producer.close();
  }
}
