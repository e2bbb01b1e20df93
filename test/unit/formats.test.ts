// The three wire formats: walrelay (contract section 3), Debezium Server's
// PostgreSQL connector output (schemas off; compared with the real one in
// debezium-golden.test.ts) and CloudEvents 1.0 structured mode.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { debeziumRecords, encodeEvent } from '../../sinks/formats.js';
import type { TypeCatalog } from '../../relay/source/type-catalog.js';
import { ColumnPolicy, MASK } from '../../relay/stages/column-policy.js';
import { eventJson, RowChange, type ChangeEvent } from '../../relay/route/event.js';

const COMMIT_TIME = '2026-11-22T10:00:00.123456Z';
const COMMIT_MS = Date.UTC(2026, 10, 22, 10, 0, 0, 123);

function rowChange(op: 'insert' | 'update' | 'delete', key: string | null, row: string | null, old: string | null, unchanged?: string[]): RowChange {
  return new RowChange('00000001016B37A0-0000000003', op, 'public', 'orders', '"schema":"public","table":"orders"',
    key, row, old, unchanged, '1/16B3748', '1/16B37A0', 4294967290, COMMIT_TIME);
}

const insert = () => rowChange('insert', '{"id":42}', '{"id":42,"status":"new","total":"9223372036854775807"}', null);
const update = () => rowChange('update', '{"id":42}', '{"id":42,"status":"paid"}', '{"id":42,"status":"new"}', ['blob']);
const deletion = () => rowChange('delete', '{"id":42}', null, '{"id":42}');

describe('walrelay format', () => {
  it('is the event JSON of contract section 3', () => {
    const event = insert();
    assert.equal(encodeEvent(event, 'walrelay'), eventJson(event));
    const parsed = JSON.parse(encodeEvent(event, 'walrelay'));
    assert.deepEqual(parsed.new, { id: 42, status: 'new', total: '9223372036854775807' });
    assert.equal(parsed.xid, 4294967290);
  });
});

describe('debezium format', () => {
  it('maps an insert to op c in Debezium Server 3.6\'s field order, with source positions and commit time', () => {
    const before = Date.now();
    const text = encodeEvent(insert(), 'debezium', { database: 'shop' });
    const envelope = JSON.parse(text);
    assert.deepEqual(Object.keys(envelope), ['before', 'after', 'source', 'transaction', 'op', 'ts_ms', 'ts_us', 'ts_ns']);
    assert.equal(envelope.before, null);
    assert.equal(envelope.op, 'c');
    assert.equal(envelope.transaction, null);
    assert.ok(envelope.ts_ms >= before && envelope.ts_ms <= Date.now(), 'ts_ms: when walrelay processed the event');
    assert.ok(text.endsWith(`"ts_us":${String(envelope.ts_us)},"ts_ns":${String(envelope.ts_us)}000}`), 'ts_ns printed with every digit');
    const { ts_ns: _ns, ...source } = envelope.source;
    assert.deepEqual(source, {
      version: 'walrelay', connector: 'postgresql', name: 'walrelay', ts_ms: COMMIT_MS, snapshot: 'false', db: 'shop',
      sequence: `[null,"${0x1_016b3748}"]`, ts_us: COMMIT_MS * 1000 + 456,
      schema: 'public', table: 'orders', txId: 4294967290, lsn: 0x1_016b3748, xmin: null, origin: null, origin_lsn: null,
    });
    assert.ok(text.includes(`"ts_ns":${COMMIT_MS * 1000 + 456}000,`));
  });

  it('without PostgreSQL\'s text, copies the rows as walrelay wrote them, so json numbers keep every digit', () => {
    const doc = '{"id":1,"doc":{"n":12345678901234567890,"f":1.000}}';
    const text = encodeEvent(rowChange('update', '{"id":1}', doc, '{"id":1,"doc":[1.50]}'), 'debezium');
    assert.ok(text.startsWith(`{"before":{"id":1,"doc":[1.50]},"after":${doc},"source":{`), text);
    assert.deepEqual(Object.keys(JSON.parse(text)), ['before', 'after', 'source', 'transaction', 'op', 'ts_ms', 'ts_us', 'ts_ns']);
  });

  it('maps update, delete and read to u, d and r; without PostgreSQL\'s text (backfill reads) values are walrelay\'s', () => {
    const updated = JSON.parse(encodeEvent(update(), 'debezium'));
    assert.equal(updated.op, 'u');
    assert.deepEqual(updated.before, { id: 42, status: 'new' });
    assert.deepEqual(updated.after, { id: 42, status: 'paid' });

    const deleted = debeziumRecords(deletion());
    assert.equal(deleted.length, 2, 'a delete and its tombstone');
    assert.equal(JSON.parse(deleted[0].value!).op, 'd');
    assert.deepEqual(deleted[1], { key: '{"id":42}', value: null });
    assert.equal(debeziumRecords(deletion(), { debezium: { tombstonesOnDelete: false } }).length, 1);

    const read: ChangeEvent = { id: 'r1', op: 'read', schema: 'public', table: 'orders', key: { id: 1 }, new: { id: 1 }, old: null, lsn: '0/10', commitLsn: '0/10', xid: 5, commitTime: COMMIT_TIME };
    const snapshot = JSON.parse(encodeEvent(read, 'debezium'));
    assert.equal(snapshot.op, 'r');
    assert.equal(snapshot.source.snapshot, 'true');
    assert.deepEqual(snapshot.after, { id: 1 });
  });

  it('renders values from PostgreSQL\'s text and column types, and splits a key change into delete, tombstone and create', () => {
    const event = rowChange('update', '{"id":"2"}', '{"id":"2","price":"1.50"}', '{"id":"1"}');
    const columns = [{ name: 'id', typeOid: 20, typmod: -1, key: true }, { name: 'price', typeOid: 1700, typmod: (10 << 16) + 2 + 4, key: false }];
    event.origin = { columns, catalog: { info: () => undefined } as unknown as TypeCatalog, newTuple: ['2', '1.50'], oldTuple: ['1', null], oldIsKey: true, previousCommitEnd: '0/100', previousCommitTime: null };
    const records = debeziumRecords(event, { debezium: { topicPrefix: 'shop' } });
    assert.deepEqual(records.map((record) => [record.key, record.value && JSON.parse(record.value).op]), [['{"id":1}', 'd'], ['{"id":1}', null], ['{"id":2}', 'c']]);
    assert.ok(records[0].value!.startsWith('{"before":{"id":1,"price":null},"after":null,'));
    assert.ok(records[2].value!.startsWith('{"before":null,"after":{"id":2,"price":"AJY="},'), records[2].value!);
    assert.equal(JSON.parse(records[2].value!).source.sequence, `["256","${0x1_016b3748}"]`);
    assert.equal(JSON.parse(records[2].value!).source.name, 'shop');
  });

  it('never shows a column that a column policy dropped or masked: such events carry the policy\'s values', () => {
    const event = rowChange('insert', '{"id":"2"}', '{"id":"2","secret":"s3cret","note":"n"}', null);
    const columns = [{ name: 'id', typeOid: 20, typmod: -1, key: true }, { name: 'secret', typeOid: 25, typmod: -1, key: false }, { name: 'note', typeOid: 25, typmod: -1, key: false }];
    event.origin = { columns, catalog: { info: () => undefined } as unknown as TypeCatalog, newTuple: ['2', 's3cret', 'n'], oldTuple: null, previousCommitEnd: null, previousCommitTime: null };
    assert.ok(debeziumRecords(event)[0].value!.includes('s3cret'), 'unfiltered, the text value is rendered');
    const filtered = new ColumnPolicy({ 'public.orders.secret': 'drop', 'public.orders.note': 'mask' }, 'k', 'sinks[0].columns').apply(event);
    const value = debeziumRecords(filtered)[0].value!;
    assert.ok(!value.includes('s3cret') && !value.includes('"secret"'), value);
    assert.equal(JSON.parse(value).after.note, MASK);
  });

  it('maps truncate to t and logical messages to m with base64 content', () => {
    const truncate: ChangeEvent = { id: 't1', op: 'truncate', schema: 'public', table: 'orders', key: null, new: null, old: null, cascade: true, restartIdentity: false, lsn: '0/20', commitLsn: '0/30', xid: 6, commitTime: COMMIT_TIME };
    const truncated = JSON.parse(encodeEvent(truncate, 'debezium'));
    assert.equal(truncated.op, 't');
    assert.equal(truncated.before, null);
    assert.equal(truncated.after, null);
    assert.equal(debeziumRecords(truncate)[0].key, null);

    const message: ChangeEvent = { id: 'm1', op: 'message', prefix: 'app', content: 'hello', contentEncoding: 'utf8', transactional: false, lsn: '0/40', commitLsn: null, xid: null, commitTime: null };
    const emitted = JSON.parse(encodeEvent(message, 'debezium'));
    assert.deepEqual(Object.keys(emitted), ['op', 'ts_ms', 'source', 'transaction', 'message']);
    assert.equal(emitted.op, 'm');
    assert.deepEqual(emitted.message, { prefix: 'app', content: Buffer.from('hello').toString('base64') });
    assert.equal(emitted.source.lsn, 0x40);
    assert.equal(emitted.source.txId, null);
    assert.equal(emitted.source.schema, '');
    assert.equal(debeziumRecords(message)[0].key, '{"prefix":"app"}');
  });

  it('serialises an event once per database name', () => {
    const event = insert();
    const first = encodeEvent(event, 'debezium', { database: 'shop' });
    assert.equal(encodeEvent(event, 'debezium', { database: 'shop' }), first, 'cached');
    assert.equal(JSON.parse(encodeEvent(event, 'debezium', { database: 'other' })).source.db, 'other');
  });
});

describe('cloudevents format', () => {
  it('wraps a row change as a structured CloudEvents 1.0 event with the walrelay event as data', () => {
    const event = update();
    const text = encodeEvent(event, 'cloudevents');
    const cloudEvent = JSON.parse(text);
    assert.deepEqual(cloudEvent, {
      specversion: '1.0',
      id: '00000001016B37A0-0000000003',
      source: '/walrelay/public.orders',
      type: 'io.walrelay.update',
      subject: '{"id":42}',
      time: COMMIT_TIME,
      datacontenttype: 'application/json',
      data: JSON.parse(eventJson(event)),
    });
    assert.ok(text.endsWith(`"data":${eventJson(event)}}`), 'data is the walrelay JSON, byte for byte');
    assert.equal(encodeEvent(event, 'cloudevents'), text, 'cached');
  });

  it('sends logical messages from /walrelay/messages, without subject or time when outside a transaction', () => {
    const message: ChangeEvent = { id: 'm1', op: 'message', prefix: 'app', content: 'hi', contentEncoding: 'utf8', transactional: false, lsn: '0/40', commitLsn: null, xid: null, commitTime: null };
    const cloudEvent = JSON.parse(encodeEvent(message, 'cloudevents'));
    assert.equal(cloudEvent.source, '/walrelay/messages');
    assert.equal(cloudEvent.type, 'io.walrelay.message');
    assert.ok(!('subject' in cloudEvent));
    assert.ok(!('time' in cloudEvent));
    assert.equal(cloudEvent.data.prefix, 'app');
  });
});
