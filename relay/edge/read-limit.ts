// At most `max` feed reads for clients catching up run at once on an edge
// (edge config `feed.catchUpReads`). When an edge dies, its clients all
// reconnect to the others at the same moment, each resuming from its own
// point; unlimited, every one of them would query Redis or Kafka at once.
// Waiting reads go in arrival order, so every client progresses.
import type { FeedCursor, FeedHistory } from '../../sinks/websocket/feed-history.js';

export class ReadLimit {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  /** Reads in flight now (a gauge). */
  get inFlight(): number {
    return this.running;
  }

  async run<T>(read: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await read();
    } finally {
      const next = this.waiting.shift();
      if (next) next(); // the slot passes on: running stays the same
      else this.running--;
    }
  }

  /** `history` with every locate and chunk read taking its turn. */
  limit(history: FeedHistory): FeedHistory {
    return {
      open: async (afterId) => {
        const cursor = await this.run(() => history.open(afterId));
        return cursor && this.limitCursor(cursor);
      },
    };
  }

  private limitCursor(cursor: FeedCursor): FeedCursor {
    return {
      get lastId() { return cursor.lastId; },
      next: (count) => this.run(() => cursor.next(count)),
    };
  }
}
