// Kafka: one record per event, topic from the template, key = JSON of the
// event key, partitioned like the Java client's default partitioner
// (murmur2), so Java and librdkafka producers that use it agree on where a
// key lives; headers walrelay-op / -lsn / -id.
//
// Records go out through walrelay's own idempotent producer
// (./protocol): kafkajs's producer built several objects and buffers per
// record and spent four times the CPU of everything else in the relay (see
// the README's benchmarks). kafkajs stays for the cold path: listing and
// creating topics.
//
// Durability: acks=all, idempotent producer, and a batch counts as delivered
// only when Kafka acknowledged all of it. Retries keep the producer id and
// sequence numbers (protocol/producer.ts), so the broker drops batches
// it already has: a lost answer, a leader change or a broker outage cost no
// duplicate. A walrelay restart still re-sends what was not yet confirmed to
// PostgreSQL (at-least-once, same walrelay-id), never out of order, never
// dropped.
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { kafkaTls, kafkajsSecurity } from './security.js';
import type { Logger } from 'pino';
import type { Sink } from '../sink.js';
import { EncodedRowChange, keyJson, type ChangeEvent } from '../../relay/route/event.js';
import type { KafkaSinkConfig } from '../../config/schema.js';
import { WalrelayError } from '../../relay/errors.js';
import { deliverWithRetry } from '../retry.js';
import { NameTemplate } from '../stream-name.js';
import { debeziumRecords, debeziumTemplates, encodeEvent, type FormatContext } from '../formats.js';
import { domainRecordOf } from '../../relay/stages/domain-event.js';
import { KafkaProducer, addressedRecord, type AddressedRecord } from './protocol/producer.js';
import { ExactlyOnceWriter, type EventRecords } from './exactly-once.js';
import { PlatformaticKafkaProducer } from './platformatic.js';
import type { SinkContext } from '../sink.js';

/** The walrelay headers' names, and the ops' values, as bytes: a row change written as bytes has only byte headers (no string measured or copied per record). */
const OP_HEADER = Buffer.from('walrelay-op');
const LSN_HEADER = Buffer.from('walrelay-lsn');
const ID_HEADER = Buffer.from('walrelay-id');
const OP_VALUES: Record<string, Buffer> = { insert: Buffer.from('insert'), update: Buffer.from('update'), delete: Buffer.from('delete') };

/** Record bytes per produce request: under the broker's default message.max.bytes (1 MiB), so large rows go in smaller requests. */
const MAX_REQUEST_BYTES = 900_000;

export class KafkaSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly kafka: Kafka;
  private readonly topics: NameTemplate;
  private readonly producer: KafkaProducer;
  private admin: Admin | null = null;
  private readonly knownTopics = new Set<string>();
  private closed = false;
  private failing = false;
  private lastFailure: string | undefined;
  private readonly timeoutKey: string;
  /** Exactly-once mode only (`exactlyOnce: true`). */
  private readonly exactlyOnce: ExactlyOnceWriter | null = null;
  /** `producer: platformatic` only (an experiment for the benchmark). */
  private readonly platformatic: PlatformaticKafkaProducer | null = null;

  private readonly formatContext: FormatContext;

  constructor(private readonly config: KafkaSinkConfig, index: number, private readonly logger: Logger, context: SinkContext = { slot: 'walrelay' }) {
    this.name = config.name ?? `kafka#${index}`;
    this.timeoutKey = `sinks[${index}].timeoutSeconds`;
    const transactionalId = config.transactionalId ?? `walrelay-${context.slot}-${this.name}`;
    this.formatContext = { database: context.database, debezium: config.debezium };
    const debezium = config.format === 'debezium' ? debeziumTemplates(this.formatContext) : undefined;
    this.topics = new NameTemplate(config.topic ?? debezium?.table ?? 'walrelay.{schema}.{table}', config.messageTopic ?? debezium?.message ?? 'walrelay.messages', kafkaTopicName);
    this.kafka = new Kafka({
      clientId: config.clientId,
      brokers: config.brokers,
      ...kafkajsSecurity(config),
      connectionTimeout: 3000,
      requestTimeout: config.timeoutSeconds * 1000,
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
      logLevel: logLevel.WARN,
      logCreator: () => ({ level, log }) => {
        // kafkajs reports every failed attempt; the sink logs the outcome once per retry.
        logger.debug({ sink: this.name, kafkajs: log.message, level }, 'kafkajs');
      },
    });
    this.producer = new KafkaProducer({
      brokers: config.brokers,
      clientId: config.clientId,
      tls: kafkaTls(config),
      sasl: config.sasl,
      compression: config.compression,
      maxRequestBytes: MAX_REQUEST_BYTES,
      maxRequestRecords: config.batch.size,
      connectTimeoutMs: 3000,
      requestTimeoutMs: config.timeoutSeconds * 1000,
      logger: logger.child({ sink: this.name }),
      ...(config.exactlyOnce ? { transactionalId } : {}),
    });
    if (config.producer === 'platformatic') {
      if (config.exactlyOnce) throw new WalrelayError('CONFIG_INVALID', `${this.name}: producer: platformatic does not support exactlyOnce`, { hint: 'remove one of them' });
      this.platformatic = new PlatformaticKafkaProducer(config.brokers, config.clientId);
    }
    if (config.exactlyOnce) this.exactlyOnce = new ExactlyOnceWriter(this.producer, config.checkpointTopic, transactionalId, logger.child({ sink: this.name }));
  }

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (error) {
      this.failing = true;
      this.lastFailure = describeKafkaFailure(error, this.name, this.timeoutKey);
      this.logger.warn({ sink: this.name, err: this.lastFailure }, 'kafka not reachable yet; events wait until it is');
    }
  }

  isReady(): boolean {
    return (this.platformatic ?? this.producer).connected && !this.failing;
  }

  notReadyReason(): string | undefined {
    return this.lastFailure;
  }

  async write(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    // Encoded before the first await, so the decoded events are not kept
    // alive while Kafka answers or across retries (see RedisSink.write).
    const exactlyOnce = this.exactlyOnce;
    const perEvent = exactlyOnce ? events.map((event) => ({ id: event.id, lsn: event.lsn, records: this.addRecords(event, []) })) : [];
    const records: AddressedRecord[] = [];
    if (!exactlyOnce) for (const event of events) this.addRecords(event, records);
    await deliverWithRetry(() => (exactlyOnce ? this.sendExactlyOnce(exactlyOnce, perEvent) : this.send(records)), {
      sink: this.name,
      logger: this.logger,
      isClosed: () => this.closed,
      signal,
      permanent: (error) => permanentKafkaError(error),
      describe: (error) => describeKafkaFailure(error, this.name, this.timeoutKey),
      onFailure: (error) => { this.failing = true; this.lastFailure = describeKafkaFailure(error, this.name, this.timeoutKey); void this.disconnect(); },
      onSuccess: () => { this.failing = false; this.lastFailure = undefined; },
    });
  }

  private async connect(): Promise<void> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    await (this.platformatic ?? this.producer).connect();
  }

  /**
   * After a failure: fresh connections. The producer keeps its id, sequence
   * numbers and unfinished batches, so the retry is recognised by the broker.
   */
  private async disconnect(): Promise<void> {
    const admin = this.admin;
    this.admin = null;
    this.knownTopics.clear(); // a topic deleted meanwhile is reported as KAFKA_TOPIC_MISSING, not retried forever
    this.producer.disconnect();
    this.platformatic?.disconnect();
    await admin?.disconnect().catch(() => undefined);
  }

  /**
   * `batch.lingerMs` waits before sending a write smaller than `batch.size`, so
   * that batches arriving meanwhile are merged into the next write (fewer,
   * larger produce requests at the cost of that much latency).
   */
  private async send(records: readonly AddressedRecord[]): Promise<void> {
    const { size, lingerMs } = this.config.batch;
    if (lingerMs > 0 && records.length < size) await new Promise((resolve) => setTimeout(resolve, lingerMs));
    await this.connect();
    for (const topic of new Set(records.map((record) => record.topic))) await this.ensureTopic(topic);
    if (this.platformatic) await this.platformatic.send(records);
    else await this.producer.send(records);
  }

  /** One transaction: the events Kafka does not have yet and the checkpoint (exactly-once.ts). */
  private async sendExactlyOnce(writer: ExactlyOnceWriter, events: readonly EventRecords[]): Promise<void> {
    await this.connect();
    for (const topic of new Set(events.flatMap((event) => event.records.map((record) => record.topic)))) await this.ensureTopic(topic);
    await this.ensureCheckpointTopic();
    await writer.deliver(events);
  }

  /** The compacted checkpoint topic: one partition, replicated like the cluster allows (up to 3). */
  private async ensureCheckpointTopic(): Promise<void> {
    const topic = this.config.checkpointTopic;
    if (this.knownTopics.has(topic)) return;
    if (!(await this.admin!.listTopics()).includes(topic)) {
      const { brokers } = await this.admin!.describeCluster();
      await this.admin!.createTopics({
        topics: [{ topic, numPartitions: 1, replicationFactor: Math.min(3, brokers.length), configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
        waitForLeaders: true,
      }).catch((error) => { if (!/already exists/i.test((error as Error).message)) throw error; });
      this.logger.info({ sink: this.name, topic }, 'created kafka checkpoint topic (compacted)');
    }
    this.knownTopics.add(topic);
  }

  /** Appends an event's records to `records` (and returns it): one, or with the Debezium format a delete and its tombstone (a key change: delete, tombstone, create). */
  private addRecords(event: ChangeEvent, records: AddressedRecord[]): AddressedRecord[] {
    const domain = domainRecordOf(event);
    if (domain) {
      records.push(addressedRecord(domain.destination, domain.key, domain.value, domain.headers.flat()));
    } else if (this.config.format === 'walrelay' && event instanceof EncodedRowChange) {
      // A row change written as bytes (event-bytes.ts) goes in as those bytes: value, key, lsn and id (no string decoded, measured or flattened).
      const value = event.chunk.subarray(event.start, event.end);
      records.push(addressedRecord(this.topics.nameFor(event), event.keyBytes, value, [OP_HEADER, OP_VALUES[event.op], LSN_HEADER, event.lsnBytes, ID_HEADER, event.idBytes]));
    } else {
      const headers = ['walrelay-op', event.op, 'walrelay-lsn', event.lsn, 'walrelay-id', event.id];
      const topic = this.topics.nameFor(event);
      if (this.config.format === 'debezium') for (const record of debeziumRecords(event, this.formatContext)) records.push(addressedRecord(topic, record.key, record.value, headers));
      else records.push(addressedRecord(topic, keyJson(event), encodeEvent(event, this.config.format), headers));
    }
    return records;
  }

  private async ensureTopic(topic: string): Promise<void> {
    if (this.knownTopics.has(topic)) return;
    const existing = new Set(await this.admin!.listTopics());
    if (!existing.has(topic)) {
      const create = this.config.createTopics;
      if (create === false) {
        throw new WalrelayError('KAFKA_TOPIC_MISSING', `topic ${topic} does not exist on ${this.config.brokers.join(',')} (sink ${this.name})`, {
          hint: 'create the topic, or set createTopics: { partitions, replicationFactor } on the sink',
        });
      }
      await this.admin!.createTopics({ topics: [{ topic, numPartitions: create.partitions, replicationFactor: create.replicationFactor }], waitForLeaders: true });
      this.logger.info({ sink: this.name, topic, partitions: create.partitions }, 'created kafka topic');
    }
    this.knownTopics.add(topic);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.disconnect();
    this.producer.close();
  }
}

/**
 * Kafka allows [a-zA-Z0-9._-] in topic names; PostgreSQL allows almost any
 * character in a quoted name. Like Debezium's topic-name sanitizer, every
 * other character becomes "_": table "Order Items" → walrelay.public.Order_Items.
 */
export function kafkaTopicName(name: string): string {
  return name.replace(/[^a-zA-Z0-9._-]/g, '_');
}

/** A name Kafka refuses whatever the retry (too long, "." or ".."): which topic, when kafkajs names it. */
function invalidTopic(error: unknown): string | null {
  const errors = [error, ...((error as { errors?: unknown[] }).errors ?? [])] as { type?: string; topic?: string; message?: string }[];
  const invalid = errors.find((item) => item?.type === 'INVALID_TOPIC_EXCEPTION');
  if (!invalid) return null;
  return invalid.topic ?? (error as { topic?: string }).topic ?? invalid.message ?? 'a topic';
}

function permanentKafkaError(error: unknown): Error | null {
  if (error instanceof WalrelayError) return error.retriable ? null : error;
  const topic = invalidTopic(error);
  if (topic !== null) {
    return new WalrelayError('KAFKA_TOPIC_INVALID', `Kafka refused the topic name ${topic} (INVALID_TOPIC_EXCEPTION: at most 249 characters of a-z A-Z 0-9 . _ -, not "." or "..")`, {
      hint: 'change the sink\'s topic (or messageTopic) template so that every name is valid, or leave the table out of this sink with tables; see docs/sinks/kafka.md',
    });
  }
  const type = (error as { type?: string }).type;
  if (type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE') {
    return new WalrelayError('KAFKA_RECORD_TOO_LARGE', `Kafka refused a record as too large (${type})`, {
      hint: "raise the topic's max.message.bytes (and the broker's message.max.bytes), or leave the table out of this sink with tables",
    });
  }
  const kafkajsAuthFailure = (error as Error).name === 'KafkaJSSASLAuthenticationError';
  if (kafkajsAuthFailure || type === 'TOPIC_AUTHORIZATION_FAILED' || type === 'CLUSTER_AUTHORIZATION_FAILED' || type === 'SASL_AUTHENTICATION_FAILED' || type === 'UNSUPPORTED_SASL_MECHANISM') {
    return new WalrelayError('KAFKA_AUTH', (error as Error).message, { hint: 'check sasl credentials and the ACLs for producing to the topic' });
  }
  return null;
}

/** A TLS failure's message names OpenSSL's view of it, a timeout the broker: add which settings fix it. */
function describeKafkaFailure(error: unknown, sink: string, timeoutKey: string): string {
  const message = (error as Error).message;
  if (/no response within|timed out|Connection timeout/i.test(message)) {
    return `${message} (the broker is hung or unreachable; walrelay reconnects and sends the batch again; raise ${timeoutKey} if it is only slow)`;
  }
  if (!/certificate|SSL routines|self[- ]signed|unable to verify/i.test(message)) return message;
  return `${message} (TLS with the broker failed: check ${sink}'s ssl.ca for the broker's certificate, and ssl.cert and ssl.key when the broker requires client certificates)`;
}
