// The five Kafka requests a producer needs, in the newest versions that still
// use the classic (non-flexible) encoding: Metadata v8, InitProducerId v1,
// Produce v8, SaslHandshake v1, SaslAuthenticate v1. Every broker since Kafka
// 2.4 (2019) accepts them, Kafka 4 included. Field lists follow the protocol
// guide at kafka.apache.org/protocol.
import type { Writer, Reader } from './encoding.js';
import { errorName } from './error-codes.js';

export { errorName };

export const API = {
  produce: { key: 0, version: 8 },
  metadata: { key: 3, version: 8 },
  saslHandshake: { key: 17, version: 1 },
  initProducerId: { key: 22, version: 1 },
  saslAuthenticate: { key: 36, version: 1 },
} as const;

export interface BrokerAddress {
  nodeId: number;
  host: string;
  port: number;
}

export interface TopicMetadata {
  name: string;
  errorCode: number;
  /** Leader node id per partition index (-1: none right now). */
  leaders: number[];
  partitionErrors: number[];
}

export interface Metadata {
  brokers: BrokerAddress[];
  topics: TopicMetadata[];
}

export function writeMetadataRequest(writer: Writer, topics: readonly string[]): void {
  writer.int32(topics.length);
  for (const topic of topics) writer.string(topic);
  writer.int8(0); // allow_auto_topic_creation: never; the sink creates topics explicitly
  writer.int8(0).int8(0); // include cluster / topic authorized operations
}

export function readMetadataResponse(reader: Reader): Metadata {
  reader.int32(); // throttle_time_ms
  const brokers = reader.array((r) => {
    const nodeId = r.int32();
    const host = r.string()!;
    const port = r.int32();
    r.string(); // rack
    return { nodeId, host, port };
  });
  reader.string(); // cluster_id
  reader.int32(); // controller_id
  const topics = reader.array((r) => {
    const errorCode = r.int16();
    const name = r.string()!;
    r.boolean(); // is_internal
    const partitions = r.array((p) => {
      const partitionError = p.int16();
      const index = p.int32();
      const leader = p.int32();
      p.int32(); // leader_epoch
      p.array((q) => q.int32()); // replica_nodes
      p.array((q) => q.int32()); // isr_nodes
      p.array((q) => q.int32()); // offline_replicas
      return { partitionError, index, leader };
    });
    r.int32(); // topic_authorized_operations
    const leaders: number[] = [];
    const partitionErrors: number[] = [];
    for (const partition of partitions) {
      leaders[partition.index] = partition.leader;
      partitionErrors[partition.index] = partition.partitionError;
    }
    return { name, errorCode, leaders, partitionErrors };
  });
  reader.int32(); // cluster_authorized_operations
  return { brokers, topics };
}

export function writeInitProducerIdRequest(writer: Writer, transactionTimeoutMs: number): void {
  writer.string(null); // no transactional id: an idempotent producer
  writer.int32(transactionTimeoutMs);
}

export function readInitProducerIdResponse(reader: Reader): { errorCode: number; producerId: bigint; producerEpoch: number } {
  reader.int32(); // throttle_time_ms
  const errorCode = reader.int16();
  const producerId = reader.int64();
  const producerEpoch = reader.int16();
  return { errorCode, producerId, producerEpoch };
}

export interface PartitionResult {
  topic: string;
  partition: number;
  errorCode: number;
  errorMessage: string | null;
}

export function readProduceResponse(reader: Reader): PartitionResult[] {
  const results: PartitionResult[] = [];
  reader.array((r) => {
    const topic = r.string()!;
    r.array((p) => {
      const partition = p.int32();
      const errorCode = p.int16();
      p.int64(); // base_offset
      p.int64(); // log_append_time_ms
      p.int64(); // log_start_offset
      p.array((e) => { e.int32(); return e.string(); }); // record_errors
      const errorMessage = p.string();
      results.push({ topic, partition, errorCode, errorMessage });
    });
  });
  return results;
}

export function writeSaslHandshakeRequest(writer: Writer, mechanism: string): void {
  writer.string(mechanism);
}

export function readSaslHandshakeResponse(reader: Reader): { errorCode: number; mechanisms: string[] } {
  const errorCode = reader.int16();
  const mechanisms = reader.array((r) => r.string()!);
  return { errorCode, mechanisms };
}

export function writeSaslAuthenticateRequest(writer: Writer, authBytes: Buffer): void {
  writer.bytes(authBytes);
}

export function readSaslAuthenticateResponse(reader: Reader): { errorCode: number; errorMessage: string | null; authBytes: Buffer } {
  const errorCode = reader.int16();
  const errorMessage = reader.string();
  const authBytes = reader.bytes() ?? Buffer.alloc(0);
  reader.int64(); // session_lifetime_ms
  return { errorCode, errorMessage, authBytes };
}

/** A Kafka error code in a response. */
export class KafkaResponseError extends Error {
  readonly type: string;

  constructor(readonly code: number, context: string, detail?: string | null) {
    super(`${context}: ${errorName(code)}${detail ? ` (${detail})` : ''}`);
    this.type = errorName(code);
  }
}
