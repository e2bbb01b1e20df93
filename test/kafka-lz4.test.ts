// compression: lz4 on a Kafka sink: walrelay's own LZ4 frame encoder must
// produce batches that the broker accepts (it decompresses every batch to
// validate it) and that Kafka's Java consumer reads back byte for byte:
// compressible rows, incompressible ones (stored blocks), and values larger
// than one 64 KiB block.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { javaConsume } from './harness/java-consumer.js';
import { KafkaSink } from '../sinks/kafka/index.js';
import { kafkaSinkSchema } from '../config/schema.js';
import type { ChangeEvent } from '../relay/route/event.js';
import { KafkaConnection } from '../sinks/kafka/protocol/connection.js';
import { TXN_API, writeFetch, readFetch } from '../sinks/kafka/protocol/transaction-messages.js';

function event(id: number, note: string): ChangeEvent {
  const lsn = `0/${(0x2000000 + id).toString(16).toUpperCase()}`;
  return { id: `e${id}`, op: 'insert', schema: 'public', table: 'notes', key: { id }, new: { id, note }, old: null, lsn, commitLsn: lsn, xid: id, commitTime: '2026-11-27T00:00:00.000000Z' };
}

describe('Kafka sink with compression: lz4 (Apache Kafka 4, read back by the Java consumer)', () => {
  let kafka: TestKafka;
  let sink: KafkaSink;

  before(async () => {
    kafka = await startKafka();
    const config = kafkaSinkSchema.parse({ type: 'kafka', brokers: kafka.brokers, topic: 'lz4.{table}', compression: 'lz4', createTopics: { partitions: 3, replicationFactor: 1 } });
    sink = new KafkaSink(config, 0, pino({ level: 'silent' }));
    await sink.start();
  });

  after(async () => {
    await sink?.close();
    await kafka?.stop();
  });

  it('writes batches the broker accepts and the Java client decompresses to the same values', async () => {
    const events = [
      ...Array.from({ length: 500 }, (_, i) => event(i, `status paid, region eu, customer ${i % 7}`)),
      ...Array.from({ length: 50 }, (_, i) => event(1000 + i, randomBytes(300 + i * 10).toString('base64'))),
      ...Array.from({ length: 3 }, (_, i) => event(2000 + i, `${'abc'.repeat(40_000)}${randomBytes(30_000).toString('hex')}`)),
      event(3000, ''),
    ];
    await sink.write(events);
    const records = await javaConsume(kafka.libs, kafka.brokers, 'lz4.notes', false);
    assert.equal(records.length, events.length);
    const byId = new Map(records.map((record) => [record.headers['walrelay-id'], JSON.parse(record.value)]));
    for (const sent of events) assert.deepEqual(byId.get(sent.id)?.new, sent.new, `event ${sent.id}`);

    // On disk the batches carry codec 3 (lz4): the broker kept walrelay's compression.
    const [host, port] = kafka.brokers[0].split(':');
    const connection = await KafkaConnection.open({ host, port: Number(port), clientId: 'walrelay-test', connectTimeoutMs: 5000, requestTimeoutMs: 10_000 });
    try {
      for (let partition = 0; partition < 3; partition++) {
        const fetched = readFetch(await connection.request(TXN_API.fetch, (w) => writeFetch(w, 'lz4.notes', partition, 0n, 1 << 20)));
        assert.ok(fetched.records.length > 61, `partition ${partition} holds batches`);
        assert.equal(fetched.records.readInt16BE(21) & 7, 3, `partition ${partition}: codec of its first batch`);
      }
    } finally {
      connection.close();
    }
  });
});
