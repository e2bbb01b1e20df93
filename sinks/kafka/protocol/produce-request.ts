// One Produce request (v8): each partition's batch written straight into the
// request buffer under the producer's id, epoch and (in exactly-once mode)
// transactional id, acks=all; the answer read back as an error code per batch.
import type { KafkaConnection } from './connection.js';
import { API, readProduceResponse } from './messages.js';
import { writeRecordBatch } from './record-batch.js';
import type { PartitionBatch } from './partition-batches.js';

export interface ProducerHeader {
  producerId: bigint;
  producerEpoch: number;
  /** null for the idempotent producer; batches are then not transactional. */
  transactionalId: string | null;
  /** How long the leader may wait for the in-sync replicas. */
  timeoutMs: number;
}

export interface BatchResult {
  code: number;
  message: string | null;
}

export async function sendProduceRequest(connection: KafkaConnection, request: readonly PartitionBatch[], producer: ProducerHeader, sizeHint: number): Promise<Map<PartitionBatch, BatchResult>> {
  const byTopic = new Map<string, PartitionBatch[]>();
  for (const batch of request) {
    let batches = byTopic.get(batch.topic);
    if (!batches) byTopic.set(batch.topic, (batches = []));
    batches.push(batch);
  }
  const { producerId, producerEpoch, transactionalId } = producer;
  const response = await connection.request(API.produce, (w) => {
    w.string(transactionalId).int16(-1).int32(producer.timeoutMs); // acks=all
    w.int32(byTopic.size);
    for (const [topic, batches] of byTopic) {
      w.string(topic).int32(batches.length);
      for (const batch of batches) {
        w.int32(batch.partition);
        const sizePosition = w.reserveInt32();
        const header = { producerId, producerEpoch, baseSequence: batch.baseSequence, timestamp: batch.timestamp, codec: batch.codec, transactional: transactionalId !== null };
        writeRecordBatch(w, header, batch.records, batch.compressed);
        w.fillInt32(sizePosition, w.offset - sizePosition - 4);
      }
    }
  }, sizeHint);
  const results = new Map<PartitionBatch, BatchResult>();
  for (const result of readProduceResponse(response)) {
    const batch = request.find((candidate) => candidate.topic === result.topic && candidate.partition === result.partition);
    if (batch) results.set(batch, { code: result.errorCode, message: result.errorMessage });
  }
  for (const batch of request) if (!results.has(batch)) results.set(batch, { code: -1, message: 'no answer for this partition' });
  return results;
}
