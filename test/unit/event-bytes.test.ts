// Row changes written as bytes straight from pgoutput's message (event-bytes.ts,
// byte-values.ts) against the text path (decoded values, values.ts' JSON
// converters, RowChange.json): byte for byte the same JSON, on tricky
// values of every type walrelay maps, NULLs, unchanged TOASTed values and
// every replica identity's update and delete.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TransactionAssembler } from '../../relay/route/assembler.js';
import { TypeCatalog } from '../../relay/source/type-catalog.js';
import { parsePgoutput, parseRowMessage, type PgoutputMessage, type RelationColumn } from '../../relay/source/pgoutput.js';
import { EncodedRowChange, type ChangeEvent, type RowChange } from '../../relay/route/event.js';
import { lsn } from '../../relay/lsn.js';
import { WalrelayError } from '../../relay/errors.js';
import { Writable } from 'node:stream';
import { StdoutSink } from '../../sinks/stdout/index.js';
import { XaddPayloads } from '../../sinks/redis/xadd-payloads.js';
import { redisSinkSchema, type StdoutSinkConfig, type KafkaSinkConfig } from '../../config/schema.js';
import { kafkaSinkSchema } from '../../config/sink-schemas.js';
import { KafkaSink } from '../../sinks/kafka/index.js';
import { Writer } from '../../sinks/kafka/protocol/encoding.js';
import { writeRecords } from '../../sinks/kafka/protocol/record-batch.js';
import type { AddressedRecord } from '../../sinks/kafka/protocol/producer.js';
import pino from 'pino';

type Value = string | null | 'UNCHANGED' | Buffer;

const TYPES: [string, number][] = [
  ['id', 23], ['i2', 21], ['i8', 20], ['num', 1700], ['f4', 700], ['f8', 701], ['flag', 16], ['body', 25], ['label', 1043],
  ['doc', 114], ['docb', 3802], ['blob', 17], ['ts', 1114], ['tstz', 1184], ['day', 1082], ['clock', 1083], ['clocktz', 1266],
  ['ints', 1007], ['texts', 1009], ['uid', 2950], ['span', 1186], ['mystery', 999_999], ['oid', 26],
];

const BIG_TEXT = 'ab"c\\d\ne\u0001f✓😀\u2028'.repeat(30_000); // ~500 kB with escapes and multi-byte characters throughout
const BIG_ASCII = 'x'.repeat(1_000_000);
const CONTROLS = Array.from({ length: 32 }, (_, c) => String.fromCharCode(c)).join('') + '\u007f"\\/';

/** Rows of values per column (same order as TYPES); each becomes an insert and appears in updates and deletes. */
const ROWS: Value[][] = [
  ['1', '-32768', '9223372036854775807', '12345678901234567890.000100', '3.14', '-1.5e+300', 't', 'plain', 'v',
    '{"a": 1,\n "b": [1, 2.50, "x y"]}', '{"k": {"n": null}}', '\\x00ff10', '2026-11-22 10:00:00.123456', '2026-11-22 10:00:00.123456+00',
    '2026-11-22', '10:00:00.5', '10:00:00+02', '{1,2,NULL}', '{"a b","c\\"d",NULL}', '8c3e7f43-6d0b-4a8a-9b6e-0f5f3c1b2a11', 'P1Y2M', 'whatever', '4294967295'],
  ['2', '0', '-1', 'NaN', 'NaN', 'Infinity', 'f', '', 'héllo wörld ✓', '"str\\u0000ing"', '[]', '\\x', '2026-11-22 10:00:00.5', '2026-11-22 10:00:00+05:30',
    '0044-03-15 BC', '23:59:59.999999', '10:00:00.123456+05:30', '{}', '{}', null, null, 'é', '0'],
  ['3', null, null, 'Infinity', '-Infinity', '-0', 't', CONTROLS, '😀 𝄞 \u2028\u2029', null, '{"big": "' + 'y'.repeat(200_000) + '"}', '\\x' + 'ab'.repeat(150_000),
    'infinity', '-infinity', 'infinity', '00:00:00', '00:00:00-00', '[0:1]={5,6}', '{"\\\\",""}', null, null, null, null],
  ['4', '7', '8', '-0.000001', '1e-45', '4.9e-324', 'f', BIG_TEXT, '\ufeffleading BOM', 'null', '"x"', null, '10000-01-01 00:00:00', '0001-01-01 00:00:00+00 BC',
    '10000-01-01', '10:00:00', '10:00:00.1+00', '{{1,2},{3,4}}', '{NULL,"NULL"}', null, null, BIG_ASCII, null],
  ['5', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null],
  // json, jsonb and bytea as the byte converters read them: whitespace and backslash runs around and inside strings,
  // multi-byte characters, a large jsonb in PostgreSQL's output form, bytea in escape format and in upper-case hex.
  ['7', '1', '2', '3', '4', '5', 't', 'x', 'y', ' \t{ "a\\"b" :\r\n[ "x\\\\", "y\\\\\\"z" ,1 , "\\\\"] , "é ✓": "😀 \\u2028 "\n}\n ',
    '[' + '{"id": 1, "note": "a \\"q\\" w\\nx y", "tags": ["é", "b c"], "n": null}, '.repeat(5_000) + '{}]', 'ab\\000c\\\\d', '2026-11-22 10:00:00.123456',
    '2026-11-22 10:00:00.123456+00', '2026-11-22', '10:00:00', '10:00:00+00', '{1}', '{a}', null, null, 'm', null],
  ['8', '1', '2', '3', '4', '5', 't', 'x', 'y', '"' + 'a \\" b\\\\'.repeat(20_000) + '"', '"\\\\"', '\\xABcdEF0123456789', '2026-11-22 10:00:00.123456',
    '2026-11-22 10:00:00.123456+00', '2026-11-22', '10:00:00', '10:00:00+00', '{1}', '{a}', null, null, 'm', null],
  // bytea of every length modulo 3, in both cases, and hex the text path has to judge (a non-digit, an odd count).
  ...['\\x01', '\\x01Fe', '\\x0102a0b0', '\\x01020304ff', '\\x0g12', '\\xabc', '\\x\\x00'].map((blob, i): Value[] => [String(9 + i), '1', '2', '3', '4', '5', 't', 'x', 'y', '1', '2', blob,
    '2026-11-22 10:00:00.123456', '2026-11-22 10:00:00.123456+00', '2026-11-22', '10:00:00', '10:00:00+00', '{1}', '{a}', null, null, 'm', null]),
  ['6', '1', '2', '3', '4', '5', 't', 'UNCHANGED', 'x', 'UNCHANGED', 'UNCHANGED', 'UNCHANGED', '2026-11-22 10:00:00.123456', '2026-11-22 10:00:00.12345+00',
    '2026-11-22', '10:00:00', '10:00:00+00', '{1}', '{a}', null, null, 'm', null],
];

function tupleBytes(values: Value[]): Buffer {
  const parts: Buffer[] = [u16(values.length)];
  for (const value of values) {
    if (value === null) parts.push(Buffer.from('n'));
    else if (value === 'UNCHANGED') parts.push(Buffer.from('u'));
    else {
      const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value);
      parts.push(Buffer.from('t'), u32(bytes.length), bytes);
    }
  }
  return Buffer.concat(parts);
}

function u16(value: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(value); return b; }
function u32(value: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(value); return b; }

const insert = (values: Value[]) => Buffer.concat([Buffer.from('I'), u32(16384), Buffer.from('N'), tupleBytes(values)]);
const update = (old: ['K' | 'O', Value[]] | null, values: Value[]) =>
  Buffer.concat([Buffer.from('U'), u32(16384), ...(old ? [Buffer.from(old[0]), tupleBytes(old[1])] : []), Buffer.from('N'), tupleBytes(values)]);
const remove = (old: ['K' | 'O', Value[]]) => Buffer.concat([Buffer.from('D'), u32(16384), Buffer.from(old[0]), tupleBytes(old[1])]);

/** The key tuple: only the replica identity column (id) carries a value. */
const keyOnly = (values: Value[]): Value[] => values.map((value, i) => (i === 0 ? value : null));

function messagesFor(identity: 'd' | 'f'): Buffer[] {
  const messages = ROWS.map(insert);
  for (const row of ROWS) {
    const previous = ROWS[(ROWS.indexOf(row) + 1) % ROWS.length];
    messages.push(update(null, row));
    messages.push(update(['K', keyOnly(previous)], row));
    if (identity === 'f') messages.push(update(['O', previous.map((value, c) => (value === 'UNCHANGED' ? ROWS[0][c] : value))], row));
    messages.push(remove(identity === 'f' ? ['O', row.map((value, c) => (value === 'UNCHANGED' ? ROWS[1][c] : value))] : ['K', keyOnly(row)]));
  }
  return messages;
}

async function assembler(identity: 'd' | 'f'): Promise<{ assembler: TransactionAssembler; events: ChangeEvent[] }> {
  const events: ChangeEvent[] = [];
  const catalog = new TypeCatalog({ query: async () => ({ rows: [] }) });
  const result = new TransactionAssembler(catalog, { event: (event) => events.push(event), commit: () => undefined });
  const columns: RelationColumn[] = TYPES.map(([name, typeOid], i) => ({ name, typeOid, typeMod: -1, flags: identity === 'f' || i === 0 ? 1 : 0 }));
  await result.apply({ tag: 'relation', relationId: 16384, schema: 'public', name: 'every "type"', replicaIdentity: identity, columns } as PgoutputMessage, lsn(1n));
  await result.apply({ tag: 'begin', finalLsn: lsn(0x16B3700n), commitTime: 123_456_789n, xid: 4711 }, lsn(2n));
  return { assembler: result, events };
}

describe('row changes as bytes', () => {
  for (const identity of ['d', 'f'] as const) {
    it(`equal the text path's JSON byte for byte (replica identity ${identity})`, async () => {
      const text = await assembler(identity);
      const bytes = await assembler(identity);
      const messages = messagesFor(identity);
      for (const [i, payload] of messages.entries()) {
        text.assembler.apply(parsePgoutput(payload), lsn(BigInt(0x16B3000 + i)));
        const raw = parseRowMessage(payload);
        assert.ok(raw, `message ${i} is a row message`);
        bytes.assembler.applyRow(raw, lsn(BigInt(0x16B3000 + i)));
      }
      assert.equal(bytes.events.length, messages.length);
      for (let i = 0; i < messages.length; i++) {
        const expected = text.events[i] as RowChange;
        const actual = bytes.events[i];
        assert.ok(actual instanceof EncodedRowChange, `event ${i} was written as bytes`);
        const written = actual.chunk.subarray(actual.start, actual.end);
        const wanted = Buffer.from(expected.json);
        let same = 0;
        while (same < written.length && written[same] === wanted[same]) same++;
        assert.ok(written.equals(wanted), `event ${i} (${expected.op}) differs at byte ${same}: …${written.subarray(Math.max(0, same - 80), same + 80).toString()} ≠ …${wanted.subarray(Math.max(0, same - 80), same + 80).toString()}`);
        assert.equal(actual.chunk[actual.end], 0x0a, 'each event is followed by a newline');
        assert.equal(actual.json, expected.json);
        assert.equal(actual.keyJson, expected.keyJson);
        assert.equal(actual.newJson, expected.newJson);
        assert.equal(actual.oldJson, expected.oldJson);
        assert.deepEqual(actual.unchanged, expected.unchanged);
        assert.deepEqual(JSON.parse(actual.json), JSON.parse(expected.json));
        // The Kafka record's key and header values as views of the event's bytes.
        assert.deepEqual(actual.keyBytes, expected.keyJson === null ? null : Buffer.from(expected.keyJson));
        assert.deepEqual(actual.idBytes, Buffer.from(expected.id));
        assert.deepEqual(actual.lsnBytes, Buffer.from(expected.lsn));
      }
    });
  }

  it('keeps an event whose closing newline starts a new chunk intact (its bytes move with it)', async () => {
    // Sized so that one event's JSON ends on the last byte of the first 256 KiB chunk: its newline needs a new chunk.
    const row = (body: string): Value[] => ROWS[4].map((value, c) => (c === 0 ? '5' : c === 7 ? body : value));
    const measure = await assembler('d');
    measure.assembler.applyRow(parseRowMessage(insert(row('')))!, lsn(0x16B3000n));
    const probe = measure.events[0] as EncodedRowChange;
    const base = probe.end - probe.start + 1; // with its newline
    const size = 2048;
    const { assembler: bytes, events } = await assembler('d');
    const bodies = Array.from({ length: 200 }, (_, i) => String.fromCharCode(97 + (i % 26)).repeat(size - base + (i === 0 ? 1 : 0)));
    bodies.forEach((body, i) => bytes.applyRow(parseRowMessage(insert(row(body)))!, lsn(BigInt(0x16B3000 + i))));
    events.forEach((event, i) => {
      const encoded = event as EncodedRowChange;
      const parsed = JSON.parse(encoded.chunk.subarray(encoded.start, encoded.end).toString());
      assert.equal(parsed.id, event.id, `event ${i}'s bytes are its own`);
      assert.equal(parsed.new.body, bodies[i]);
    });
    // The case arose: the event that filled the first chunk was moved, whole, to the start of the second.
    const moved = events.findIndex((event, i) => i > 0 && (event as EncodedRowChange).start === 0);
    assert.equal(moved, (256 * 1024) / size - 1, 'the event ending on the chunk\'s last byte moved to a new chunk');
  });

  it('writes a timestamp that a new chunk moves, whole, with its T', async () => {
    // Sized so that one event's timestamp value begins 10 bytes before the end of the first 256 KiB chunk.
    const row = (body: string): Value[] => ROWS[4].map((value, c) => (c === 0 ? '5' : c === 7 ? body : c === 12 ? '2026-11-22 10:00:00.123456' : value));
    const size = 2048;
    const measure = await assembler('d');
    measure.assembler.applyRow(parseRowMessage(insert(row('')))!, lsn(0x16B3000n));
    const empty = measure.events[0] as EncodedRowChange;
    const base = empty.end - empty.start + 1;
    measure.assembler.applyRow(parseRowMessage(insert(row('b'.repeat(size - base))))!, lsn(0x16B3001n));
    const probe = measure.events[1] as EncodedRowChange;
    const at = probe.chunk.subarray(probe.start, probe.end).indexOf('"ts":') + 5;
    const first = (256 * 1024 - 10) - (Math.floor((256 * 1024) / size) - 1) * size - at; // extra bytes of the first event
    assert.ok(first >= 0 && first < size);
    const { assembler: bytes, events } = await assembler('d');
    const bodies = Array.from({ length: 200 }, (_, i) => 'b'.repeat(size - base + (i === 0 ? first : 0)));
    bodies.forEach((body, i) => bytes.applyRow(parseRowMessage(insert(row(body)))!, lsn(BigInt(0x16B3000 + i))));
    events.forEach((event, i) => {
      const encoded = event as EncodedRowChange;
      const parsed = JSON.parse(encoded.chunk.subarray(encoded.start, encoded.end).toString());
      assert.equal(parsed.new.ts, '2026-11-22T10:00:00.123456', `event ${i}`);
      assert.equal(parsed.new.body, bodies[i], `event ${i}`);
    });
  });

  it('equal the text path across many chunk ends: 4,000 rows of every small value, bodies of random lengths', async () => {
    // Every chunk end falls somewhere else in an event (inside a value, between fields, on the newline).
    let seed = 42;
    const random = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const small = ROWS.filter((row) => !row.some((value) => typeof value === 'string' && value.length > 10_000));
    const text = await assembler('f');
    const bytes = await assembler('f');
    for (let i = 0; i < 4000; i++) {
      const template = small[random(small.length)];
      const row = template.map((value, c) => (c === 7 && value !== 'UNCHANGED' ? 'é✓"\\'.repeat(random(400)) + 'x'.repeat(random(7)) : value));
      const payload = i % 3 === 2 ? update(['O', row.map((value) => (value === 'UNCHANGED' ? null : value))], row) : insert(row);
      text.assembler.apply(parsePgoutput(payload), lsn(BigInt(0x1000000 + i)));
      bytes.assembler.applyRow(parseRowMessage(payload)!, lsn(BigInt(0x1000000 + i)));
    }
    for (let i = 0; i < 4000; i++) {
      const actual = bytes.events[i] as EncodedRowChange;
      assert.ok(actual.chunk.subarray(actual.start, actual.end).equals(Buffer.from((text.events[i] as RowChange).json)), `event ${i}`);
      assert.equal(actual.chunk[actual.end], 0x0a);
      assert.deepEqual(actual.lsnBytes, Buffer.from(actual.lsn), `event ${i}'s lsn`);
    }
    const moved = bytes.events.filter((event, i) => i > 0 && (event as EncodedRowChange).start === 0).length;
    assert.ok(moved >= 10, `events crossed ${moved} chunk ends`);
  });

  it('keeps a leading U+FEFF of a value, as the text path does', async () => {
    const { assembler: bytes, events } = await assembler('d');
    const row = ROWS[0].slice();
    row[7] = '\ufeffBOM';
    const payload = insert(row);
    bytes.applyRow(parseRowMessage(payload)!, lsn(1n));
    assert.equal(JSON.parse((events[0] as RowChange).json).new.body, '\ufeffBOM');
    const decoded = parsePgoutput(payload);
    assert.equal(decoded.tag === 'insert' && decoded.newTuple[7], '\ufeffBOM');
  });

  it('refuses invalid UTF-8 in any value as the text path does (PGOUTPUT_MALFORMED)', async () => {
    for (const [column, bad] of [[7, Buffer.from([0x61, 0xff, 0x62])], [7, Buffer.concat([Buffer.from('x'.repeat(100)), Buffer.from([0xed, 0xa0, 0x80])])], [0, Buffer.from([0x31, 0xc3])], [13, Buffer.from('2026-11-22 10:00:00.12345\xff+00', 'latin1')],
      [9, Buffer.from([0x22, 0xff, 0x22])], [9, Buffer.from([0x5b, 0x31, 0x2c, 0x20, 0xc3, 0x5d])], [10, Buffer.concat([Buffer.from('{"k": "'), Buffer.from([0xc3]), Buffer.from('"}')])],
      [11, Buffer.from([0x5c, 0x78, 0xff])], [11, Buffer.concat([Buffer.from('\\x'), Buffer.from('ab'.repeat(1000)), Buffer.from([0xe2, 0x82])])]] as const) {
      const row = ROWS[0].slice();
      row[column] = bad;
      const payload = insert(row);
      assert.throws(() => parsePgoutput(payload), (error: unknown) => error instanceof WalrelayError && error.code === 'PGOUTPUT_MALFORMED');
      const { assembler: bytes } = await assembler('d');
      assert.throws(() => bytes.applyRow(parseRowMessage(payload)!, lsn(1n)), (error: unknown) => error instanceof WalrelayError && error.code === 'PGOUTPUT_MALFORMED', `column ${column}`);
    }
  });

  it('reach stdout, Redis and Kafka as the same bytes as text events, mixed with events that have no bytes', async () => {
    const text = await assembler('f');
    const bytes = await assembler('f');
    const truncate = Buffer.concat([Buffer.from('T'), u32(1), Buffer.from([0]), u32(16384)]);
    const messages = [...messagesFor('f').slice(0, 5), truncate, ...messagesFor('f').slice(5, 9), truncate];
    for (const [i, payload] of messages.entries()) {
      text.assembler.apply(parsePgoutput(payload), lsn(BigInt(0x16B3000 + i)));
      const raw = parseRowMessage(payload);
      if (raw) bytes.assembler.applyRow(raw, lsn(BigInt(0x16B3000 + i)));
      else bytes.assembler.apply(parsePgoutput(payload), lsn(BigInt(0x16B3000 + i)));
    }
    assert.equal(bytes.events.filter((event) => event instanceof EncodedRowChange).length, 9);

    const printed = async (events: ChangeEvent[]) => {
      const chunks: Buffer[] = [];
      const out = new Writable({ write(chunk, _encoding, done) { chunks.push(Buffer.from(chunk)); done(); } });
      await new StdoutSink({ type: 'stdout', format: 'walrelay' } as StdoutSinkConfig, 0, out).write(events);
      return Buffer.concat(chunks);
    };
    assert.ok((await printed(bytes.events)).equals(await printed(text.events)), 'stdout');

    const payloads = new XaddPayloads(redisSinkSchema.parse({ type: 'redis', url: 'redis://127.0.0.1:1', maxLen: 1000 }), {});
    // Large events are written from their own bytes, as pieces around them: compared joined.
    const encode = (events: ChangeEvent[]) => {
      const { payload, count } = payloads.encode(events);
      return { payload: Array.isArray(payload) ? Buffer.concat(payload) : Buffer.from(payload), count };
    };
    const fromBytes = encode(bytes.events);
    const fromText = encode(text.events);
    assert.equal(fromBytes.count, messages.length);
    assert.ok(fromBytes.payload.equals(fromText.payload), 'redis payload');
    assert.ok(fromText.payload.includes(Buffer.from('XADD')));

    // Kafka: the records (key, value, headers) encoded as they go into a record batch.
    const kafka = new KafkaSink(kafkaSinkSchema.parse({ type: 'kafka', brokers: ['127.0.0.1:1'] }) as KafkaSinkConfig, 0, pino({ level: 'silent' }));
    const records = (events: ChangeEvent[]) => {
      const all: AddressedRecord[] = [];
      for (const event of events) (kafka as unknown as { addRecords(event: ChangeEvent, records: AddressedRecord[]): void }).addRecords(event, all);
      const writer = new Writer(16);
      writeRecords(writer, all);
      return { topics: all.map((record) => record.topic), bytes: writer.toBuffer() };
    };
    const kafkaBytes = records(bytes.events);
    const kafkaText = records(text.events);
    assert.deepEqual(kafkaBytes.topics, kafkaText.topics);
    assert.ok(kafkaBytes.bytes.equals(kafkaText.bytes), 'kafka records');
    assert.ok(kafkaText.bytes.includes(Buffer.from('walrelay-lsn')));
  });
});
