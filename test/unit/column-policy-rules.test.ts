// Column policy rules without servers: pattern matching, first match wins,
// what hash and mask produce, what happens to key, old and unchanged, and the
// configuration errors (validated by the real config parser).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { ColumnPolicy, MASK } from '../../relay/stages/column-policy.js';
import { parseConfig } from '../../config/load.js';
import type { ChangeEvent } from '../../relay/route/event.js';

const hmac = (text: string) => createHmac('sha256', 'k').update(text).digest('hex');

function change(fields: Partial<ChangeEvent>): ChangeEvent {
  return { id: '0000000000000001-0000000000', op: 'update', schema: 'app', table: 'users', key: { id: 1 }, new: null, old: null, lsn: '0/1', commitLsn: '0/2', xid: 5, commitTime: '2026-01-01T00:00:00.000000Z', ...fields };
}

describe('column policy rules', () => {
  it('matches schema.table.column patterns with wildcards; the first listed match wins', () => {
    const policy = new ColumnPolicy({ 'app.users.email': 'hash', 'app.*.e*': 'drop', '*.*.secret_*': 'mask' }, 'k', 'sinks[0].columns');
    const out = policy.apply(change({ new: { id: 1, email: 'a@b', extra: 'x', secret_pin: '1234', name: 'Ann' } }));
    assert.deepEqual(out.new, { id: 1, email: hmac('a@b'), secret_pin: MASK, name: 'Ann' });
    const narrow = new ColumnPolicy({ 'app.users.email': 'hash' }, 'k', 'x');
    const other = change({ schema: 'public', table: 'users', new: { email: 'a@b' } });
    assert.equal(narrow.apply(other), other, 'a table without a matching rule gets the same event object back');
  });

  it('hashes the JSON text of non-strings, so int 42 and bigint "42" hash alike; NULL stays null', () => {
    const policy = new ColumnPolicy({ 'app.users.ref': 'hash', 'app.users.note': 'mask' }, 'k', 'x');
    const a = policy.apply(change({ new: { id: 1, ref: 42, note: null } }));
    const b = policy.apply(change({ new: { id: 1, ref: '42', note: 'hi' } }));
    assert.equal(a.new!.ref, b.new!.ref);
    assert.equal(a.new!.ref, hmac('42'));
    assert.equal(a.new!.note, null);
    assert.equal(b.new!.note, MASK);
    const json = policy.apply(change({ new: { id: 1, ref: { a: [1, 2] } } }));
    assert.equal(json.new!.ref, hmac('{"a":[1,2]}'));
  });

  it('applies to old rows, key values and the unchanged list', () => {
    const policy = new ColumnPolicy({ 'app.users.id': 'hash', 'app.users.blob': 'drop' }, 'k', 'x');
    const out = policy.apply(change({ key: { id: 7 }, new: { id: 7 }, old: { id: 7, blob: 'b' }, unchanged: ['blob', 'other'] }));
    assert.deepEqual(out.key, { id: hmac('7') });
    assert.deepEqual(out.old, { id: hmac('7') });
    assert.deepEqual(out.unchanged, ['other']);
    assert.equal(out.lsn, '0/1');
    assert.equal(out.xid, 5);
  });

  it('refuses to drop a key column, naming the sink, the pattern and the column', () => {
    const policy = new ColumnPolicy({ 'app.*.id': 'drop' }, undefined, 'sinks[2].columns');
    assert.throws(() => policy.apply(change({ new: { id: 1 } })), (error: any) => error.code === 'COLUMN_POLICY_DROPS_KEY' && error.kind === 'config' && /sinks\[2\]\.columns: "app\.\*\.id": drop would remove key column id of app\.users/.test(error.message));
    assert.equal(policy.dropRuleFor('app.users', 'id'), 'app.*.id');
  });

  it('removes dropped columns from a schema event\'s column list', () => {
    const policy = new ColumnPolicy({ 'app.users.ssn': 'drop' }, undefined, 'x');
    const schema = { ...change({ key: undefined }), columns: [{ name: 'id' }, { name: 'ssn' }] } as ChangeEvent;
    assert.deepEqual((policy.apply(schema) as any).columns, [{ name: 'id' }]);
  });

  it('is checked by the configuration parser: pattern shape, action, hash key, message templates', () => {
    const base = { source: { url: 'postgres://x@127.0.0.1/db' } };
    assert.throws(() => parseConfig({ ...base, sinks: [{ type: 'stdout', columns: { 'users.ssn': 'drop' } }] }, {}), /sinks\[0\]\.columns\.users\.ssn: expected a column pattern of the form schema\.table\.column/);
    assert.throws(() => parseConfig({ ...base, sinks: [{ type: 'stdout', columns: { 'a.b.c': 'encrypt' } }] }, {}), /expected drop, hash or mask/);
    assert.throws(() => parseConfig({ ...base, sinks: [{ type: 'stdout', columns: { 'a.b.c': 'hash' } }] }, {}), /sinks\[0\]\.columns: a hash policy needs a key/);
    assert.doesNotThrow(() => parseConfig({ ...base, sinks: [{ type: 'stdout', columns: { 'a.b.c': 'hash' } }] }, { WALRELAY_COLUMN_HASH_KEY: 'secret' }));
    assert.throws(() => parseConfig({ ...base, sinks: [{ type: 'stdout' }], messages: [{ prefix: 'p', destination: 'x.{table}' }] }, {}), /messages\[0\]\.destination: \{table\} is not available/);
  });
});
