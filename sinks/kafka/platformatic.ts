// Experimental, for the library decision (README, Design): the Kafka sink's
// records sent through @platformatic/kafka's idempotent producer (acks=all)
// instead of walrelay's own, with the same partitions (walrelay's murmur2,
// passed explicitly) and headers. Chosen with `producer: platformatic`;
// the package is a development dependency, so this is for `npm run bench`.
import type { AddressedRecord } from './protocol/producer.js';
import { partitionForKey } from './protocol/checksums.js';
import { WalrelayError } from '../../relay/errors.js';

interface PlatformaticProducer {
  metadata(options: { topics: string[] }): Promise<{ topics: Map<string, { partitionsCount: number }> }>;
  /** A null value is a tombstone (format: debezium after a delete). */
  send(options: { messages: { topic: string; key?: string; value: string | null; partition: number; headers: Record<string, string> }[] }): Promise<unknown>;
  close(force?: boolean): Promise<void>;
}

export class PlatformaticKafkaProducer {
  private producer: PlatformaticProducer | null = null;
  private readonly partitions = new Map<string, number>();

  constructor(private readonly brokers: readonly string[], private readonly clientId: string) {}

  get connected(): boolean {
    return this.producer !== null;
  }

  async connect(): Promise<void> {
    if (this.producer) return;
    let library: { Producer: new (options: object) => PlatformaticProducer; stringSerializers: object };
    try {
      library = await import('@platformatic/kafka') as unknown as typeof library;
    } catch {
      throw new WalrelayError('KAFKA_PRODUCER_MISSING', 'producer: platformatic needs the @platformatic/kafka package', { hint: 'npm install @platformatic/kafka, or remove producer: platformatic' });
    }
    this.producer = new library.Producer({
      clientId: this.clientId,
      bootstrapBrokers: [...this.brokers],
      idempotent: true,
      acks: -1,
      serializers: library.stringSerializers,
    });
  }

  async send(records: readonly AddressedRecord[]): Promise<void> {
    await this.connect();
    const missing = [...new Set(records.map((record) => record.topic))].filter((topic) => !this.partitions.has(topic));
    if (missing.length > 0) {
      const metadata = await this.producer!.metadata({ topics: missing });
      for (const topic of missing) this.partitions.set(topic, metadata.topics.get(topic)!.partitionsCount);
    }
    const messages = records.map((record) => {
      const headers: Record<string, string> = {};
      for (let h = 0; h < record.headers.length; h += 2) headers[record.headers[h].toString()] = record.headers[h + 1].toString();
      const count = this.partitions.get(record.topic)!;
      const partition = record.key === null ? 0 : partitionForKey(record.key, count);
      return { topic: record.topic, key: record.key?.toString(), value: Buffer.isBuffer(record.value) ? record.value.toString() : record.value, partition, headers };
    });
    await this.producer!.send({ messages });
  }

  disconnect(): void {
    const producer = this.producer;
    this.producer = null;
    this.partitions.clear();
    void producer?.close(true).catch(() => undefined);
  }

  close(): void {
    this.disconnect();
  }
}
