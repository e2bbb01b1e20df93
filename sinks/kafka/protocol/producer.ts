// The Kafka sink's data path: an idempotent producer (acks=all) that writes
// each send as Produce requests to the partition leaders, record batches
// encoded straight into the request buffer.
//
// Idempotence as Kafka defines it (the Java client's enable.idempotence):
// a send is cut into per-partition batches whose sequence numbers are fixed
// once (partition-batches.ts). Retries re-send those same batches, in order,
// under the same producer id and epoch, so the broker drops what it already
// appended: a lost response, a killed leader or a timeout cost no duplicate.
// When a leader moves the producer refreshes metadata at once and re-sends to
// the new leader without waiting; when the whole cluster is unreachable, or a
// delivery makes no progress for a while, the error goes to the sink's retry
// (logged, with backoff), and the next send of the same records resumes the
// unfinished batches. Only when the broker refuses this producer's identity
// (produce-errors.ts) does it take a new producer id, and it logs that.
// With a transactional id (exactly-once mode) each send is one Kafka
// transaction (sendTransaction), and a refused identity is not renumbered
// but handed to the caller, which starts a new epoch (../exactly-once.ts).
import type { Logger } from 'pino';
import type { KafkaConnection } from './connection.js';
import { KafkaCluster, type ClusterOptions } from './cluster.js';
import { partitionForKey } from './checksums.js';
import type { OutgoingRecord } from './record-batch.js';
import { sendProduceRequest, type ProducerHeader, type BatchResult } from './produce-request.js';
import { utf8Length } from './encoding.js';
import {
  API, KafkaResponseError, errorName,
  writeInitProducerIdRequest, readInitProducerIdResponse,
} from './messages.js';
import { makeBatches, renumber, compressBatch, partitionKey, type PartitionBatch, type Compression } from './partition-batches.js';
import { produceOutcome } from './produce-errors.js';
import { TransactionCoordinator } from './transaction-coordinator.js';
import { readLastCommittedValue } from './checkpoint-reader.js';

const LEADER_NOT_AVAILABLE = 5;

export interface ProducerOptions extends ClusterOptions {
  compression: Compression;
  /** Request size bound: keeps each batch under the broker's message.max.bytes (1 MiB by default). */
  maxRequestBytes: number;
  maxRequestRecords: number;
  /** Receives the warning when the producer must take a new producer id. */
  logger?: Logger;
  /** Makes it a transactional producer (exactly-once mode): see sendTransaction. */
  transactionalId?: string;
  transactionTimeoutMs?: number;
}

export interface AddressedRecord extends OutgoingRecord {
  topic: string;
}

/** A record for `topic`, its UTF-8 lengths measured once (for sizing requests and for encoding). */
export function addressedRecord(topic: string, key: string | Buffer | null, value: string | Buffer | null, headers: readonly (string | Buffer)[]): AddressedRecord {
  return { topic, key, keyBytes: key === null ? -1 : typeof key === 'string' ? utf8Length(key) : key.length, value, valueBytes: value === null ? -1 : typeof value === 'string' ? Buffer.byteLength(value) : value.length, headers };
}

/** One send in progress: its records (to recognise a retry of it) and each partition's batches in order. */
interface Delivery {
  records: readonly AddressedRecord[];
  queues: Map<string, PartitionBatch[]>;
}

/** What one round of requests ran into, deciding what the next round does first. */
interface RoundOutcome {
  moved: boolean;
  transient: boolean;
  reset: string | null;
  failure: Error | null;
  lastError: Error | null;
}

/** Requests pipelined per broker connection; Kafka keeps idempotence for up to five. */
const MAX_IN_FLIGHT = 5;
/** Pause before re-sending after transient errors, or while no new leader is known yet (the Java client's retry.backoff.ms). */
const RETRY_BACKOFF_MS = 100;
/** A delivery that acknowledges nothing for this long reports its last error to the sink (which logs it and retries). */
const STALL_REPORT_MS = 10_000;

export class KafkaProducer {
  private readonly cluster: KafkaCluster;
  private identity: { producerId: bigint; producerEpoch: number } | null = null;
  /** Next sequence number per `topic\0partition`, as the broker expects it for this producer id. */
  private readonly sequences = new Map<string, number>();
  private delivery: Delivery | null = null;
  private nextUnkeyedPartition = 0;
  private readonly coordinator: TransactionCoordinator | null;

  constructor(private readonly options: ProducerOptions) {
    this.cluster = new KafkaCluster(options);
    this.coordinator = options.transactionalId === undefined ? null : new TransactionCoordinator(
      options.transactionalId, options.transactionTimeoutMs ?? 60_000, () => this.cluster.anyBroker(), (host, port) => this.cluster.open(host, port));
  }

  get connected(): boolean {
    return this.identity !== null && this.cluster.reachable;
  }

  /** Reaches a broker (keeping the producer id across reconnections) and obtains a producer id once. */
  async connect(): Promise<void> {
    const broker = await this.cluster.anyBroker();
    if (this.identity) return;
    if (this.coordinator) {
      const { producerId, producerEpoch } = await this.coordinator.initProducerId();
      this.identity = { producerId, producerEpoch };
      this.sequences.clear();
      return;
    }
    const response = readInitProducerIdResponse(await broker.request(API.initProducerId, (w) => writeInitProducerIdRequest(w, 60_000)));
    if (response.errorCode !== 0) throw new KafkaResponseError(response.errorCode, 'InitProducerId');
    this.identity = { producerId: response.producerId, producerEpoch: response.producerEpoch };
    this.sequences.clear();
  }

  /**
   * Delivers `records`; resolves once every partition leader acknowledged them
   * with acks=all. Called again with the same array after it threw, it
   * resumes the same batches with the same sequence numbers.
   */
  async send(records: readonly AddressedRecord[]): Promise<void> {
    await this.connect();
    if (this.delivery && this.delivery.records !== records) {
      // An abandoned delivery left sequence numbers the broker never saw: start over as a new producer.
      this.delivery = null;
      this.identity = null;
      await this.connect();
    }
    this.delivery ??= await this.prepare(records);
    await this.deliver(this.delivery);
    this.delivery = null;
  }

  /**
   * Exactly-once mode: delivers `records` as one Kafka transaction
   * (AddPartitionsToTxn, Produce, EndTxn commit) under the transactional id's
   * current epoch. Throws on any failure; the caller then calls
   * abandonTransaction, and the next call starts a new epoch, which aborts
   * what the failed attempt left open, so nothing of it becomes visible.
   */
  async sendTransaction(records: readonly AddressedRecord[]): Promise<void> {
    await this.connect();
    const delivery = await this.prepare(records);
    this.delivery = delivery;
    const partitions = new Map<string, number[]>();
    for (const queue of delivery.queues.values()) {
      const { topic, partition } = queue[0];
      partitions.set(topic, [...(partitions.get(topic) ?? []), partition]);
    }
    const identity = { transactionalId: this.options.transactionalId!, ...this.identity! };
    await this.coordinator!.addPartitions(identity, partitions);
    await this.deliver(delivery);
    await this.coordinator!.end(identity, true);
    this.delivery = null;
  }

  /** After a failed transaction: forget the epoch (the next transaction re-initialises, fencing and aborting this one). */
  abandonTransaction(): void {
    this.identity = null;
    this.delivery = null;
    this.sequences.clear();
    this.coordinator?.close();
  }

  /** The value of the newest committed record with `key` in `topic` (read_committed), or null. */
  async readLastCommitted(topic: string, key: string): Promise<string | null> {
    await this.cluster.loadMetadata([topic]);
    const partition = partitionForKey(key, this.cluster.partitionCount(topic));
    const leader = this.cluster.leaderOf(topic, partition);
    if (leader < 0) throw new KafkaResponseError(LEADER_NOT_AVAILABLE, `${topic}[${partition}]`);
    return readLastCommittedValue(await this.cluster.connectionTo(leader), topic, partition, key);
  }

  /** Partitions the records (murmur2 of the key, as the Java client) and cuts each partition's share into numbered batches. */
  private async prepare(records: readonly AddressedRecord[]): Promise<Delivery> {
    const stale = [...new Set(records.map((record) => record.topic))].filter((topic) => !this.cluster.isFresh(topic));
    if (stale.length > 0) await this.cluster.loadMetadata(stale);
    // Each topic's shares indexed by partition: no `topic\0partition` string made and hashed per record.
    type Share = { topic: string; partition: number; records: OutgoingRecord[] };
    const byTopic = new Map<string, Share[]>();
    const inOrder: Share[] = [];
    let topic: string | null = null;
    let shares: Share[] = [];
    let partitions = 0;
    for (const record of records) {
      if (record.topic !== topic) {
        topic = record.topic;
        partitions = this.cluster.partitionCount(topic);
        let known = byTopic.get(topic);
        if (!known) byTopic.set(topic, (known = []));
        shares = known;
      }
      const partition = record.key === null ? this.nextUnkeyedPartition++ % partitions : partitionForKey(record.key, partitions);
      let share = shares[partition];
      if (!share) inOrder.push((shares[partition] = share = { topic: record.topic, partition, records: [] }));
      share.records.push(record);
    }
    const limits = { maxBytes: this.options.maxRequestBytes, maxRecords: this.options.maxRequestRecords };
    const queues = new Map<string, PartitionBatch[]>();
    for (const share of inOrder) {
      const key = partitionKey(share.topic, share.partition);
      const batches = makeBatches(share.topic, share.partition, share.records, limits, this.sequences);
      if (this.options.compression !== 'none') for (const batch of batches) await compressBatch(batch, this.options.compression);
      queues.set(key, batches);
    }
    return { records, queues };
  }

  /** Sends rounds of requests until every batch is acknowledged, following moved leaders at once. */
  private async deliver(delivery: Delivery): Promise<void> {
    let lastProgress = Date.now();
    for (;;) {
      for (const [key, queue] of delivery.queues) {
        const remaining = queue.filter((batch) => !batch.acknowledged);
        if (remaining.length === 0) delivery.queues.delete(key);
        else if (remaining.length < queue.length) { delivery.queues.set(key, remaining); lastProgress = Date.now(); }
      }
      if (delivery.queues.size === 0) return;
      const outcome: RoundOutcome = { moved: false, transient: false, reset: null, failure: null, lastError: null };
      const byLeader = new Map<number, PartitionBatch[][]>();
      for (const queue of delivery.queues.values()) {
        const leader = this.cluster.leaderOf(queue[0].topic, queue[0].partition);
        if (leader < 0) { outcome.moved = true; outcome.lastError = new KafkaResponseError(LEADER_NOT_AVAILABLE, `${queue[0].topic}[${queue[0].partition}]`); continue; }
        let queues = byLeader.get(leader);
        if (!queues) byLeader.set(leader, (queues = []));
        queues.push(queue);
      }
      await Promise.all([...byLeader].map(([leader, queues]) => this.sendRound(leader, queues, outcome)));
      if (outcome.failure) throw outcome.failure;
      if (outcome.reset) await this.takeNewProducerId(delivery, outcome.reset);
      if ([...delivery.queues.values()].every((queue) => queue.every((batch) => batch.acknowledged))) continue;
      if (Date.now() - lastProgress > STALL_REPORT_MS) throw outcome.lastError ?? new Error('kafka delivery made no progress');
      let wait = outcome.transient;
      if (outcome.moved) {
        const before = this.leaderMap(delivery);
        await this.cluster.loadMetadata([...new Set([...delivery.queues.values()].map((queue) => queue[0].topic))]);
        // Re-send at once to a new leader; while the cluster still names the old one, pause briefly.
        if (this.leaderMap(delivery) === before) wait = true;
      }
      if (wait) await sleep(RETRY_BACKOFF_MS);
    }
  }

  /**
   * One leader's share of a round: request k carries the k-th unacknowledged
   * batch of each of its partitions (a Produce request holds one batch per
   * partition), up to MAX_IN_FLIGHT requests pipelined. A partition stops at
   * its first batch that failed; later ones wait for the next round.
   */
  private async sendRound(leader: number, queues: PartitionBatch[][], outcome: RoundOutcome): Promise<void> {
    let connection: KafkaConnection;
    try {
      connection = await this.cluster.connectionTo(leader);
    } catch (error) {
      outcome.moved = true;
      outcome.lastError = error as Error;
      return;
    }
    const cursors = queues.map(() => 0);
    const stopped = new Set<string>();
    const inFlight: Promise<void>[] = [];
    for (;;) {
      const request: PartitionBatch[] = [];
      let bytes = 0;
      for (let q = 0; q < queues.length; q++) {
        const batch = queues[q][cursors[q]];
        if (!batch || stopped.has(partitionKey(batch.topic, batch.partition)) || (request.length > 0 && bytes + batch.bytes > this.options.maxRequestBytes)) continue;
        request.push(batch);
        bytes += batch.bytes;
        cursors[q]++;
      }
      if (request.length === 0 || connection.broken) break;
      if (inFlight.length >= MAX_IN_FLIGHT) await inFlight.shift();
      inFlight.push(sendProduceRequest(connection, request, this.producerHeader(), bytes).then(
        (results) => this.judge(request, results, queues, stopped, outcome, connection.address),
        (error: Error) => { outcome.moved = true; outcome.lastError = error; },
      ));
    }
    await Promise.all(inFlight);
  }

  /** Applies one Produce response: acknowledges batches and records what the next round must do. */
  private judge(request: PartitionBatch[], errorCodes: Map<PartitionBatch, BatchResult>, queues: PartitionBatch[][], stopped: Set<string>, outcome: RoundOutcome, address: string): void {
    for (const batch of request) {
      const { code, message } = errorCodes.get(batch)!;
      const key = partitionKey(batch.topic, batch.partition);
      const action = produceOutcome(code);
      if (action === 'delivered' && !stopped.has(key)) { batch.acknowledged = true; continue; }
      if (action === 'delivered') continue; // cannot happen: the broker refuses batches after a gap
      stopped.add(key);
      const error = new KafkaResponseError(code, `producing to ${batch.topic}[${batch.partition}] on ${address}`, message);
      outcome.lastError = error;
      if (action === 'moved') outcome.moved = true;
      else if (action === 'transient') outcome.transient = true;
      else if (action === 'out-of-order') {
        const queue = queues.find((candidate) => candidate.includes(batch))!;
        const oldest = queue.find((candidate) => !candidate.acknowledged);
        // An earlier batch of this partition failed in this round: the broker wants that one first.
        if (oldest !== batch) outcome.transient = true;
        else if (this.coordinator) outcome.failure = error; // a transaction is abandoned, never renumbered
        else outcome.reset = errorName(code);
      } else if (action === 'reset-producer') {
        // Transactional: fenced by a newer epoch (another walrelay, or ours after a timeout); the caller re-initialises.
        if (this.coordinator) outcome.failure = error;
        else outcome.reset = errorName(code);
      } else outcome.failure = error;
    }
  }

  private producerHeader(): ProducerHeader {
    const { transactionalId, requestTimeoutMs } = this.options;
    return { ...this.identity!, transactionalId: transactionalId ?? null, timeoutMs: requestTimeoutMs };
  }

  /** The broker refused this producer's identity: new producer id, the unacknowledged batches renumbered from 0. */
  private async takeNewProducerId(delivery: Delivery, reason: string): Promise<void> {
    const previous = this.identity;
    this.identity = null;
    await this.connect();
    renumber(delivery.queues.values(), this.sequences);
    this.options.logger?.warn({ reason, previousProducerId: String(previous?.producerId), producerId: String(this.identity!.producerId) },
      'kafka producer took a new producer id: batches sent but not acknowledged before may appear twice');
  }

  /** The current leaders of the delivery's partitions, as a string to compare before and after a metadata refresh. */
  private leaderMap(delivery: Delivery): string {
    return [...delivery.queues.values()].map((queue) => this.cluster.leaderOf(queue[0].topic, queue[0].partition)).join(',');
  }

  /** Closes every connection; the producer id, sequence numbers and an unfinished delivery are kept. */
  disconnect(): void {
    this.cluster.disconnect();
  }

  /** Forgets everything: the next send starts over as a new producer. */
  close(): void {
    this.disconnect();
    this.coordinator?.close();
    this.sequences.clear();
    this.identity = null;
    this.delivery = null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
