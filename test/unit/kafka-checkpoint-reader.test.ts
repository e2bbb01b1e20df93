// Reading the exactly-once checkpoint back as read_committed must hide every
// aborted transaction, also when one producer id (a transactional id keeps it
// across epochs) aborted several in the same fetch: a reader that remembered
// only one aborted transaction per producer took an aborted checkpoint for a
// committed one.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, utf8Length } from '../../sinks/kafka/protocol/encoding.js';
import { writeRecordBatch } from '../../sinks/kafka/protocol/record-batch.js';
import { readCommittedRecords } from '../../sinks/kafka/protocol/record-batch-reader.js';

const PRODUCER = 7n;

/** One transactional batch with one record at `offset`; a control batch (commit/abort marker) when `control`. */
function batch(writer: Writer, offset: bigint, value: string, control = false): void {
  const start = writer.offset;
  const key = 'walrelay-slot';
  writeRecordBatch(writer, { producerId: PRODUCER, producerEpoch: 0, baseSequence: 0, timestamp: 0, codec: 0, transactional: true },
    [{ key, keyBytes: utf8Length(key), value, valueBytes: utf8Length(value), headers: [] }], null);
  writer.buffer.writeBigInt64BE(offset, start);
  if (control) writer.buffer.writeInt16BE(0x10 | 0x20, start + 21); // the reader skips control batches whatever they hold
}

it('hides every aborted transaction of a producer, committed ones stay', () => {
  const writer = new Writer(1024);
  batch(writer, 0n, 'first, committed');
  batch(writer, 1n, '', true);
  batch(writer, 2n, 'second, aborted');
  batch(writer, 3n, '', true);
  batch(writer, 4n, 'third, committed');
  batch(writer, 5n, '', true);
  batch(writer, 6n, 'fourth, aborted');
  batch(writer, 7n, '', true);
  const aborted = [{ producerId: PRODUCER, firstOffset: 6n }, { producerId: PRODUCER, firstOffset: 2n }];
  const records = readCommittedRecords(writer.toBuffer(), aborted);
  assert.deepEqual(records.map((record) => [record.offset, record.value]), [[0n, 'first, committed'], [4n, 'third, committed']]);
  assert.ok(records.every((record) => record.key === 'walrelay-slot'));
});

it('stops at a batch cut off at the end of a fetch answer', () => {
  const writer = new Writer(1024);
  batch(writer, 0n, 'whole');
  batch(writer, 1n, 'cut off');
  const data = writer.toBuffer();
  assert.deepEqual(readCommittedRecords(data.subarray(0, data.length - 5), []).map((record) => record.value), ['whole']);
});
