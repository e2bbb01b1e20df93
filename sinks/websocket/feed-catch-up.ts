// Catching one client up from the feed (edges, docs/edges.md): when its
// resume point is older than the ring, the changes after it are read from
// the feed in chunks, each sent once the client's socket has taken the
// previous one (memory: one chunk per client catching up, not a retention
// window). While it catches up, the subscription ignores live changes: they
// land in the ring, and once the ring reaches back to the last change read,
// the rest comes from the ring and the subscription turns live, in one turn
// of the event loop, so nothing is missed or sent twice at the hand-over.
import type { ChangeEvent } from '../../relay/route/event.js';
import type { Client } from './client.js';
import type { FeedCursor, SinkFeedHistory } from './feed-history.js';
import type { ReplayRing } from './ring.js';

/** Feed entries read per chunk at most (fewer when the client's queue is smaller: a chunk must fit in it). */
const CHUNK_ENTRIES = 500;

export interface CatchUpTarget {
  /** False once the socket or the subscription is gone: the catch-up stops. */
  active(): boolean;
  /** A change read from the feed that the sink takes, in order; the subscription applies its own filters. */
  send(event: ChangeEvent): void;
  /** The client's socket took every change up to `afterId` (the point to resume from should the socket end now). */
  reached(afterId: string): void;
  /**
   * Synchronous: the ring holds every change after `afterId` from `position`
   * on (null: this edge has not yet read as far as `afterId`, later changes
   * arrive live). Replay those, skip live ones up to `afterId`, go live.
   */
  handOver(afterId: string, position: number | null): void;
  /** The feed no longer holds what follows (trimmed while reading). */
  gap(): void;
}

export async function catchUpFromFeed(cursor: FeedCursor, history: SinkFeedHistory, ring: ReplayRing, client: Client, maxClientQueue: number, target: CatchUpTarget): Promise<void> {
  const chunk = Math.max(1, Math.min(CHUNK_ENTRIES, Math.floor(maxClientQueue / 2)));
  // Without a ring (ringSize 0) what arrives live while the last chunk is read cannot be replayed: no resume.
  if (ring.capacity === 0) return target.gap();
  // A ring that has received nothing yet (the edge started while the feed was unreachable) cannot say where the
  // client stands: the feed is read to its end, and what arrives meanwhile lands in the ring.
  const ringKnows = () => ring.position > 0;
  for (;;) {
    if (!target.active()) return;
    if (ringKnows()) {
      const position = ring.positionAfter(cursor.lastId);
      if (position !== null) return target.handOver(cursor.lastId, position);
      if (ring.isAhead(cursor.lastId)) return target.handOver(cursor.lastId, null);
    }
    const read = await cursor.next(chunk);
    if (!target.active()) return;
    if (read === null) return target.gap();
    if (read.atEnd && read.events.length === 0) {
      // A ring that knows holds what followed (or this edge is behind): reaching the end here means the feed was replaced.
      return ringKnows() ? target.gap() : target.handOver(cursor.lastId, null);
    }
    client.beginBatch();
    try {
      for (const event of read.events) if (history.accepts(event)) target.send(event);
    } finally {
      client.endBatch();
    }
    await client.drained();
    if (target.active()) target.reached(cursor.lastId);
  }
}
