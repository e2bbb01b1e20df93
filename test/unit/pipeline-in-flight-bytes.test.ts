// At most `inFlightBatches` batches are out at once, and together at most
// inFlightBatches × batchBytes bytes of pgoutput messages (always one batch):
// a batch holds at least one event, and one event can be a large value, so a
// count alone would let eight large values sit in memory while a slow sink
// takes the first.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline, type FlowControl } from '../../relay/route/pipeline.js';
import { Checkpoint } from '../../relay/route/checkpoint.js';
import { SinkRoute } from '../../relay/route/sink-route.js';
import { TypeCatalog } from '../../relay/source/type-catalog.js';
import { Metrics } from '../../relay/ops/metrics.js';
import type { Sink } from '../../sinks/sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { Lsn } from '../../relay/lsn.js';
import { Bytes } from '../harness/pgoutput-bytes.js';

const relation = new Bytes().tag('R').u32(16384).cstring('public').cstring('t').tag('d').i16(1)
  .u8(0).cstring('doc').u32(25).i32(-1).done();

/** A transaction with one row holding a `size`-character text value. */
function transaction(tx: number, size: number): { walStart: bigint; payload: Buffer }[] {
  const lsn = BigInt(0x1000000 + tx * 0x100000);
  return [
    { walStart: lsn, payload: new Bytes().tag('B').u64(lsn + 0x80000n).u64(0n).u32(1000 + tx).done() },
    { walStart: lsn + 0x100n, payload: new Bytes().tag('I').u32(16384).tag('N').i16(1).text('x'.repeat(size)).done() },
    { walStart: lsn + 0x80000n, payload: new Bytes().tag('C').u8(0).u64(lsn + 0x80000n).u64(lsn + 0x80100n).u64(0n).done() },
  ];
}

function setUp() {
  const flow: FlowControl = { pause() {}, resume() {}, sendStatus() {} };
  const calls: { events: readonly ChangeEvent[]; ack: () => void }[] = [];
  // A slow sink: a batch is acknowledged only when the test says so.
  const sink: Sink = {
    name: 'slow', durable: true, start: async () => {}, close: async () => {}, isReady: () => true,
    write: (events) => new Promise<void>((resolve) => { calls.push({ events, ack: resolve }); }),
  };
  const checkpoint = new Checkpoint(0n as Lsn, () => {});
  const pipeline = new Pipeline([new SinkRoute(sink, undefined, new Metrics())], checkpoint, new TypeCatalog({ query: async () => ({ rows: [] }) } as never), flow,
    { batchEvents: 500, batchBytes: 10_000, inFlightBatches: 8, dispatchWindowMs: 0 }, (error) => { throw error; });
  const feed = (messages: { walStart: bigint; payload: Buffer }[]) => {
    for (const { walStart, payload } of messages) pipeline.onData({ kind: 'data', walStart: walStart as Lsn, walEnd: walStart as Lsn, payload });
  };
  feed([{ walStart: 1n, payload: relation }]);
  return { calls, feed, checkpoint };
}

const turns = async (n: number) => { for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve)); };

describe('pipeline: batches in flight, counted in bytes too', () => {
  it('large values: the next batch waits until the ones out hold less than inFlightBatches × batchBytes', async () => {
    const { calls, feed, checkpoint } = setUp();
    for (let tx = 1; tx <= 6; tx++) feed(transaction(tx, 30_000)); // each batch one 30 kB value; the budget is 80 kB
    await turns(20);
    assert.equal(checkpoint.inFlight, 3, 'three batches (90 kB) out: the third took the budget past 80 kB, the fourth waits');
    assert.equal(calls.length, 1, 'the sink has the first; the others queue behind it in the route');
    calls[0].ack();
    await turns(20);
    assert.ok(checkpoint.inFlightBytes <= 80_000 + 30_100, `in flight ${checkpoint.inFlightBytes} bytes`);
    while (calls.some((call) => call.ack !== undefined) && checkpoint.inFlight > 0) {
      for (const call of calls.splice(0)) call.ack();
      await turns(20);
    }
    assert.equal(checkpoint.inFlight, 0);
    assert.equal(checkpoint.confirmed, BigInt(0x1000000 + 6 * 0x100000) + 0x80100n, 'every transaction confirmed');
  });

  it('small rows: the count binds (eight batches out), not the bytes', async () => {
    const { feed, checkpoint } = setUp();
    for (let tx = 1; tx <= 12; tx++) {
      feed(transaction(tx, 10));
      await turns(2); // a batch each
    }
    assert.equal(checkpoint.inFlight, 8);
  });
});
