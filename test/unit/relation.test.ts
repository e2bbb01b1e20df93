// RelationDecoder: rows and keys from pgoutput tuples, as values and as the
// JSON fragments the event path uses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TypeCatalog, type Queryable } from '../../relay/source/type-catalog.js';
import { RelationDecoder, type RelationMessage } from '../../relay/source/relation.js';
import { UNCHANGED, type RelationColumn, type Tuple } from '../../relay/source/pgoutput.js';

const offline: Queryable = { query: () => Promise.reject(new Error('no database in unit tests')) };
const catalog = new TypeCatalog(offline);

function relation(replicaIdentity: RelationMessage['replicaIdentity'], columns: [string, number, number][]): RelationMessage {
  return {
    tag: 'relation', relationId: 16384, schema: 'public', name: 'orders', replicaIdentity,
    columns: columns.map(([name, typeOid, flags]): RelationColumn => ({ name, typeOid, flags, typeMod: -1 })),
  };
}

// Key columns deliberately not first, to pin down column order.
const ORDERS = relation('d', [['note', 25, 0], ['id', 20, 1], ['region', 25, 1], ['paid', 16, 0], ['at', 1184, 0], ['blob', 17, 0]]);
const ROW: Tuple = ['hi "there"', '9223372036854775807', 'eu', 't', '2026-11-22 10:00:00.123456+00', '\\x0aff'];

describe('RelationDecoder', () => {
  it('decodes a row with the value mapping, in column order', () => {
    const decoder = new RelationDecoder(ORDERS, catalog);
    assert.equal(decoder.schema, 'public');
    assert.equal(decoder.table, 'orders');
    const { row, unchanged } = decoder.decodeRow(ROW);
    assert.deepEqual(row, { note: 'hi "there"', id: '9223372036854775807', region: 'eu', paid: true, at: '2026-11-22T10:00:00.123456Z', blob: 'Cv8=' });
    assert.deepEqual(Object.keys(row), ['note', 'id', 'region', 'paid', 'at', 'blob']);
    assert.deepEqual(unchanged, []);
  });

  it('leaves unchanged TOAST values out of the row and lists them; NULL stays null', () => {
    const decoder = new RelationDecoder(ORDERS, catalog);
    const tuple: Tuple = [null, '1', 'eu', 'f', null, UNCHANGED];
    const { row, unchanged } = decoder.decodeRow(tuple);
    assert.deepEqual(row, { note: null, id: '1', region: 'eu', paid: false, at: null });
    assert.ok(!('blob' in row));
    assert.deepEqual(unchanged, ['blob']);
    const encoded = decoder.encodeRow(tuple);
    assert.deepEqual(JSON.parse(encoded.json), row);
    assert.deepEqual(encoded.unchanged, ['blob']);
  });

  it('encodes the same JSON as it decodes', () => {
    const decoder = new RelationDecoder(ORDERS, catalog);
    assert.equal(decoder.encodeRow(ROW).json, JSON.stringify(decoder.decodeRow(ROW).row));
    assert.equal(decoder.encodeRow(ROW).unchanged, undefined);
    assert.equal(decoder.encodeKey(ROW), JSON.stringify(decoder.keyOf(ROW)));
  });

  it('takes the key from the replica-identity flags, in column order, from a tuple or a row', () => {
    const decoder = new RelationDecoder(ORDERS, catalog);
    assert.deepEqual(decoder.keyColumns, ['id', 'region']);
    const expected = { id: '9223372036854775807', region: 'eu' };
    assert.deepEqual(decoder.keyOf(ROW), expected);
    assert.deepEqual(Object.keys(decoder.keyOf(ROW)!), ['id', 'region']);
    assert.deepEqual(decoder.keyOf(decoder.decodeRow(ROW).row), expected);
    assert.equal(decoder.encodeKey(ROW), '{"id":"9223372036854775807","region":"eu"}');
  });

  it('reads the key of a K tuple, where non-key columns are null', () => {
    const decoder = new RelationDecoder(ORDERS, catalog);
    assert.deepEqual(decoder.keyOf([null, '7', 'us', null, null, null]), { id: '7', region: 'us' });
  });

  it('has no key without a replica identity (REPLICA IDENTITY NOTHING)', () => {
    const decoder = new RelationDecoder(relation('n', [['id', 23, 0], ['v', 25, 0]]), catalog);
    assert.deepEqual(decoder.keyColumns, []);
    assert.equal(decoder.keyOf(['1', 'a']), null);
    assert.equal(decoder.encodeKey(['1', 'a']), null);
  });

  it('uses the primary key under REPLICA IDENTITY FULL when it is known, every column otherwise', () => {
    const full = relation('f', [['v', 25, 1], ['id', 23, 1]]);
    const withKey = new RelationDecoder(full, catalog, ['id']);
    assert.deepEqual(withKey.keyColumns, ['id']);
    assert.deepEqual(withKey.keyOf(['x', '3']), { id: 3 });
    const withoutKey = new RelationDecoder(full, catalog);
    assert.deepEqual(withoutKey.keyColumns, ['v', 'id']);
    assert.deepEqual(withoutKey.keyOf(['x', '3']), { v: 'x', id: 3 });
    const staleKey = new RelationDecoder(full, catalog, ['gone']);
    assert.deepEqual(staleKey.keyColumns, ['v', 'id'], 'a primary key naming columns the relation lacks is ignored');
  });

  it('rejects a tuple whose length differs from the Relation message with PGOUTPUT_MALFORMED', () => {
    const decoder = new RelationDecoder(ORDERS, catalog);
    for (const tuple of [ROW.slice(1), [...ROW, 'extra']]) {
      for (const call of [() => decoder.decodeRow(tuple), () => decoder.encodeRow(tuple), () => decoder.keyOf(tuple), () => decoder.encodeKey(tuple)]) {
        assert.throws(call, (e: any) => e.code === 'PGOUTPUT_MALFORMED' && e.message.includes('public.orders') && e.message.includes(String(tuple.length)));
      }
    }
  });

  it('escapes column, schema and table names in the JSON', () => {
    const odd: RelationMessage = { ...relation('d', [['we"ird\\', 23, 1]]), schema: 'Sch"ema', name: 'tä\nble' };
    const decoder = new RelationDecoder(odd, catalog);
    assert.deepEqual(JSON.parse(decoder.encodeRow(['1']).json), { 'we"ird\\': 1 });
    assert.deepEqual(JSON.parse(`{${decoder.qualifiedJson}}`), { schema: 'Sch"ema', table: 'tä\nble' });
  });
});
