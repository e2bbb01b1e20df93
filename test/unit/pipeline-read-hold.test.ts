// The pipeline holds the replication socket's reads (pauses it) while a live
// feed's dispatch window is open, so the window's transactions come in one
// read. Every hold must end: a read that schedules no flush (a keepalive, a
// Begin alone) must never leave the socket paused, or the stream goes silent.
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
import { waitFor } from '../harness/wait.js';

const relation = new Bytes().tag('R').u32(16384).cstring('public').cstring('t').tag('d').i16(1)
  .u8(1).cstring('id').u32(20).i32(-1).done();

function transaction(tx: number): { walStart: bigint; payload: Buffer }[] {
  const lsn = BigInt(0x1000000 + tx * 0x1000);
  return [
    { walStart: lsn, payload: new Bytes().tag('B').u64(lsn + 0x800n).u64(0n).u32(1000 + tx).done() },
    { walStart: lsn + 0x100n, payload: new Bytes().tag('I').u32(16384).tag('N').i16(1).text(String(tx)).done() },
    { walStart: lsn + 0x800n, payload: new Bytes().tag('C').u8(0).u64(lsn + 0x800n).u64(lsn + 0x900n).u64(0n).done() },
  ];
}

const endOf = (tx: number) => BigInt(0x1000000 + tx * 0x1000) + 0x900n;

/** Event-loop turns until `done` (at most 100): checked turn by turn, not by waitFor's timer, which may outlast a window. */
async function turnsUntil(done: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100 && !done(); turn++) await new Promise((resolve) => setImmediate(resolve));
}

function setUp(dispatchWindowMs = 5) {
  const flow = { paused: false, pauses: 0, pause() { this.paused = true; this.pauses++; }, resume() { this.paused = false; }, sendStatus() {} };
  const written: ChangeEvent[] = [];
  const sink: Sink = { name: 'memory', durable: true, start: async () => {}, close: async () => {}, isReady: () => true, write: async (events) => { written.push(...events); } };
  let confirmed = 0n;
  const checkpoint = new Checkpoint(0n as Lsn, (lsn) => { confirmed = lsn; });
  const pipeline = new Pipeline([new SinkRoute(sink, undefined, new Metrics())], checkpoint, new TypeCatalog({ query: async () => ({ rows: [] }) } as never), flow as FlowControl,
    { batchEvents: 500, batchBytes: 131_072, inFlightBatches: 2, dispatchWindowMs }, (error) => { throw error; });
  const feed = (messages: { walStart: bigint; payload: Buffer }[]) => {
    for (const { walStart, payload } of messages) pipeline.onData({ kind: 'data', walStart: walStart as Lsn, walEnd: walStart as Lsn, payload });
  };
  feed([{ walStart: 1n, payload: relation }]);
  return { flow, written, feed, pipeline, confirmed: () => confirmed };
}

describe('pipeline: reads held for a live feed\'s dispatch window', () => {
  it('a transaction right after a dispatch holds reads until its window ends, then goes out and reads resume', async () => {
    const { flow, written, feed, confirmed } = setUp(500); // a long window: a loaded machine's pauses fall within it
    feed(transaction(1)); // after a quiet spell: dispatched at once, after this turn's reads
    await turnsUntil(() => confirmed() === endOf(1));
    assert.equal(confirmed(), endOf(1), 'the first transaction went out and was confirmed');
    feed(transaction(2)); // within the window that dispatch opened: held
    assert.equal(flow.paused, true, 'reads held while the window is open');
    await waitFor(() => confirmed() === endOf(2), { what: 'the second transaction confirmed', timeoutMs: 5000 });
    await waitFor(() => !flow.paused, { what: 'reads resumed once a window brought nothing', timeoutMs: 5000 });
    assert.deepEqual(written.map((event) => event.op), ['insert', 'insert']);
  });

  it('a live feed: once a window has dispatched, the next window holds reads at once, and a window that brings nothing ends the holds', async () => {
    const { flow, feed, confirmed } = setUp(500); // long: a loaded machine's pauses must not end a window empty
    feed(transaction(1)); // after a quiet spell: at once
    await turnsUntil(() => confirmed() === endOf(1));
    feed(transaction(2)); // within the window: held, dispatched at its end
    await waitFor(() => confirmed() === endOf(2), { what: 'the second transaction confirmed', timeoutMs: 5000, intervalMs: 1 });
    // The feed is live: the next window starts now with reads held, so its first transaction wakes nothing (the
    // window's timer reads it with the rest): one wake-up per window instead of two.
    assert.equal(flow.paused, true, 'reads held for the next window before anything arrived');
    feed(transaction(3));
    await waitFor(() => confirmed() === endOf(3), { what: 'the third transaction confirmed', timeoutMs: 5000, intervalMs: 1 });
    assert.equal(flow.paused, true, 'still live: held again');
    // A window with nothing in it: the feed went quiet, reads resume and stay on (no timer left running).
    await waitFor(() => !flow.paused, { what: 'reads resumed after an empty window', timeoutMs: 5000, intervalMs: 1 });
    const pauses = flow.pauses;
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(flow.pauses, pauses, 'no hold taken while the feed is quiet');
    assert.equal(flow.paused, false);
  });

  it('a fast feed gets a shorter window: one that gathered 300 events in a 1 s window is followed by one of ~1/3 s', async () => {
    const { feed, confirmed } = setUp(1000);
    feed(transaction(1)); // after a quiet spell: at once, and it opens a window
    await turnsUntil(() => confirmed() === endOf(1));
    const burst: { walStart: bigint; payload: Buffer }[] = [];
    for (let tx = 2; tx <= 301; tx++) burst.push(...transaction(tx));
    feed(burst); // 300 events in that window
    await waitFor(() => confirmed() === endOf(301), { what: 'the window of 300', timeoutMs: 5000, intervalMs: 1 });
    const windowEnded = performance.now();
    feed(transaction(302));
    await waitFor(() => confirmed() === endOf(302), { what: 'the next window', timeoutMs: 5000, intervalMs: 1 });
    const waited = performance.now() - windowEnded;
    assert.ok(waited > 150 && waited < 800, `the next window lasted ${waited.toFixed(0)} ms (expected ~333, not 1000)`);
  });

  it('a backlog: a read that fills a batch is not held within the window (the socket holds more)', async () => {
    const { flow, feed, confirmed } = setUp(500);
    feed(transaction(1));
    await turnsUntil(() => confirmed() === endOf(1));
    assert.equal(confirmed(), endOf(1));
    // Within the window that dispatch opened, one read with 600 transactions: a full batch (500 events) goes out at once.
    const burst: { walStart: bigint; payload: Buffer }[] = [];
    for (let tx = 2; tx <= 601; tx++) burst.push(...transaction(tx));
    feed(burst);
    assert.equal(flow.paused, false, 'reads go on while a backlog fills batches');
    await waitFor(() => confirmed() === endOf(601), { what: 'the burst confirmed', timeoutMs: 5000 });
  });

  it('a backlog read within a window: after its full batches, the rest goes out at the window\'s end and reads are not held again', async () => {
    const { flow, feed, confirmed } = setUp(500);
    feed(transaction(1));
    await turnsUntil(() => confirmed() === endOf(1));
    const burst: { walStart: bigint; payload: Buffer }[] = [];
    for (let tx = 2; tx <= 601; tx++) burst.push(...transaction(tx));
    feed(burst); // a full batch of 500 goes out at once, the last 100 at the window's end
    await waitFor(() => confirmed() === endOf(601), { what: 'the burst confirmed', timeoutMs: 5000, intervalMs: 1 });
    assert.equal(flow.paused, false, 'a backlog: the next window does not hold reads');
  });

  it('pipeline.dispatchWindowMs 0: a transaction right after a dispatch goes out at once, nothing held', async () => {
    const { flow, written, feed, confirmed } = setUp(0);
    feed(transaction(1));
    await turnsUntil(() => confirmed() === endOf(1));
    const pausesBefore = flow.pauses;
    feed(transaction(2));
    assert.equal(flow.paused, false, 'no window: reads go on');
    await turnsUntil(() => confirmed() === endOf(2));
    assert.equal(confirmed(), endOf(2), 'dispatched in the next turn, not a window later');
    assert.equal(flow.pauses, pausesBefore, 'reads were never held');
    assert.equal(written.length, 2);
  });

  it('a read that schedules no flush (a keepalive, a Begin alone) never leaves reads held', async () => {
    const { flow, feed, pipeline, confirmed } = setUp();
    feed(transaction(1));
    await waitFor(() => confirmed() === endOf(1), { what: 'the first transaction confirmed', timeoutMs: 5000 });
    // Within the window: a keepalive alone, then the Begin of the next transaction alone.
    pipeline.onKeepalive({ kind: 'keepalive', walEnd: endOf(1) as Lsn, replyRequested: false });
    feed(transaction(2).slice(0, 1));
    await new Promise((resolve) => setTimeout(resolve, 20)); // past any window
    assert.equal(flow.paused, false, 'nothing holds the socket: the rest of the transaction can arrive');
    feed(transaction(2).slice(1));
    await waitFor(() => confirmed() === endOf(2), { what: 'the second transaction confirmed', timeoutMs: 5000 });
    assert.equal(flow.paused, false);
  });

  it('fifty transactions fed window after window: every hold is released and every transaction confirmed', async () => {
    const { flow, feed, confirmed } = setUp();
    // Many windows in a row, each fed as soon as the last one was confirmed: every hold is released.
    for (let tx = 1; tx <= 50; tx++) {
      feed(transaction(tx));
      await waitFor(() => confirmed() === endOf(tx), { what: `transaction ${tx} confirmed`, timeoutMs: 5000, intervalMs: 1 });
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(flow.paused, false);
    assert.ok(flow.pauses > 0, 'reads were held at least once');
  });
});
