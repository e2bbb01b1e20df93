// The differential test's oracle reader (test/harness/test-decoding.ts) and
// reference mapping (documented-mapping.ts) on lines in test_decoding.c's
// formats, including the ones that could mislead a parser.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecord, UNCHANGED_TOAST } from '../harness/test-decoding.js';
import { documentedValue, minimalJson, parseArray } from '../harness/documented-mapping.js';
import { JsonNumber, parseLossless } from '../harness/lossless-json.js';

const record = (text: string | Buffer) => parseRecord('0/10', Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'));

describe('test_decoding output', () => {
  it('reads BEGIN and COMMIT with xid and time', () => {
    assert.deepEqual(record('BEGIN 771'), { kind: 'begin', lsn: '0/10', xid: 771 });
    assert.deepEqual(record('COMMIT 771 (at 2026-11-22 10:00:00.5+00)'), { kind: 'commit', lsn: '0/10', xid: 771, commitTime: '2026-11-22 10:00:00.5+00' });
  });

  it('reads quoted names, quoted values with doubled quotes, bits, NULL and unchanged TOAST', () => {
    const line = `table public."Odd ""Name""": INSERT: "Col ""A"""[integer]:1 "select"[text]:'it''s '' new-tuple: x' b[bit]:B'101' n[numeric]:NaN t[timestamp with time zone]:'2026-11-22 10:00:00+00' j[json]:null big[text]:unchanged-toast-datum ok[boolean]:true`;
    assert.deepEqual(record(line), {
      kind: 'change', lsn: '0/10', op: 'insert', schema: 'public', table: 'Odd "Name"', old: null, new: [
        { name: 'Col "A"', type: 'integer', value: '1' },
        { name: 'select', type: 'text', value: "it's ' new-tuple: x" },
        { name: 'b', type: 'bit', value: '101' },
        { name: 'n', type: 'numeric', value: 'NaN' },
        { name: 't', type: 'timestamp with time zone', value: '2026-11-22 10:00:00+00' },
        { name: 'j', type: 'json', value: null },
        { name: 'big', type: 'text', value: UNCHANGED_TOAST },
        { name: 'ok', type: 'boolean', value: 'true' },
      ],
    });
  });

  it('reads an update with old key, array types, and deletes with and without tuple data', () => {
    const update = record(`table app.orders: UPDATE: old-key: id[bigint]:1 new-tuple: id[bigint]:2 a[integer[]]:'{1,2}'`);
    assert.equal(update.kind === 'change' && update.old?.[0].value, '1');
    assert.deepEqual(update.kind === 'change' && update.new, [{ name: 'id', type: 'bigint', value: '2' }, { name: 'a', type: 'integer[]', value: '{1,2}' }]);
    assert.deepEqual(record('table public.t: DELETE: (no-tuple-data)'), { kind: 'change', lsn: '0/10', op: 'delete', schema: 'public', table: 't', old: null, new: null });
  });

  it('reads truncates of several tables and their flags', () => {
    assert.deepEqual(record('table public.a, public.b: TRUNCATE: restart_seqs cascade'), {
      kind: 'truncate', lsn: '0/10', tables: [{ schema: 'public', table: 'a' }, { schema: 'public', table: 'b' }], restartIdentity: true, cascade: true,
    });
    assert.deepEqual(record('table public.a: TRUNCATE: (no-flags)'), { kind: 'truncate', lsn: '0/10', tables: [{ schema: 'public', table: 'a' }], restartIdentity: false, cascade: false });
  });

  it('reads message content as bytes, whatever they hold', () => {
    const content = Buffer.from([0x00, 0xff, 0x0a, 0x27]);
    const message = record(Buffer.concat([Buffer.from('message: transactional: 0 prefix: app, sz: 4 content:'), content]));
    assert.deepEqual(message, { kind: 'message', lsn: '0/10', transactional: false, prefix: 'app', content });
    assert.throws(() => record('message: transactional: 1 prefix: app, sz: 5 content:abc'), /sz 5/);
  });

  it('refuses what it does not understand', () => {
    assert.throws(() => record('table public.t: MERGE: x'), /expected/);
    assert.throws(() => record('something else'), /not understood/);
  });
});

describe('reference mapping', () => {
  it('maps scalars as the README says', () => {
    assert.deepEqual(documentedValue('integer', '-5'), new JsonNumber('-5'));
    assert.equal(documentedValue('double precision', 'NaN'), 'NaN');
    assert.equal(documentedValue('bigint', '9223372036854775807'), '9223372036854775807');
    assert.equal(documentedValue('boolean', 'true'), true);
    assert.equal(documentedValue('bytea', '\\x0aff'), 'Cv8=');
    assert.equal(documentedValue('date', '0044-03-15 BC'), '-000043-03-15');
    assert.equal(documentedValue('timestamp with time zone', '10000-01-01 00:00:00.5+00'), '+010000-01-01T00:00:00.500000Z');
    assert.equal(documentedValue('time with time zone', '10:00:00+02'), '10:00:00.000000+02:00');
    assert.equal(documentedValue('posint', '7', { posint: 'integer' }) instanceof JsonNumber, true);
  });

  it('keeps json numbers digit for digit and drops only whitespace between tokens', () => {
    assert.equal(minimalJson(' {"a" :\n 1.000, "s": "x  y\\" z"}\n'), '{"a":1.000,"s":"x  y\\" z"}');
    assert.deepEqual(parseLossless('[12345678901234567890]'), [new JsonNumber('12345678901234567890')]);
    assert.throws(() => parseLossless('{"a":1}\n{"b":2}'), /invalid JSON/);
  });

  it('parses array literals with quotes, NULL, nesting and bounds', () => {
    assert.deepEqual(parseArray('[0:1][1:1]={{"a\\"b"},{NULL}}', ','), [['a"b'], [null]]);
    assert.deepEqual(parseArray('{(1,1),(0,0);(2,2),(1,1)}', ';'), ['(1,1),(0,0)', '(2,2),(1,1)']);
  });
});
