// Schema events without a database: the announcement rule across sessions
// (an unconfirmed announcement is made again when its transaction is re-sent),
// which sinks receive them, and how each format renders them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TransactionAssembler } from '../../relay/route/assembler.js';
import { TypeCatalog, type Queryable } from '../../relay/source/type-catalog.js';
import { AnnouncedShapes, schemaEventId } from '../../relay/route/schema-event.js';
import { SinkRoute } from '../../relay/route/sink-route.js';
import { Metrics } from '../../relay/ops/metrics.js';
import { encodeEvent } from '../../sinks/formats.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { Sink } from '../../sinks/sink.js';
import { lsn, type Lsn } from '../../relay/lsn.js';

const offline: Queryable = { query: () => Promise.reject(new Error('no database in unit tests')) };
const catalog = new TypeCatalog(offline);

const relation = (typeMod: number) => ({
  tag: 'relation' as const, relationId: 16400, schema: 'public', name: 't', replicaIdentity: 'd' as const,
  columns: [{ flags: 1, name: 'id', typeOid: 23, typeMod: -1 }, { flags: 0, name: 'code', typeOid: 1043, typeMod: typeMod }],
});

/** One session: a Relation message, then a transaction committing at `commit` with one insert. */
async function session(shapes: AnnouncedShapes, confirmed: Lsn, commit: bigint, typeMod = 14): Promise<ChangeEvent[]> {
  shapes.forgetUnconfirmed(confirmed);
  const events: ChangeEvent[] = [];
  const assembler = new TransactionAssembler(catalog, { event: (event) => events.push(event), commit: () => undefined }, shapes);
  await assembler.apply(relation(typeMod), lsn(commit - 0x20n));
  assembler.apply({ tag: 'begin', finalLsn: lsn(commit), commitTime: 0n, xid: 900 }, lsn(commit - 0x10n));
  assembler.apply({ tag: 'insert', relationId: 16400, newTuple: ['1', 'x'] }, lsn(commit - 0x08n));
  assembler.apply({ tag: 'commit', flags: 0, commitLsn: lsn(commit), endLsn: lsn(commit + 0x30n), commitTime: 0n }, lsn(commit));
  return events;
}

describe('schema events', () => {
  it('are announced again when the transaction that announced them was not confirmed', async () => {
    const shapes = new AnnouncedShapes();
    const first = await session(shapes, lsn(0n), 0x1000n);
    assert.deepEqual(first.map((event) => event.op), ['schema', 'insert']);
    // Not confirmed: the next session receives the same transaction again and must announce it again, identically.
    const again = await session(shapes, lsn(0n), 0x1000n);
    assert.deepEqual(again.map((event) => encodeEvent(event, 'walrelay')), first.map((event) => encodeEvent(event, 'walrelay')));
    // Confirmed: a later transaction with the same shape is not announced (a reconnect's Relation message).
    const later = await session(shapes, lsn(0x1030n), 0x2000n);
    assert.deepEqual(later.map((event) => event.op), ['insert']);
    // A new shape (varchar(10) → varchar(20)) is.
    const altered = await session(shapes, lsn(0x2030n), 0x3000n, 24);
    assert.deepEqual(altered.map((event) => event.op), ['schema', 'insert']);
    assert.notEqual(altered[0].schemaVersion, first[0].schemaVersion);
  });

  it('have ids between the events around them, also around the "-.begin" and "-~commit" of transaction events', () => {
    const prefix = '00000000016B37D8-';
    const ordered = [
      '00000000016B37D0-0000000009', '00000000016B37D8', prefix + '.begin', schemaEventId(prefix, 0), prefix + '0000000000',
      schemaEventId(prefix, 1), prefix + '0000000001', schemaEventId(prefix, 10), prefix + '0000000010', prefix + '~commit', '00000000016B37E0-.begin',
    ];
    assert.deepEqual([...ordered].sort(), ordered);
    assert.equal(schemaEventId(prefix, 0), '00000000016B37D8-.schema');
    assert.equal(schemaEventId(prefix, 3), '00000000016B37D8-0000000002.schema');
  });

  it('are not made at all when no sink takes them', async () => {
    const events: ChangeEvent[] = [];
    const assembler = new TransactionAssembler(catalog, { event: (event) => events.push(event), commit: () => undefined });
    await assembler.apply(relation(14), lsn(0x10n));
    assembler.apply({ tag: 'begin', finalLsn: lsn(0x100n), commitTime: 0n, xid: 1 }, lsn(0x20n));
    assembler.apply({ tag: 'insert', relationId: 16400, newTuple: ['1', 'x'] }, lsn(0x30n));
    assert.deepEqual(events.map((event) => event.op), ['insert']);
    assert.match(events[0].schemaVersion!, /^[0-9a-f]{12}$/);
  });

  it('reach only sinks with schemaEvents: true', async () => {
    const [schema, insert] = await session(new AnnouncedShapes(), lsn(0n), 0x1000n);
    const written: string[] = [];
    const sink: Sink = { name: 's', durable: true, start: async () => {}, write: async (events) => { written.push(...events.map((event) => event.op)); }, isReady: () => true, close: async () => {} };
    await new SinkRoute(sink, undefined, new Metrics()).deliver([schema, insert]);
    assert.deepEqual(written, ['insert']);
    written.length = 0;
    await new SinkRoute(sink, ['public.t'], new Metrics()).withSchemaEvents(true).deliver([schema, insert]);
    assert.deepEqual(written, ['schema', 'insert']);
  });

  it('are a walrelay.schema message in the debezium format and io.walrelay.schema in cloudevents', async () => {
    const [schema] = await session(new AnnouncedShapes(), lsn(0n), 0x1000n);
    const debezium = JSON.parse(encodeEvent(schema, 'debezium'));
    assert.equal(debezium.op, 'm');
    assert.equal(debezium.message.prefix, 'walrelay.schema');
    assert.deepEqual(JSON.parse(Buffer.from(debezium.message.content, 'base64').toString()), {
      schema: 'public', table: 't', schemaVersion: schema.schemaVersion,
      columns: [{ name: 'id', type: 'int4', typeOid: 23, typeMod: -1, key: true }, { name: 'code', type: 'varchar', typeOid: 1043, typeMod: 14, key: false }],
    });
    const cloud = JSON.parse(encodeEvent(schema, 'cloudevents'));
    assert.equal(cloud.type, 'io.walrelay.schema');
    assert.equal(cloud.source, '/walrelay/public.t');
    assert.equal(cloud.data.op, 'schema');
  });
});
