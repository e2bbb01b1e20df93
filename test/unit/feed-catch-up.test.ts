// An edge's catch-up from the feed (sinks/websocket/feed-catch-up.ts) when
// its ring cannot say where the client stands: a ring that has received
// nothing yet (an edge started while the feed was unreachable) must read the
// feed and at its end go live, not hand over at once (losing what lies
// between) nor report a gap; without a ring (ringSize 0) nothing can be
// resumed, and the gap is reported before anything is sent.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { catchUpFromFeed, type CatchUpTarget } from '../../sinks/websocket/feed-catch-up.js';
import { ReplayRing } from '../../sinks/websocket/ring.js';
import type { FeedCursor, SinkFeedHistory } from '../../sinks/websocket/feed-history.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { Client } from '../../sinks/websocket/client.js';

const event = (n: number): ChangeEvent => ({ id: `${n.toString(16).toUpperCase().padStart(16, '0')}-0000000000`, op: 'insert', schema: 'public', table: 't', key: { id: n }, new: { id: n }, old: null, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-12-06T00:00:00.000000Z' });

/** A feed holding events 1..count, read from after `from`. */
function cursorOver(count: number, from: number): FeedCursor {
  let next = from + 1;
  return {
    get lastId() { return event(next - 1).id; },
    async next(chunk: number) {
      const events: ChangeEvent[] = [];
      while (events.length < chunk && next <= count) events.push(event(next++));
      return { events, atEnd: next > count };
    },
  };
}

async function run(ring: ReplayRing, feedSize: number, from: number): Promise<{ sent: number[]; ended: string }> {
  const sent: number[] = [];
  let ended = 'not ended';
  const target: CatchUpTarget = {
    active: () => true,
    send: (change) => { sent.push(Number.parseInt(change.id.slice(0, 16), 16)); },
    reached: () => undefined,
    handOver: (afterId, position) => { ended = `handOver ${Number.parseInt(afterId.slice(0, 16), 16)} ${position}`; },
    gap: () => { ended = 'gap'; },
  };
  const client = { beginBatch() {}, endBatch() {}, drained: async () => undefined } as unknown as Client;
  const history = { open: async () => null, accepts: () => true } as unknown as SinkFeedHistory;
  await catchUpFromFeed(cursorOver(feedSize, from), history, ring, client, 1000, target);
  return { sent, ended };
}

it('with a ring that has received nothing yet, reads the feed to its end, then goes live', async () => {
  const { sent, ended } = await run(new ReplayRing(50), 120, 5);
  assert.deepEqual(sent, Array.from({ length: 115 }, (_, i) => i + 6));
  assert.equal(ended, 'handOver 120 null');
});

it('with ringSize 0 (nothing to replay what arrives while reading), reports the gap at once instead of sending the feed first', async () => {
  const ring = new ReplayRing(0);
  for (let n = 1; n <= 100; n++) ring.push(event(n));
  const { sent, ended } = await run(ring, 120, 5);
  assert.deepEqual(sent, []);
  assert.equal(ended, 'gap');
});

it('with a ring that reaches back, hands over to it as soon as it does', async () => {
  const ring = new ReplayRing(50);
  for (let n = 1; n <= 120; n++) ring.push(event(n));
  const { sent, ended } = await run(ring, 120, 5);
  assert.deepEqual(sent.slice(0, 3), [6, 7, 8]);
  assert.match(ended, /^handOver \d+ \d+$/);
});
