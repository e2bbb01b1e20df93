// Which LSN may be confirmed to PostgreSQL. Batches are dispatched in stream
// order and may complete in any order (sinks run in parallel); the confirmed
// LSN is the end of the newest commit whose batch, and every batch before it,
// is acknowledged by every durable sink.
import type { Lsn } from '../lsn.js';

export interface Ticket {
  /** End LSN of the last commit contained in (or completed by) this batch. */
  readonly commitEnd: Lsn | null;
  /** Size of the batch's pgoutput messages: what the in-flight byte budget counts. */
  readonly bytes: number;
  done: boolean;
}

export class Checkpoint {
  private readonly open: Ticket[] = [];
  private confirmedLsn: Lsn;
  private readonly waiters: (() => void)[] = [];
  private openBytes = 0;

  constructor(start: Lsn, private readonly onAdvance: (confirmed: Lsn) => void) {
    this.confirmedLsn = start;
  }

  /** Moves the starting position down before anything was dispatched (the session starts earlier than planned). */
  rewindTo(start: Lsn): void {
    if (this.open.length > 0) throw new Error('checkpoint rewound with batches in flight');
    if (start < this.confirmedLsn) this.confirmedLsn = start;
  }

  get confirmed(): Lsn {
    return this.confirmedLsn;
  }

  get inFlight(): number {
    return this.open.length;
  }

  /** Bytes of the batches not yet completed (with every batch before them). */
  get inFlightBytes(): number {
    return this.openBytes;
  }

  begin(commitEnd: Lsn | null, bytes = 0): Ticket {
    const ticket: Ticket = { commitEnd, bytes, done: false };
    this.open.push(ticket);
    this.openBytes += bytes;
    return ticket;
  }

  complete(ticket: Ticket): void {
    ticket.done = true;
    let advancedTo: Lsn | null = null;
    while (this.open.length > 0 && this.open[0].done) {
      const head = this.open.shift()!;
      this.openBytes -= head.bytes;
      if (head.commitEnd !== null && head.commitEnd > this.confirmedLsn) advancedTo = head.commitEnd;
    }
    if (advancedTo !== null) {
      this.confirmedLsn = advancedTo;
      this.onAdvance(advancedTo);
    }
    this.waiters.splice(0).forEach((wake) => wake());
  }

  /**
   * A keepalive position may be confirmed only when nothing is in flight and
   * the stream is between transactions; otherwise an idle or filtered
   * database would pin WAL forever, or a partial transaction would be skipped.
   */
  confirmIdle(position: Lsn): void {
    if (this.open.length === 0 && position > this.confirmedLsn) {
      this.confirmedLsn = position;
      this.onAdvance(position);
    }
  }

  /** Resolves the next time any batch completes. */
  nextCompletion(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
