// Reading a Redis feed back from an event id (sinks/websocket/feed-history.ts),
// for clients that resume from further back than an edge's ring. Stream
// entry ids are append times, event ids sort in delivery order: a binary
// search over the stream's milliseconds (XREVRANGE … COUNT 1, one entry per
// step, about 30 steps for a feed spanning days) finds an entry at or before
// the point, the anchor; reading goes on from it with XRANGE. Each read
// starts at the last entry read, inclusive: when the stream no longer holds
// it, trimming (MAXLEN, which removes from the head) has passed the
// client's point, a gap, detected in the same command as the read.
import { decodeFeedEntry } from '../../sinks/feed/entry.js';
import type { OriginDecoder } from '../../sinks/feed/entry-origin.js';
import type { FeedRedis } from '../../sinks/feed/redis-client.js';
import type { ChangeEvent } from '../route/event.js';
import type { FeedChunk, FeedCursor, FeedHistory } from '../../sinks/websocket/feed-history.js';

type Entry = [id: string, fields: string[]];

/** The entry's event; with its origin (for format: debezium) when `origins` is given, as when reading for a client. */
function eventOf(entry: Entry, origins?: OriginDecoder): ChangeEvent | null {
  const [, fields] = entry;
  try {
    return decodeFeedEntry(fields[fields.indexOf('e') + 1] ?? '', origins);
  } catch {
    return null; // not a walrelay feed entry: skipped, as the edge's reader skips it
  }
}

const millisecondsOf = (streamId: string): number => Number(streamId.slice(0, streamId.indexOf('-')));

export class RedisFeedHistory implements FeedHistory {
  constructor(private readonly client: FeedRedis, private readonly stream: string, private readonly origins: OriginDecoder) {}

  async open(afterId: string): Promise<FeedCursor | null> {
    const [oldest] = (await this.client.xrange(this.stream, '-', '+', 'COUNT', 1)) as Entry[];
    // The feed must hold an entry at or before the point, else what came between may be gone.
    if (oldest === undefined || !this.atOrBefore(oldest, afterId)) return null;
    const [newest] = (await this.client.xrevrange(this.stream, '+', '-', 'COUNT', 1)) as Entry[];
    if (newest === undefined) return null;
    if (this.atOrBefore(newest, afterId)) return new RedisFeedCursor(this.client, this.origins, this.stream, newest[0], afterId);
    // lo: a millisecond whose last entry is at or before the point; hi: one whose last entry is after it.
    let anchor = oldest[0];
    let lo = millisecondsOf(oldest[0]);
    let hi = millisecondsOf(newest[0]);
    const lastUpTo = async (ms: number) => ((await this.client.xrevrange(this.stream, String(ms), '-', 'COUNT', 1)) as Entry[])[0];
    const first = await lastUpTo(lo);
    if (first === undefined || !this.atOrBefore(first, afterId)) return new RedisFeedCursor(this.client, this.origins, this.stream, anchor, afterId);
    anchor = first[0];
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const entry = await lastUpTo(mid);
      if (entry !== undefined && this.atOrBefore(entry, afterId)) {
        lo = mid;
        anchor = entry[0];
      } else hi = mid;
    }
    return new RedisFeedCursor(this.client, this.origins, this.stream, anchor, afterId);
  }

  /** An entry whose event is at or before `afterId` (an entry that is no event counts as before: it is skipped). */
  private atOrBefore(entry: Entry, afterId: string): boolean {
    const event = eventOf(entry);
    return event === null || event.id <= afterId;
  }
}

class RedisFeedCursor implements FeedCursor {
  constructor(private readonly client: FeedRedis, private readonly origins: OriginDecoder, private readonly stream: string, private anchor: string, public lastId: string) {}

  async next(count: number): Promise<FeedChunk | null> {
    const entries = (await this.client.xrange(this.stream, this.anchor, '+', 'COUNT', count + 1)) as Entry[];
    if (entries.length === 0 || entries[0][0] !== this.anchor) return null;
    const events: ChangeEvent[] = [];
    for (const entry of entries.slice(1)) {
      this.anchor = entry[0];
      const event = eventOf(entry, this.origins);
      // An event appended again (a retried batch, a relay restart) is not above the last one read: skipped, as live.
      if (event === null || event.id <= this.lastId) continue;
      this.lastId = event.id;
      events.push(event);
    }
    return { events, atEnd: entries.length <= count };
  }
}
