// The Kafka sink's data path: an idempotent producer (acks=all) that writes
// each send as one Produce request per partition leader, record batches
// encoded straight into the request buffer.
//
// Failure model, kept deliberately simple: any error (connection, timeout,
// error code) fails the whole send; the caller resets the producer and sends
// everything again under a fresh producer id. Records that had landed appear
// twice with identical content (at-least-once); nothing is dropped or
// reordered, because a send covers a prefix of the stream and the next send
// starts only after it succeeded.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type tls from 'node:tls';
import { KafkaConnection } from './connection.js';
import { partitionForKey } from './checksums.js';
import { writeRecords, writeRecordBatch, type OutgoingRecord } from './record-batch.js';
import { Writer, utf8Length } from './encoding.js';
import type { SaslCredentials } from './sasl.js';
import {
  API, KafkaResponseError, type BrokerAddress, type TopicMetadata,
  writeMetadataRequest, readMetadataResponse,
  writeInitProducerIdRequest, readInitProducerIdResponse, readProduceResponse,
} from './messages.js';

const gzipAsync = promisify(gzip);
const DUPLICATE_SEQUENCE_NUMBER = 46;
const LEADER_NOT_AVAILABLE = 5;

export interface ProducerOptions {
  brokers: readonly string[];
  clientId: string;
  tls?: tls.ConnectionOptions;
  sasl?: SaslCredentials;
  gzip: boolean;
  /** Request size bound: keeps each batch under the broker's message.max.bytes (1 MiB by default). */
  maxRequestBytes: number;
  maxRequestRecords: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
}

export interface AddressedRecord extends OutgoingRecord {
  topic: string;
}

/** A record for `topic`, its UTF-8 lengths measured once (for sizing requests and for encoding). */
export function addressedRecord(topic: string, key: string | null, value: string | null, headers: readonly string[]): AddressedRecord {
  return { topic, key, keyBytes: key === null ? -1 : utf8Length(key), value, valueBytes: value === null ? -1 : Buffer.byteLength(value), headers };
}

/** The records bound for one partition leader, with their partitions. */
interface LeaderRecords {
  records: AddressedRecord[];
  partitions: number[];
}

/** topic → partition → records in send order: the body of one Produce request. */
type TopicPartitions = Map<string, Map<number, OutgoingRecord[]>>;

/** Topic metadata is reloaded after this long (as the Java client's metadata.max.age.ms), so added partitions are used. */
const METADATA_MAX_AGE_MS = 5 * 60_000;
/** Requests pipelined per broker connection; Kafka keeps idempotence for up to five. */
const MAX_IN_FLIGHT = 5;
/** Record framing and the three walrelay headers. */
const RECORD_OVERHEAD = 120;

export class KafkaProducer {
  private bootstrap: KafkaConnection | null = null;
  private readonly connections = new Map<number, Promise<KafkaConnection>>();
  private readonly brokers = new Map<number, BrokerAddress>();
  private readonly topics = new Map<string, TopicMetadata & { loadedAt: number }>();
  private identity: { producerId: bigint; producerEpoch: number } | null = null;
  /** Next sequence number per `topic\0partition`, as the broker expects it for this producer id. */
  private readonly sequences = new Map<string, number>();
  private nextUnkeyedPartition = 0;

  constructor(private readonly options: ProducerOptions) {}

  get connected(): boolean {
    return this.identity !== null && this.bootstrap !== null && !this.bootstrap.broken;
  }

  /** Connects to the first reachable bootstrap broker and obtains a producer id. */
  async connect(): Promise<void> {
    if (this.connected) return;
    this.reset();
    const failures: string[] = [];
    for (const broker of this.options.brokers) {
      const separator = broker.lastIndexOf(':');
      try {
        this.bootstrap = await this.open(broker.slice(0, separator), Number(broker.slice(separator + 1)));
        break;
      } catch (error) {
        if (error instanceof KafkaResponseError) throw error; // authentication refused: another broker will say the same
        failures.push((error as Error).message);
      }
    }
    if (!this.bootstrap) throw new Error(`no Kafka broker reachable (${failures.join('; ')})`);
    const response = readInitProducerIdResponse(await this.bootstrap.request(API.initProducerId, (w) => writeInitProducerIdRequest(w, 60_000)));
    if (response.errorCode !== 0) throw new KafkaResponseError(response.errorCode, 'InitProducerId');
    this.identity = { producerId: response.producerId, producerEpoch: response.producerEpoch };
  }

  /**
   * Delivers `records`; resolves once every partition leader acknowledged them
   * with acks=all. Each leader gets requests of at most `maxRequestBytes` and
   * `maxRequestRecords`, up to MAX_IN_FLIGHT of them pipelined on its connection.
   */
  async send(records: readonly AddressedRecord[]): Promise<void> {
    await this.connect();
    const now = Date.now();
    const fresh = (topic: string) => now - (this.topics.get(topic)?.loadedAt ?? -Infinity) < METADATA_MAX_AGE_MS;
    const stale = [...new Set(records.map((record) => record.topic))].filter((topic) => !fresh(topic));
    if (stale.length > 0) await this.loadMetadata(stale);
    const byLeader = new Map<number, LeaderRecords>();
    for (const record of records) {
      const metadata = this.topics.get(record.topic)!;
      const partitions = metadata.leaders.length;
      const partition = record.key === null ? this.nextUnkeyedPartition++ % partitions : partitionForKey(record.key, partitions);
      const leader = metadata.leaders[partition];
      if (leader === undefined || leader < 0) throw new KafkaResponseError(LEADER_NOT_AVAILABLE, `${record.topic}[${partition}]`);
      let routed = byLeader.get(leader);
      if (!routed) byLeader.set(leader, (routed = { records: [], partitions: [] }));
      routed.records.push(record);
      routed.partitions.push(partition);
    }
    await Promise.all([...byLeader].map(([leader, routed]) => this.produceTo(leader, routed)));
  }

  private async produceTo(leader: number, routed: LeaderRecords): Promise<void> {
    const connection = await this.connectionTo(leader);
    const inFlight: Promise<void>[] = [];
    const { maxRequestBytes, maxRequestRecords } = this.options;
    const { records } = routed;
    let start = 0;
    while (start < records.length) {
      let end = start;
      let bytes = 0;
      while (end < records.length && end - start < maxRequestRecords && (end === start || bytes + wireBytes(records[end]) <= maxRequestBytes)) bytes += wireBytes(records[end++]);
      const request = groupByPartition(routed, start, end);
      start = end;
      const compressed = this.options.gzip ? await compressAll(request) : null;
      if (inFlight.length >= MAX_IN_FLIGHT) await inFlight.shift();
      inFlight.push(this.produceRequest(connection, request, compressed, bytes));
      // Awaited below. After a failed batch the broker refuses later ones of that partition (sequence gap).
      inFlight[inFlight.length - 1].catch(() => undefined);
    }
    await Promise.all(inFlight);
  }

  /** Encodes and sends one Produce request now (reserving its sequence numbers); resolves when it is acknowledged. */
  private async produceRequest(connection: KafkaConnection, request: TopicPartitions, compressed: Map<readonly OutgoingRecord[], Buffer> | null, sizeHint: number): Promise<void> {
    const { producerId, producerEpoch } = this.identity!;
    const timestamp = Date.now();
    const response = connection.request(API.produce, (w) => {
      w.string(null).int16(-1).int32(this.options.requestTimeoutMs); // no transactional id, acks=all, timeout
      w.int32(request.size);
      for (const [topic, partitions] of request) {
        w.string(topic).int32(partitions.size);
        for (const [partition, records] of partitions) {
          w.int32(partition);
          const sizePosition = w.reserveInt32();
          const key = `${topic}\0${partition}`;
          const baseSequence = this.sequences.get(key) ?? 0;
          this.sequences.set(key, nextSequence(baseSequence, records.length));
          writeRecordBatch(w, { producerId, producerEpoch, baseSequence, timestamp, codec: compressed ? 1 : 0 }, records, compressed?.get(records) ?? null);
          w.fillInt32(sizePosition, w.offset - sizePosition - 4);
        }
      }
    }, sizeHint);
    for (const result of readProduceResponse(await response)) {
      // A duplicate sequence means the broker already holds this batch from an earlier attempt.
      if (result.errorCode !== 0 && result.errorCode !== DUPLICATE_SEQUENCE_NUMBER) {
        throw new KafkaResponseError(result.errorCode, `producing to ${result.topic}[${result.partition}] on ${connection.address}`, result.errorMessage);
      }
    }
  }

  private async loadMetadata(topics: readonly string[]): Promise<void> {
    const metadata = readMetadataResponse(await this.bootstrap!.request(API.metadata, (w) => writeMetadataRequest(w, topics)));
    for (const broker of metadata.brokers) this.brokers.set(broker.nodeId, broker);
    for (const topic of metadata.topics) {
      if (topic.errorCode !== 0) throw new KafkaResponseError(topic.errorCode, `metadata of topic ${topic.name}`);
      this.topics.set(topic.name, { ...topic, loadedAt: Date.now() });
    }
  }

  private async connectionTo(nodeId: number): Promise<KafkaConnection> {
    const existing = this.connections.get(nodeId);
    if (existing) {
      const connection = await existing;
      if (!connection.broken) return connection;
    }
    const broker = this.brokers.get(nodeId);
    if (!broker) throw new KafkaResponseError(LEADER_NOT_AVAILABLE, `broker ${nodeId} is not in the cluster metadata`);
    const opening = this.open(broker.host, broker.port);
    this.connections.set(nodeId, opening);
    opening.catch(() => this.connections.delete(nodeId));
    return opening;
  }

  private open(host: string, port: number): Promise<KafkaConnection> {
    const { clientId, tls, sasl, connectTimeoutMs, requestTimeoutMs } = this.options;
    return KafkaConnection.open({ host, port, clientId, tls, sasl, connectTimeoutMs, requestTimeoutMs });
  }

  /** Forgets connections, metadata and the producer id: the next send starts over as a new producer. */
  reset(): void {
    this.bootstrap?.close();
    this.bootstrap = null;
    for (const opening of this.connections.values()) opening.then((connection) => connection.close(), () => undefined);
    this.connections.clear();
    this.topics.clear();
    this.sequences.clear();
    this.identity = null;
  }

  close(): void {
    this.reset();
  }
}

/** Kafka's sequence numbers wrap from Integer.MAX_VALUE to 0 (DefaultRecordBatch.incrementSequence). */
function nextSequence(sequence: number, increment: number): number {
  return sequence > 0x7fffffff - increment ? increment - (0x7fffffff - sequence) - 1 : sequence + increment;
}

/** Approximate bytes of a record on the wire, for sizing requests. */
function wireBytes(record: OutgoingRecord): number {
  return Math.max(record.valueBytes, 0) + Math.max(record.keyBytes, 0) + RECORD_OVERHEAD;
}

function groupByPartition(routed: LeaderRecords, start: number, end: number): TopicPartitions {
  const request: TopicPartitions = new Map();
  for (let i = start; i < end; i++) {
    const record = routed.records[i];
    const partition = routed.partitions[i];
    let partitions = request.get(record.topic);
    if (!partitions) request.set(record.topic, (partitions = new Map()));
    let records = partitions.get(partition);
    if (!records) partitions.set(partition, (records = []));
    records.push(record);
  }
  return request;
}

async function compressAll(request: TopicPartitions): Promise<Map<readonly OutgoingRecord[], Buffer>> {
  const compressed = new Map<readonly OutgoingRecord[], Buffer>();
  for (const partitions of request.values()) {
    for (const records of partitions.values()) {
      const writer = new Writer();
      writeRecords(writer, records);
      compressed.set(records, await gzipAsync(writer.toBuffer()));
    }
  }
  return compressed;
}
