// The feed in one Kafka topic of one partition, so that its order is the
// relay's commit order. Records go out through walrelay's own idempotent
// producer (acks=all, sinks/kafka/protocol): a batch counts as delivered
// only once the leader acknowledged all of it, and a retry keeps the
// producer id and sequence numbers, so the broker drops what it already
// has. The topic is created when missing (kafkajs admin: the cold path, as
// in the kafka sink); an existing topic with more than one partition is
// refused, since its order would not be total.
import { Kafka, logLevel, type Admin } from 'kafkajs';
import type { Logger } from 'pino';
import type { FeedSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { KafkaProducer, addressedRecord } from '../kafka/protocol/producer.js';
import type { FeedWriter } from './writer.js';

type KafkaFeed = NonNullable<FeedSinkConfig['kafka']>;

/** Record bytes per produce request: under the broker's default message.max.bytes (1 MiB). */
const MAX_REQUEST_BYTES = 900_000;

export class KafkaFeedWriter implements FeedWriter {
  private readonly producer: KafkaProducer;
  private readonly kafka: Kafka;
  private topicReady = false;
  private problem: string | undefined = 'not connected yet';

  constructor(private readonly config: FeedSinkConfig & { kafka: KafkaFeed }, private readonly sink: string, private readonly logger: Logger) {
    const { brokers, clientId } = config.kafka;
    const timeoutMs = config.timeoutSeconds * 1000;
    this.producer = new KafkaProducer({
      brokers, clientId, compression: 'none', maxRequestBytes: MAX_REQUEST_BYTES, maxRequestRecords: 10_000,
      connectTimeoutMs: 3000, requestTimeoutMs: timeoutMs, logger: logger.child({ sink }),
    });
    this.kafka = new Kafka({
      clientId, brokers, connectionTimeout: 3000, requestTimeout: timeoutMs, retry: { retries: 2 }, logLevel: logLevel.WARN,
      logCreator: () => ({ level, log }) => logger.debug({ sink, kafkajs: log.message, level }, 'kafkajs'),
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
    try {
      await this.ensureTopic();
      await this.producer.send(entries.map((entry) => addressedRecord(this.config.name, null, entry, [])));
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

  /** Creates the one-partition topic when missing; refuses one with several partitions. */
  private async ensureTopic(): Promise<void> {
    if (this.topicReady) return;
    const admin: Admin = this.kafka.admin();
    await admin.connect();
    try {
      const topic = this.config.name;
      if (!(await admin.listTopics()).includes(topic)) {
        const { brokers } = await admin.describeCluster();
        const replicationFactor = this.config.kafka.replicationFactor ?? Math.min(3, brokers.length);
        await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor }], waitForLeaders: true })
          .catch((error) => { if (!/already exists/i.test((error as Error).message)) throw error; });
        this.logger.info({ sink: this.sink, topic, replicationFactor }, 'feed: created the kafka feed topic (one partition)');
      }
      const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      if (metadata.partitions.length !== 1) {
        throw new WalrelayError('FEED_KAFKA_PARTITIONS', `${this.sink}: topic ${topic} has ${metadata.partitions.length} partitions; the feed needs exactly one (its order is the commit order)`, {
          hint: 'delete the topic (walrelay creates it with one partition) or name another one with the sink\'s name',
        });
      }
      this.topicReady = true;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.producer.close();
  }
}
