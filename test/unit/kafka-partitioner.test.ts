// Keys land on the partition the Java client's default partitioner picks:
// toPositive(murmur2(key)) % partitions, checked against the Java client's
// own murmur2 test vectors, and record batches carry a correct CRC-32C.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Partitioners } from 'kafkajs';
import { partitionForKey, murmur2, crc32c, crc32cIsNative } from '../../sinks/kafka/protocol/checksums.js';

/** Expected Utils.murmur2 results from Apache Kafka's UtilsTest. */
const JAVA_MURMUR2: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

it('partitions keys exactly as the Java client does', () => {
  for (const [key, expected] of JAVA_MURMUR2) assert.equal(murmur2(Buffer.from(key)), expected, `murmur2(${key})`);
  assert.equal(partitionForKey('x'.repeat(1000), 7), partitionForKey(Buffer.from('x'.repeat(1000)), 7), 'a key longer than the scratch buffer');
  for (const partitions of [1, 3, 7, 12, 100]) {
    for (const [key, murmur] of JAVA_MURMUR2) {
      assert.equal(partitionForKey(key, partitions), (murmur & 0x7fffffff) % partitions, `key ${key} with ${partitions} partitions`);
    }
  }
});

it('agrees with kafkajs\'s DefaultPartitioner on JSON keys of every length', () => {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: 12 }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
  for (let i = 0; i < 500; i++) {
    const key = JSON.stringify({ id: i, region: 'é'.repeat(i % 7), note: 'x'.repeat(i % 13) });
    assert.equal(partitionForKey(key, 12), partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }), key);
  }
});

it('computes CRC-32C (Castagnoli) as Kafka checks it', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283); // the standard check value
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  // Long inputs go to the native CRC (@node-rs/crc32), short ones to the loop: every start and end gives the bytewise CRC.
  assert.equal(crc32cIsNative, true, 'the native CRC-32C loads on this platform (linux-x64)');
  const sample = Buffer.from(Array.from({ length: 1300 }, (_, i) => (i * 131 + (i >> 3)) & 0xff));
  const bytewise = (bytes: Buffer) => {
    let crc = 0xffffffff;
    for (const byte of bytes) {
      crc ^= byte;
      for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    }
    return (crc ^ 0xffffffff) >>> 0;
  };
  for (let start = 0; start < 8; start++) {
    for (let end = sample.length - 8; end <= sample.length; end++) assert.equal(crc32c(sample, start, end), bytewise(sample.subarray(start, end)), `${start}..${end}`);
  }
  // Short inputs (the loop) and long ones (native) alike, across the threshold between them.
  for (let length = 0; length <= 1200; length += length < 600 && length > 400 ? 1 : 7) assert.equal(crc32c(sample, 3, 3 + length), bytewise(sample.subarray(3, 3 + length)), `length ${length}`);
  const large = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) & 0xff));
  assert.equal(crc32c(large), bytewise(large), '200 kB');
    const data = Buffer.from('walrelay'.repeat(1000) + 'tail');
  assert.equal(crc32c(Buffer.concat([Buffer.from('xx'), data]), 2), crc32c(data), 'an offset range');
});
