// The pgoutput decoder on hand-built messages (byte layouts from PostgreSQL's
// "Logical Replication Message Formats") and on messages captured from real
// PostgreSQL 15 and 18 servers (hex fixtures): fed whole, truncated at every
// byte, and split across socket reads inside the replication protocol's
// framing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePgoutput, UNCHANGED } from '../relay/source/pgoutput.js';
import { WalrelayError } from '../relay/errors.js';
import { PassThrough } from 'node:stream';
import { parse as parseBackendMessages } from 'pg-protocol';
import { Bytes, capturedMessages } from './harness/pgoutput-bytes.js';
import { PG_FLAVORS } from './harness/postgres.js';

const FIXTURES: Record<string, Buffer> = {
  begin: new Bytes().tag('B').u64(0x1_0000_16b3n).u64(0x2b8a1c5d_12345n).u32(0xfffffff0).done(),
  commit: new Bytes().tag('C').u8(0).u64(0x2_0000_16b37a0n).u64(0x2_0000_16b37d0n).u64(1n).done(),
  origin: new Bytes().tag('O').u64(0x100n).cstring('node_a').done(),
  relation: new Bytes().tag('R').u32(16384).cstring('public').cstring('orders').u8('d'.charCodeAt(0)).i16(2)
    .u8(1).cstring('id').u32(23).i32(-1).u8(0).cstring('note').u32(25).i32(-1).done(),
  relationFull: new Bytes().tag('R').u32(0xfffffff0).cstring('').cstring('pg_thing').u8('f'.charCodeAt(0)).i16(1)
    .u8(1).cstring('ä').u32(0xfffffffe).i32(4 + 10).done(),
  type: new Bytes().tag('Y').u32(16390).cstring('public').cstring('mood').done(),
  insert: new Bytes().tag('I').u32(16384).tag('N').i16(2).text('42').tag('n').done(),
  insertNullUnchangedText: new Bytes().tag('I').u32(16384).tag('N').i16(4).tag('n').tag('u').text('').text('{"a":"ü"}').done(),
  updateWithKey: new Bytes().tag('U').u32(16384).tag('K').i16(2).text('41').tag('n').tag('N').i16(2).text('42').tag('u').done(),
  updateWithOld: new Bytes().tag('U').u32(16384).tag('O').i16(2).text('42').text('old').tag('N').i16(2).text('42').text('héllo').done(),
  updatePlain: new Bytes().tag('U').u32(16384).tag('N').i16(2).text('42').text('x').done(),
  deleteKey: new Bytes().tag('D').u32(16384).tag('K').i16(2).text('42').tag('n').done(),
  deleteOld: new Bytes().tag('D').u32(16384).tag('O').i16(2).text('42').text('gone').done(),
  truncate: new Bytes().tag('T').u32(2).u8(3).u32(16384).u32(16390).done(),
  messageTransactional: new Bytes().tag('M').u8(1).u64(0x1234n).cstring('app').u32(5).raw(Buffer.from('hello')).done(),
  messagePlain: new Bytes().tag('M').u8(0).u64(0x1235n).cstring('app').u32(0).done(),
};

describe('parsePgoutput', () => {
  it('reads Begin with an unsigned xid above 2^31 and an LSN above 2^32', () => {
    assert.deepEqual(parsePgoutput(FIXTURES.begin), { tag: 'begin', finalLsn: 0x1_0000_16b3n, commitTime: 0x2b8a1c5d_12345n, xid: 0xfffffff0 });
  });

  it('reads Commit with LSNs above 2^32, Origin, Type and Relation', () => {
    assert.deepEqual(parsePgoutput(FIXTURES.commit), { tag: 'commit', flags: 0, commitLsn: 0x2_0000_16b37a0n, endLsn: 0x2_0000_16b37d0n, commitTime: 1n });
    assert.deepEqual(parsePgoutput(FIXTURES.origin), { tag: 'origin', originLsn: 0x100n, name: 'node_a' });
    assert.deepEqual(parsePgoutput(FIXTURES.type), { tag: 'type', typeOid: 16390, schema: 'public', name: 'mood' });
    assert.deepEqual(parsePgoutput(FIXTURES.relation), {
      tag: 'relation', relationId: 16384, schema: 'public', name: 'orders', replicaIdentity: 'd',
      columns: [{ flags: 1, name: 'id', typeOid: 23, typeMod: -1 }, { flags: 0, name: 'note', typeOid: 25, typeMod: -1 }],
    });
  });

  it('reads a REPLICA IDENTITY FULL relation in pg_catalog (empty namespace) with unsigned OIDs', () => {
    assert.deepEqual(parsePgoutput(FIXTURES.relationFull), {
      tag: 'relation', relationId: 0xfffffff0, schema: 'pg_catalog', name: 'pg_thing', replicaIdentity: 'f',
      columns: [{ flags: 1, name: 'ä', typeOid: 0xfffffffe, typeMod: 14 }],
    });
  });

  it('reads a tuple mixing null, unchanged TOAST, empty text and UTF-8 text', () => {
    assert.deepEqual(parsePgoutput(FIXTURES.insertNullUnchangedText), { tag: 'insert', relationId: 16384, newTuple: [null, UNCHANGED, '', '{"a":"ü"}'] });
  });

  it('reads tuples with text, null and unchanged-TOAST values', () => {
    assert.deepEqual(parsePgoutput(FIXTURES.insert), { tag: 'insert', relationId: 16384, newTuple: ['42', null] });
    const update = parsePgoutput(FIXTURES.updateWithKey);
    assert.deepEqual(update, { tag: 'update', relationId: 16384, keyTuple: ['41', null], oldTuple: null, newTuple: ['42', UNCHANGED] });
    assert.deepEqual(parsePgoutput(FIXTURES.updateWithOld), { tag: 'update', relationId: 16384, keyTuple: null, oldTuple: ['42', 'old'], newTuple: ['42', 'héllo'] });
    assert.deepEqual(parsePgoutput(FIXTURES.updatePlain), { tag: 'update', relationId: 16384, keyTuple: null, oldTuple: null, newTuple: ['42', 'x'] });
    assert.deepEqual(parsePgoutput(FIXTURES.deleteKey), { tag: 'delete', relationId: 16384, keyTuple: ['42', null], oldTuple: null });
    assert.deepEqual(parsePgoutput(FIXTURES.deleteOld), { tag: 'delete', relationId: 16384, keyTuple: null, oldTuple: ['42', 'gone'] });
  });

  it('reads a truncate of two relations with CASCADE and RESTART IDENTITY', () => {
    assert.deepEqual(parsePgoutput(FIXTURES.truncate), { tag: 'truncate', cascade: true, restartIdentity: true, relationIds: [16384, 16390] });
  });

  it('reads logical messages, transactional or not', () => {
    const message = parsePgoutput(FIXTURES.messageTransactional);
    assert.equal(message.tag, 'message');
    assert.deepEqual({ ...message, content: (message as any).content.toString() }, { tag: 'message', transactional: true, lsn: 0x1234n, prefix: 'app', content: 'hello' });
    assert.equal((parsePgoutput(FIXTURES.messagePlain) as any).transactional, false);
  });

  it('reports a message truncated at any byte as PGOUTPUT_MALFORMED, never a RangeError', () => {
    for (const [name, fixture] of Object.entries(FIXTURES)) {
      for (let length = 0; length < fixture.length; length++) {
        assert.throws(() => parsePgoutput(fixture.subarray(0, length)),
          (error: unknown) => error instanceof WalrelayError && error.code === 'PGOUTPUT_MALFORMED',
          `${name} cut to ${length} of ${fixture.length} bytes`);
      }
    }
  });

  it('matches hand-written hex of Begin and Insert (byte layouts from the protocol documentation)', () => {
    // 'B' | final LSN 0/16B3748 | commit time 1 µs after 2000-01-01 | xid 2^31 + 3
    const begin = parsePgoutput(Buffer.from('42' + '00000000016b3748' + '0000000000000001' + '80000003', 'hex'));
    assert.deepEqual(begin, { tag: 'begin', finalLsn: 0x16b3748n, commitTime: 1n, xid: 2147483651 });
    // 'I' | relation 16384 | 'N' | 3 columns | 't' len 2 "42" | 'n' | 'u'
    const insert = parsePgoutput(Buffer.from('49' + '00004000' + '4e' + '0003' + '74' + '00000002' + '3432' + '6e' + '75', 'hex'));
    assert.deepEqual(insert, { tag: 'insert', relationId: 16384, newTuple: ['42', null, UNCHANGED] });
  });

  it('never throws anything but a WalrelayError, whatever byte is corrupted', () => {
    for (const [name, fixture] of Object.entries(FIXTURES)) {
      for (let offset = 0; offset < fixture.length; offset++) {
        for (const value of [0x00, 0x01, 0x4b, 0x4e, 0x4f, 0x6e, 0x74, 0x75, 0x7f, 0x80, 0xff]) {
          const corrupt = Buffer.from(fixture);
          corrupt[offset] = value;
          try {
            parsePgoutput(corrupt);
          } catch (error) {
            assert.ok(error instanceof WalrelayError, `${name} with byte ${offset} = ${value}: ${String(error)}`);
          }
        }
      }
    }
  });

  it('reports a negative value length and an unknown replica identity as PGOUTPUT_MALFORMED with the offset', () => {
    const negative = new Bytes().tag('I').u32(1).tag('N').i16(1).tag('t').i32(-1).done();
    assert.throws(() => parsePgoutput(negative), (e: any) => e.code === 'PGOUTPUT_MALFORMED' && /negative value length -1 at offset 9/.test(e.message));
    const identity = new Bytes().tag('R').u32(1).cstring('s').cstring('t').u8('x'.charCodeAt(0)).i16(0).done();
    assert.throws(() => parsePgoutput(identity), (e: any) => e.code === 'PGOUTPUT_MALFORMED' && /replica identity 0x78 at offset 9/.test(e.message));
    const kind = new Bytes().tag('I').u32(1).tag('N').i16(1).u8(0x7a).done();
    assert.throws(() => parsePgoutput(kind), (e: any) => e.code === 'PGOUTPUT_MALFORMED' && /column kind 0x7a at offset 8/.test(e.message));
  });

  it('names streaming and two-phase tags as unsupported, and unknown tags as malformed', () => {
    for (const tag of ['S', 'E', 'c', 'A', 'b', 'P', 'K', 'r', 'p']) {
      assert.throws(() => parsePgoutput(Buffer.from(tag + '\0\0\0\0', 'latin1')),
        (e: any) => e.code === 'PGOUTPUT_UNSUPPORTED' && e.message.includes(`'${tag}'`) && typeof e.hint === 'string', tag);
    }
    assert.throws(() => parsePgoutput(Buffer.from([0x53, 0, 0, 0, 1, 0])), (e: any) => e.code === 'PGOUTPUT_UNSUPPORTED' && /'S'/.test(e.message));
    assert.throws(() => parsePgoutput(Buffer.from('b', 'binary')), (e: any) => e.code === 'PGOUTPUT_UNSUPPORTED');
    assert.throws(() => parsePgoutput(Buffer.from('Z', 'binary')), (e: any) => e.code === 'PGOUTPUT_MALFORMED' && /0x5a .* at offset 0/.test(e.message));
    assert.throws(() => parsePgoutput(new Bytes().tag('I').u32(1).tag('N').i16(1).tag('b').i32(1).u8(1).done()), (e: any) => e.code === 'PGOUTPUT_UNSUPPORTED');
  });
});

/** The backend's bytes for a stream of XLogData messages (CopyData frames), with a keepalive after each. */
function wireBytes(payloads: Buffer[]): Buffer {
  const frames = payloads.flatMap((payload, i) => {
    const xlog = new Bytes().tag('w').u64(BigInt(0x1000 + i)).u64(BigInt(0x2000 + i)).u64(0n).raw(payload).done();
    const keepalive = new Bytes().tag('k').u64(BigInt(0x2000 + i)).u64(0n).u8(0).done();
    return [xlog, keepalive].map((body) => new Bytes().tag('d').i32(body.length + 4).raw(body).done());
  });
  return Buffer.concat(frames);
}

/** Feeds `bytes` to pg's protocol parser `size` bytes per read; returns the XLogData payloads, cut out as replication-stream.ts does. */
async function payloadsReadInChunks(bytes: Buffer, size: number): Promise<Buffer[]> {
  const socket = new PassThrough();
  const payloads: Buffer[] = [];
  const parsing = parseBackendMessages(socket, (message: any) => {
    if (message.name === 'copyData' && message.chunk[0] === 0x77) payloads.push(Buffer.from(message.chunk.subarray(25)));
  });
  for (let offset = 0; offset < bytes.length; offset += size) socket.write(bytes.subarray(offset, offset + size));
  socket.end();
  await parsing;
  return payloads;
}

for (const flavor of PG_FLAVORS) {
  describe(`pgoutput messages captured from ${flavor}`, () => {
    const captured = capturedMessages(flavor);

    it('are every kind walrelay reads, and each parses whole', () => {
      const tags = new Set(captured.map(({ bytes }) => String.fromCharCode(bytes[0])));
      assert.deepEqual([...tags].sort(), ['B', 'C', 'D', 'I', 'M', 'R', 'T', 'U', 'Y']);
      for (const { name, bytes } of captured) assert.doesNotThrow(() => parsePgoutput(bytes), name);
      const domain = captured.map(({ bytes }) => parsePgoutput(bytes)).find((m) => m.tag === 'type' && m.name === 'int4');
      assert.deepEqual(domain && { schema: (domain as any).schema, name: (domain as any).name }, { schema: 'pg_catalog', name: 'int4' },
        "a domain's Type message names its base type, in pg_catalog (sent as an empty namespace)");
    });

    it('each cut short at every byte is PGOUTPUT_MALFORMED', () => {
      for (const { name, bytes } of captured) {
        for (let length = 0; length < bytes.length; length++) {
          assert.throws(() => parsePgoutput(bytes.subarray(0, length)), (e: unknown) => e instanceof WalrelayError && e.code === 'PGOUTPUT_MALFORMED',
            `${name} cut to ${length} of ${bytes.length} bytes`);
        }
      }
    });

    it('decode the same when the stream arrives split across socket reads of any size', async () => {
      const whole = captured.map(({ bytes }) => parsePgoutput(bytes));
      const wire = wireBytes(captured.map(({ bytes }) => bytes));
      for (const size of [1, 2, 3, 5, 7, 13, 25, 64, 1000, wire.length]) {
        const payloads = await payloadsReadInChunks(wire, size);
        assert.deepEqual(payloads.map((payload) => parsePgoutput(payload)), whole, `reads of ${size} bytes`);
      }
    });
  });
}
