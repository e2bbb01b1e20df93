// What the assembler hands the Debezium renderer beside each event: the
// column types and PostgreSQL's text, and the last commit before the event
// (source.sequence), only when a Debezium sink asked for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TransactionAssembler } from '../../relay/route/assembler.js';
import { TypeCatalog } from '../../relay/source/type-catalog.js';
import type { PgoutputMessage } from '../../relay/source/pgoutput.js';
import { originOf, type ChangeEvent } from '../../relay/route/event.js';
import { lsn, type Lsn } from '../../relay/lsn.js';

async function assemble(messages: [PgoutputMessage, bigint][], keepOrigins: boolean): Promise<ChangeEvent[]> {
  const events: ChangeEvent[] = [];
  const assembler = new TransactionAssembler(new TypeCatalog({ query: async () => ({ rows: [] }) }), { event: (event) => events.push(event), commit: () => undefined }, undefined, undefined, keepOrigins);
  for (const [message, walStart] of messages) await assembler.apply(message, lsn(walStart));
  return events;
}

const messages: [PgoutputMessage, bigint][] = [
  [{ tag: 'relation', relationId: 1, schema: 'public', name: 'items', replicaIdentity: 'd', columns: [{ name: 'id', typeOid: 23, flags: 1, typeMod: -1 }, { name: 'price', typeOid: 1700, flags: 0, typeMod: 655366 }] }, 0x100n],
  [{ tag: 'begin', finalLsn: 0x200n as Lsn, commitTime: 0n, xid: 7 }, 0x100n],
  [{ tag: 'insert', relationId: 1, newTuple: ['1', '2.50'] }, 0x110n],
  [{ tag: 'commit', flags: 0, commitLsn: 0x200n as Lsn, endLsn: 0x230n as Lsn, commitTime: 0n }, 0x230n],
  [{ tag: 'message', transactional: false, lsn: 0x240n as Lsn, prefix: 'app', content: Buffer.from('x') }, 0x240n],
  [{ tag: 'begin', finalLsn: 0x300n as Lsn, commitTime: 0n, xid: 8 }, 0x250n],
  [{ tag: 'delete', relationId: 1, keyTuple: ['1', null], oldTuple: null }, 0x260n],
  [{ tag: 'commit', flags: 0, commitLsn: 0x300n as Lsn, endLsn: 0x330n as Lsn, commitTime: 0n }, 0x330n],
];

test('events carry no origin unless a sink renders Debezium (PostgreSQL\'s text is not kept alive for nothing)', async () => {
  const events = await assemble(messages, false);
  assert.deepEqual(events.map((event) => originOf(event)), [undefined, undefined, undefined]);
});

test('with a Debezium sink, events carry column types, PostgreSQL\'s text and the previous commit end (a non-transactional message counts as one)', async () => {
  const [insert, message, deletion] = await assemble(messages, true);
  const origin = originOf(insert)!;
  assert.deepEqual(origin.columns, [{ name: 'id', typeOid: 23, typmod: -1, key: true }, { name: 'price', typeOid: 1700, typmod: 655366, key: false }]);
  assert.deepEqual(origin.newTuple, ['1', '2.50']);
  assert.equal(origin.previousCommitEnd, null, 'no commit seen yet');
  assert.equal(originOf(message)!.previousCommitEnd, '0/240', 'Debezium: its own LSN');
  assert.equal(originOf(message)!.previousCommitTime, '2000-01-01T00:00:00.000000Z');
  assert.equal(originOf(deletion)!.previousCommitEnd, '0/240');
  assert.deepEqual([originOf(deletion)!.oldTuple, originOf(deletion)!.oldIsKey], [['1', null], true]);
});
