// The record writer's short-string path (a JS loop for short ASCII strings)
// must produce exactly the bytes and lengths Buffer's UTF-8 encoder does.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, utf8Length } from '../../sinks/kafka/protocol/encoding.js';

const samples = ['', 'insert', 'walrelay-lsn', '0/16B3748', '{"id":42}', 'é', 'naïve', '日本語', '😀 emoji', '\u{7f}\u{80}', 'a'.repeat(64), 'a'.repeat(65), `${'a'.repeat(63)}é`, '\ud800 lone surrogate'];

it('measures UTF-8 lengths as Buffer.byteLength does', () => {
  for (const sample of samples) assert.equal(utf8Length(sample), Buffer.byteLength(sample), JSON.stringify(sample));
});

it('writes varint-prefixed strings byte for byte as Buffer does', () => {
  for (const sample of samples) {
    const writer = new Writer(4);
    writer.varintString(sample, utf8Length(sample));
    const expected = new Writer(4);
    expected.varint(Buffer.byteLength(sample));
    const bytes = Buffer.from(sample);
    expected.ensure(bytes.length);
    bytes.copy(expected.buffer, expected.offset);
    expected.offset += bytes.length;
    assert.deepEqual(writer.buffer.subarray(0, writer.offset), expected.buffer.subarray(0, expected.offset), JSON.stringify(sample));
  }
});
