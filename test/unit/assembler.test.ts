// The assembler on hand-built pgoutput messages: event ids (they sort
// strictly in delivery order and are the same on re-delivery) and rows under
// each replica identity when PostgreSQL leaves a TOASTed value out.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TransactionAssembler } from '../../relay/route/assembler.js';
import { TypeCatalog, type Queryable } from '../../relay/source/type-catalog.js';
import { UNCHANGED, type PgoutputMessage, type RelationColumn } from '../../relay/source/pgoutput.js';
import { BACKFILL_PREFIX, type BackfillChunk } from '../../relay/backfill/backfill.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import { lsn, type Lsn } from '../../relay/lsn.js';

/** pg_index has no primary key for any table here; built-in types need no lookup. */
const noPrimaryKey: Queryable = { query: async () => ({ rows: [] }) };

/** Feeds messages (each with the WAL position pgoutput stamps it with) and collects the events. */
async function assemble(messages: [PgoutputMessage, bigint][], primaryKey: Queryable = noPrimaryKey): Promise<ChangeEvent[]> {
  const events: ChangeEvent[] = [];
  const assembler = new TransactionAssembler(new TypeCatalog(primaryKey), { event: (event) => events.push(event), commit: () => undefined });
  for (const [message, walStart] of messages) await assembler.apply(message, lsn(walStart));
  return events;
}

const column = (name: string, typeOid: number, key = false): RelationColumn => ({ name, typeOid, flags: key ? 1 : 0, typeMod: -1 });
const relation = (relationId: number, name: string, replicaIdentity: 'd' | 'f' | 'i' | 'n', columns: RelationColumn[]): PgoutputMessage =>
  ({ tag: 'relation', relationId, schema: 'public', name, replicaIdentity, columns });
const begin = (finalLsn: bigint, xid: number): PgoutputMessage => ({ tag: 'begin', finalLsn: finalLsn as Lsn, commitTime: 0n, xid });
const commit = (commitLsn: bigint): PgoutputMessage => ({ tag: 'commit', flags: 0, commitLsn: commitLsn as Lsn, endLsn: (commitLsn + 0x30n) as Lsn, commitTime: 0n });
const message = (transactional: boolean, at: bigint, prefix = 'app', content = 'x'): PgoutputMessage =>
  ({ tag: 'message', transactional, lsn: at as Lsn, prefix, content: Buffer.from(content) });

function assertStrictlyIncreasing(events: ChangeEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i - 1].id < events[i].id, `event ${i} (${events[i].op}) has id ${events[i].id}, not after ${events[i - 1].id} (${events[i - 1].op})`);
  }
}

describe('event ids', () => {
  const items = relation(16384, 'items', 'd', [column('id', 23, true), column('name', 25)]);
  const chunk: BackfillChunk = { v: 1, schema: 'public', table: 'items', columns: ['id', 'name'], types: [23, 25], key: ['id'], rows: [['7', 'a'], ['8', 'b']] };

  // What PostgreSQL sends when a transaction's commit record directly follows
  // a non-transactional message: the message's LSN is the end of its record,
  // which is where the commit record (the transaction's final LSN) starts.
  const STREAM: [PgoutputMessage, bigint][] = [
    [items, 0x16B3700n],
    [begin(0x16B3700n, 700), 0x16B3600n],
    [{ tag: 'insert', relationId: 16384, newTuple: ['1', 'a'] }, 0x16B3600n],
    [commit(0x16B3700n), 0x16B3700n],
    [message(false, 0x16B37D8n), 0x16B37D8n],
    [begin(0x16B37D8n, 701), 0x16B3750n],
    [{ tag: 'insert', relationId: 16384, newTuple: ['2', 'b'] }, 0x16B3750n],
    [message(true, 0x16B37A0n), 0x16B37A0n],
    [{ tag: 'truncate', cascade: false, restartIdentity: false, relationIds: [16384] }, 0x16B37B0n],
    [message(true, 0x16B37C0n, BACKFILL_PREFIX, JSON.stringify(chunk)), 0x16B37C0n],
    [commit(0x16B37D8n), 0x16B37D8n],
    [message(false, 0x16B3900n), 0x16B3900n],
    [message(false, 0x16B3950n), 0x16B3950n],
    [begin(0x16B3A00n, 702), 0x16B3980n],
    [{ tag: 'insert', relationId: 16384, newTuple: ['3', 'c'] }, 0x16B3980n],
    [commit(0x16B3A00n), 0x16B3A00n],
  ];

  it('sort strictly in delivery order, also when a non-transactional message ends where the next commit record starts', async () => {
    const events = await assemble(STREAM);
    assert.deepEqual(events.map((event) => event.op), ['insert', 'message', 'insert', 'message', 'truncate', 'read', 'read', 'message', 'message', 'insert']);
    assertStrictlyIncreasing(events);
  });

  it('are the same when the stream is delivered again', async () => {
    const first = await assemble(STREAM);
    const again = await assemble([STREAM[0], ...STREAM.slice(4)]); // a restart after the first commit was confirmed: Relation messages come again
    assert.deepEqual(again.map((event) => event.id), first.slice(1).map((event) => event.id));
  });

  it('keep the commit LSN and position form for transactions', async () => {
    const events = await assemble(STREAM);
    assert.equal(events[0].id, '00000000016B3700-0000000000');
    assert.deepEqual(events.slice(2, 7).map((event) => event.id), [1, 2, 3, 4, 5].map((n) => `00000000016B37D8-${String(n - 1).padStart(10, '0')}`));
  });
});

describe('rows when PostgreSQL leaves an unchanged TOASTed value out', () => {
  const BIG = 'x'.repeat(9000);

  it('REPLICA IDENTITY FULL without primary key: the key and new take the value from the old row', async () => {
    const full = relation(16400, 'notes', 'f', [column('id', 23, true), column('body', 25, true), column('v', 23, true)]);
    const [update] = await assemble([
      [full, 0x100n], [begin(0x200n, 9), 0x100n],
      [{ tag: 'update', relationId: 16400, keyTuple: null, oldTuple: ['1', BIG, '1'], newTuple: ['1', UNCHANGED, '2'] }, 0x150n],
    ]);
    assert.deepEqual(update.key, { id: 1, body: BIG, v: 2 });
    assert.deepEqual(update.new, { id: 1, body: BIG, v: 2 });
    assert.deepEqual(update.old, { id: 1, body: BIG, v: 1 });
    assert.equal(update.unchanged, undefined, 'a value known from the old row is not listed as unchanged');
  });

  it('REPLICA IDENTITY FULL with a primary key: new takes the value from the old row, the key is the primary key', async () => {
    const pk: Queryable = { query: async () => ({ rows: [{ attname: 'id' }] }) };
    const full = relation(16401, 'docs', 'f', [column('id', 23, true), column('body', 25, true), column('v', 23, true)]);
    const [update] = await assemble([
      [full, 0x100n], [begin(0x200n, 9), 0x100n],
      [{ tag: 'update', relationId: 16401, keyTuple: null, oldTuple: ['1', BIG, '1'], newTuple: ['1', UNCHANGED, '2'] }, 0x150n],
    ], pk);
    assert.deepEqual(update.key, { id: 1 });
    assert.deepEqual(update.new, { id: 1, body: BIG, v: 2 });
    assert.equal(update.unchanged, undefined);
  });

  it('a key column left out of the new row is taken from the old key PostgreSQL sent', async () => {
    const keyed = relation(16402, 'codes', 'd', [column('code', 25, true), column('v', 23)]);
    const [update] = await assemble([
      [keyed, 0x100n], [begin(0x200n, 9), 0x100n],
      [{ tag: 'update', relationId: 16402, keyTuple: [BIG, null], oldTuple: null, newTuple: [UNCHANGED, '2'] }, 0x150n],
    ]);
    assert.deepEqual(update.key, { code: BIG });
    assert.deepEqual(update.new, { code: BIG, v: 2 });
    assert.deepEqual(update.old, { code: BIG });
    assert.equal(update.unchanged, undefined);
  });

  it('REPLICA IDENTITY DEFAULT: a non-key value is unknown, so it stays out of new and is listed', async () => {
    const keyed = relation(16403, 'items', 'd', [column('id', 23, true), column('body', 25), column('v', 23)]);
    const [update] = await assemble([
      [keyed, 0x100n], [begin(0x200n, 9), 0x100n],
      [{ tag: 'update', relationId: 16403, keyTuple: null, oldTuple: null, newTuple: ['1', UNCHANGED, '2'] }, 0x150n],
    ]);
    assert.deepEqual(update.key, { id: 1 });
    assert.deepEqual(update.new, { id: 1, v: 2 });
    assert.deepEqual(update.unchanged, ['body']);
  });
});
