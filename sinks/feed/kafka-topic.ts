// Creates a one-partition topic of the Kafka feed when missing (kafkajs
// admin: the cold path, as in the kafka sink) and refuses an existing one
// with several partitions, whose order would not be total.
import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import { WalrelayError } from '../../relay/errors.js';
import { kafkajsSecurity, type KafkaSecurityConfig } from '../kafka/security.js';

export interface FeedTopic extends KafkaSecurityConfig {
  brokers: string[];
  clientId: string;
  topic: string;
  /** Default: the number of brokers, at most 3. */
  replicationFactor?: number;
  /** A compacted topic (the walrelay_client resume points) instead of one deleted by retention (the feed). */
  compact?: boolean;
}

export async function ensureFeedTopic(settings: FeedTopic, timeoutMs: number, logger: Logger): Promise<void> {
  const { brokers, clientId, topic } = settings;
  const admin = new Kafka({
    clientId, brokers, ...kafkajsSecurity(settings), connectionTimeout: 3000, requestTimeout: timeoutMs, retry: { retries: 2 }, logLevel: logLevel.WARN,
    logCreator: () => ({ level, log }) => logger.debug({ topic, kafkajs: log.message, level }, 'kafkajs'),
  }).admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      const replicationFactor = settings.replicationFactor ?? Math.min(3, (await admin.describeCluster()).brokers.length);
      const configEntries = settings.compact ? [{ name: 'cleanup.policy', value: 'compact' }] : [];
      await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor, configEntries }], waitForLeaders: true })
        .catch((error) => { if (!/already exists/i.test((error as Error).message)) throw error; });
      logger.info({ topic, replicationFactor, compact: settings.compact ?? false }, 'feed: created a kafka topic (one partition)');
    }
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    if (metadata.partitions.length !== 1) {
      throw new WalrelayError('FEED_KAFKA_PARTITIONS', `topic ${topic} has ${metadata.partitions.length} partitions; the feed needs exactly one (its order is the commit order)`, {
        hint: 'delete the topic (walrelay creates it with one partition) or use another feed name',
      });
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
