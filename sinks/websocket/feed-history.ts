// What a websocket sink on `walrelay edge` reads from the feed when a client
// resumes from further back than its ring holds (docs/edges.md): the feed's
// events after an event id, in feed order, in chunks. Ids sort in delivery
// order, so "after this id" means the same on every edge. Implemented by
// relay/edge/redis-feed-history.ts and kafka-feed-history.ts; the relay's own
// websocket sink has none and resumes from its ring alone.
import type { ChangeEvent } from '../../relay/route/event.js';

export interface FeedChunk {
  /** The next events, oldest first (entries the relay appended twice are skipped). */
  events: ChangeEvent[];
  /** True when the feed held nothing more after them at the time of reading. */
  atEnd: boolean;
}

export interface FeedCursor {
  /** The id of the last event read: a client sent every (selected) event up to it has all it needs up to there. */
  readonly lastId: string;
  /** About `count` more entries after lastId; null when the feed no longer holds what follows lastId (trimmed meanwhile). */
  next(count: number): Promise<FeedChunk | null>;
}

export interface FeedHistory {
  /** A cursor after `afterId`; null when the feed no longer reaches back to it (maxLen, retention). */
  open(afterId: string): Promise<FeedCursor | null>;
}

/** One sink's view of the feed: the sink's `tables` and schemaEvents select from what is read, as they do from what arrives live. */
export interface SinkFeedHistory extends FeedHistory {
  accepts(event: ChangeEvent): boolean;
}
