// The gap event (source.onSlotLost: recreate): built from its WAL message,
// sent to every sink whatever its tables and every websocket subscription,
// and rendered in each format.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TransactionAssembler } from '../../relay/route/assembler.js';
import { TypeCatalog, type Queryable } from '../../relay/source/type-catalog.js';
import { GAP_PREFIX } from '../../relay/route/gap.js';
import { SinkRoute } from '../../relay/route/sink-route.js';
import { Metrics } from '../../relay/ops/metrics.js';
import { Subscription } from '../../sinks/websocket/subscription.js';
import { encodeEvent } from '../../sinks/formats.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { Sink } from '../../sinks/sink.js';
import { lsn } from '../../relay/lsn.js';

const offline: Queryable = { query: () => Promise.reject(new Error('no database in unit tests')) };
const GAP_CONTENT = JSON.stringify({ v: 1, slot: 'walrelay', fromLsn: '0/1000', toLsn: '0/3000028' });

/** The events the assembler makes of one transaction holding one logical message. */
function assemble(prefix: string, content: string): ChangeEvent[] {
  const events: ChangeEvent[] = [];
  const assembler = new TransactionAssembler(new TypeCatalog(offline), { event: (event) => events.push(event), commit: () => undefined });
  assembler.apply({ tag: 'begin', finalLsn: lsn(0x3000100n), commitTime: 0n, xid: 900 }, lsn(0x3000050n));
  assembler.apply({ tag: 'message', transactional: true, lsn: lsn(0x3000060n), prefix, content: Buffer.from(content) }, lsn(0x3000060n));
  assembler.apply({ tag: 'commit', flags: 0, commitLsn: lsn(0x3000100n), endLsn: lsn(0x3000130n), commitTime: 0n }, lsn(0x3000100n));
  return events;
}

function gap(): ChangeEvent {
  return assemble(GAP_PREFIX, GAP_CONTENT)[0];
}

describe('gap event', () => {
  it('is made from the gap message, stamped like any change of its transaction', () => {
    const event = gap();
    assert.deepEqual(JSON.parse(encodeEvent(event, 'walrelay')), {
      id: '0000000003000100-0000000000', op: 'gap', slot: 'walrelay', fromLsn: '0/1000', toLsn: '0/3000028',
      lsn: '0/3000060', commitLsn: '0/3000100', xid: 900, commitTime: '2000-01-01T00:00:00.000000Z',
    });
  });

  it('stays a plain message when the content is not a gap message', () => {
    const [event] = assemble(GAP_PREFIX, '{"something":"else"}');
    assert.equal(event.op, 'message');
    assert.equal(event.prefix, GAP_PREFIX);
  });

  it('reaches a sink whatever its tables', async () => {
    const written: ChangeEvent[] = [];
    const sink: Sink = { name: 'orders-only', durable: true, start: async () => {}, write: async (events) => { written.push(...events); }, isReady: () => true, close: async () => {} };
    const route = new SinkRoute(sink, ['public.orders'], new Metrics());
    const message = assemble('app', 'hello')[0];
    assert.equal(route.deliver([message]), undefined, 'a plain message is not for a sink limited to tables');
    await route.deliver([gap()]);
    assert.deepEqual(written.map((event) => event.op), ['gap']);
  });

  it('reaches every websocket subscription unless its ops leave it out', () => {
    const event = gap();
    assert.equal(new Subscription({ type: 'subscribe', id: 's1', table: 'public.orders' }).matches(event, null), true);
    assert.equal(new Subscription({ type: 'subscribe', id: 's2', table: 'public.orders', filter: 'id=eq.1' }).matches(event, null), true);
    assert.equal(new Subscription({ type: 'subscribe', id: 's3', table: '*', ops: ['insert'] }).matches(event, null), false);
    assert.equal(new Subscription({ type: 'subscribe', id: 's4', table: '*', ops: ['gap'] }).matches(event, null), true);
  });

  it('is a walrelay.gap logical-decoding message in the debezium format', () => {
    const envelope = JSON.parse(encodeEvent(gap(), 'debezium', { database: 'shop' }));
    assert.equal(envelope.op, 'm');
    assert.equal(envelope.message.prefix, GAP_PREFIX);
    assert.deepEqual(JSON.parse(Buffer.from(envelope.message.content, 'base64').toString('utf8')), { slot: 'walrelay', fromLsn: '0/1000', toLsn: '0/3000028' });
    assert.equal(envelope.source.lsn, 0x3000060);
  });

  it('is type io.walrelay.gap with the walrelay event as data in the cloudevents format', () => {
    const cloudEvent = JSON.parse(encodeEvent(gap(), 'cloudevents'));
    assert.equal(cloudEvent.type, 'io.walrelay.gap');
    assert.equal(cloudEvent.source, '/walrelay/gap');
    assert.equal(cloudEvent.id, '0000000003000100-0000000000');
    assert.equal(cloudEvent.subject, undefined);
    assert.deepEqual(cloudEvent.data, JSON.parse(encodeEvent(gap(), 'walrelay')));
  });
});
