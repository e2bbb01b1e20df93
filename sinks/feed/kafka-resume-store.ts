// The walrelay_client resume points of a Kafka feed's edges: a compacted
// topic `<feed>.clients` of one partition, key = client name, value = JSON
// { at, topics: topic → last event id sent }. Every edge writes its clients'
// points there (walrelay's idempotent producer, acks=all) and follows the
// topic into memory (walrelay's Fetch code, from the records of the last
// resumeWindowSeconds on), so a lookup is local. A lookup first waits until
// the edge has read the topic up to its end as it is at that moment, so a
// point another edge saved just before it died is seen.
import type { Logger } from 'pino';
import { KafkaProducer, addressedRecord } from '../kafka/protocol/producer.js';
import { PartitionReader } from '../kafka/protocol/partition-reader.js';
import type { ResumeStore, StoredResume } from '../websocket/protocols/realtime/resume-store.js';
import { describeError } from '../../relay/errors.js';
import { ensureFeedTopic } from './kafka-topic.js';
import { protocolSecurity, type KafkaSecurityConfig } from '../kafka/security.js';

/** Names held in memory at most (the oldest are forgotten first), as in the in-process resume points. */
const MAX_NAMES = 10_000;
const FETCH_WAIT_MS = 500;
/** A lookup waits at most this long for the topic to be read to its end; then it answers with what was read. */
const CATCH_UP_MS = 5000;

interface Point {
  at: number;
  topics: Record<string, string>;
}

export class KafkaResumeStore implements ResumeStore {
  readonly topic: string;
  private readonly producer: KafkaProducer;
  private readonly reader: PartitionReader;
  private readonly probe: PartitionReader;
  private readonly points = new Map<string, Point>();
  private next = -1n;
  private readonly waiting = new Set<{ until: bigint; resolve(): void }>();
  private stopped = false;
  private loop: Promise<void> | null = null;
  private topicReady: Promise<void> | null = null;

  constructor(private readonly settings: KafkaSecurityConfig & { brokers: string[]; clientId: string; replicationFactor?: number; feed: string; windowMs: number }, private readonly logger: Logger) {
    this.topic = `${settings.feed}.clients`;
    const options = { brokers: settings.brokers, clientId: settings.clientId, ...protocolSecurity(settings), connectTimeoutMs: 3000, requestTimeoutMs: 10_000 + FETCH_WAIT_MS };
    this.producer = new KafkaProducer({ ...options, compression: 'none', maxRequestBytes: 900_000, maxRequestRecords: 10_000, logger });
    this.reader = new PartitionReader(options, this.topic);
    this.probe = new PartitionReader(options, this.topic);
  }

  /**
   * Creates the topic when missing and connects the producer before the edge
   * serves (so the first clients' points are saved as fast as later ones),
   * then follows the topic in the background. Kafka unreachable: logged, and
   * retried by the follower and by each save.
   */
  async start(): Promise<void> {
    try {
      await this.ensureTopic();
      await this.producer.connect();
    } catch (error) {
      this.logger.warn({ topic: this.topic, err: describeError(error) }, 'edge: the walrelay_client resume points topic is not reachable yet; retrying');
    }
    this.loop = this.follow();
  }

  private ensureTopic(): Promise<void> {
    const { brokers, clientId, replicationFactor, ssl, sasl } = this.settings;
    this.topicReady ??= ensureFeedTopic({ brokers, clientId, replicationFactor, ssl, sasl, topic: this.topic, compact: true }, 10_000, this.logger)
      .catch((error) => { this.topicReady = null; throw error; });
    return this.topicReady;
  }

  async save(points: readonly StoredResume[]): Promise<void> {
    await this.ensureTopic();
    const at = Date.now();
    try {
      await this.producer.send(points.map((point) => addressedRecord(this.topic, point.name, JSON.stringify({ at, topics: point.topics }), [])));
    } catch (error) {
      this.producer.disconnect();
      throw error;
    }
  }

  async load(name: string, windowMs: number): Promise<Record<string, string> | null> {
    const end = await this.probe.end();
    await new Promise<void>((resolve) => {
      if (this.next >= end) return resolve();
      const waiter = { until: end, resolve };
      this.waiting.add(waiter);
      setTimeout(() => { this.waiting.delete(waiter); resolve(); }, CATCH_UP_MS).unref();
    });
    const point = this.points.get(name);
    return point && Date.now() - point.at <= windowMs ? point.topics : null;
  }

  private async follow(): Promise<void> {
    let delay = 100;
    while (!this.stopped) {
      try {
        if (this.next < 0n) {
          await this.ensureTopic();
          // Points older than the window are of no use: start at the first record written since.
          this.next = await this.reader.offsetAt(Date.now() - this.settings.windowMs);
        }
        const fetched = await this.reader.fetch(this.next, FETCH_WAIT_MS);
        for (const record of fetched.records) {
          if (record.key === null || record.value === null) continue;
          this.points.delete(record.key);
          this.points.set(record.key, JSON.parse(record.value) as Point);
          if (this.points.size > MAX_NAMES) this.points.delete(this.points.keys().next().value!);
        }
        this.next = fetched.next;
        for (const waiter of this.waiting) {
          if (this.next < waiter.until) continue;
          this.waiting.delete(waiter);
          waiter.resolve();
        }
        delay = 100;
      } catch (error) {
        if (this.stopped) return;
        this.logger.warn({ topic: this.topic, err: describeError(error), retryInMs: delay }, 'edge: reading the walrelay_client resume points failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(5000, delay * 2);
      }
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.reader.close();
    this.probe.close();
    await this.loop?.catch(() => undefined);
    this.reader.close();
    this.producer.close();
  }
}
