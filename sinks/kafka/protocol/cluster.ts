// The producer's view of the Kafka cluster: broker addresses and topic
// metadata (leaders per partition), one connection per broker, and a
// connection to any live broker for metadata and producer ids — the first
// that answers among the brokers the cluster named and those configured, so
// a dead bootstrap broker does not stop a failover.
import type tls from 'node:tls';
import { KafkaConnection } from './connection.js';
import type { SaslCredentials } from './sasl.js';
import { API, KafkaResponseError, writeMetadataRequest, readMetadataResponse, type BrokerAddress, type TopicMetadata } from './messages.js';

export interface ClusterOptions {
  brokers: readonly string[];
  clientId: string;
  tls?: tls.ConnectionOptions;
  sasl?: SaslCredentials;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
}

/** Topic metadata is reloaded after this long (as the Java client's metadata.max.age.ms), so added partitions are used. */
const METADATA_MAX_AGE_MS = 5 * 60_000;
const LEADER_NOT_AVAILABLE = 5;

export class KafkaCluster {
  private bootstrap: KafkaConnection | null = null;
  private readonly connections = new Map<number, Promise<KafkaConnection>>();
  private readonly brokers = new Map<number, BrokerAddress>();
  private readonly topics = new Map<string, TopicMetadata & { loadedAt: number }>();

  constructor(private readonly options: ClusterOptions) {}

  /** A metadata connection is open. */
  get reachable(): boolean {
    return this.bootstrap !== null && !this.bootstrap.broken;
  }

  isFresh(topic: string): boolean {
    return Date.now() - (this.topics.get(topic)?.loadedAt ?? -Infinity) < METADATA_MAX_AGE_MS;
  }

  partitionCount(topic: string): number {
    return this.topics.get(topic)!.leaders.length;
  }

  /** The partition's leader node id; -1 while none is known. */
  leaderOf(topic: string, partition: number): number {
    return this.topics.get(topic)?.leaders[partition] ?? -1;
  }

  async loadMetadata(topics: readonly string[]): Promise<void> {
    const connection = await this.anyBroker();
    const metadata = readMetadataResponse(await connection.request(API.metadata, (w) => writeMetadataRequest(w, topics)));
    for (const broker of metadata.brokers) this.brokers.set(broker.nodeId, broker);
    for (const topic of metadata.topics) {
      if (topic.errorCode !== 0) throw new KafkaResponseError(topic.errorCode, `metadata of topic ${topic.name}`);
      this.topics.set(topic.name, { ...topic, loadedAt: Date.now() });
    }
  }

  /** A live connection for metadata and producer ids: any broker of the cluster or of the configuration will do. */
  async anyBroker(): Promise<KafkaConnection> {
    if (this.bootstrap && !this.bootstrap.broken) return this.bootstrap;
    this.bootstrap = null;
    const candidates = [
      ...[...this.brokers.values()].map((broker) => ({ host: broker.host, port: broker.port })),
      ...this.options.brokers.map((broker) => {
        const separator = broker.lastIndexOf(':');
        return { host: broker.slice(0, separator), port: Number(broker.slice(separator + 1)) };
      }),
    ];
    const failures: string[] = [];
    for (const { host, port } of candidates) {
      try {
        this.bootstrap = await this.open(host, port);
        return this.bootstrap;
      } catch (error) {
        if (error instanceof KafkaResponseError) throw error; // authentication refused: another broker will say the same
        failures.push((error as Error).message);
      }
    }
    throw new Error(`no Kafka broker reachable (${[...new Set(failures)].join('; ')})`);
  }

  async connectionTo(nodeId: number): Promise<KafkaConnection> {
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

  open(host: string, port: number): Promise<KafkaConnection> {
    const { clientId, tls, sasl, connectTimeoutMs, requestTimeoutMs } = this.options;
    return KafkaConnection.open({ host, port, clientId, tls, sasl, connectTimeoutMs, requestTimeoutMs });
  }

  /** Closes every connection and forgets topic metadata (reloaded on the next send). */
  disconnect(): void {
    this.bootstrap?.close();
    this.bootstrap = null;
    for (const opening of this.connections.values()) opening.then((connection) => connection.close(), () => undefined);
    this.connections.clear();
    this.topics.clear();
  }
}
