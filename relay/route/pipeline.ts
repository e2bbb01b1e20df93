// The ordered path from the replication stream to the sinks.
//
// Messages are parsed as they arrive (pg reuses its read buffer) and queued in
// an inbox that is applied strictly in order. Events collect into a batch that
// is dispatched when full or when the current burst of socket data has been
// consumed. At most `inFlightBatches` batches are out at once; when that limit
// is reached, or a step must wait, the socket is paused, so PostgreSQL's
// walsender stops sending: backpressure instead of buffering.
import { parsePgoutput, parseRowMessage, type PgoutputMessage, type RawRowMessage } from '../source/pgoutput.js';
import type { Keepalive, XLogData } from '../source/replication-stream.js';
import { TransactionAssembler, type ControlMessages } from './assembler.js';
import type { TypeCatalog } from '../source/type-catalog.js';
import type { Checkpoint } from './checkpoint.js';
import type { ChangeEvent } from './event.js';
import type { Lsn } from '../lsn.js';
import type { SinkRoute } from './sink-route.js';
import { commitMarker } from '../stages/transaction-events.js';
import { withTimeout } from '../with-timeout.js';
import { WalrelayError } from '../errors.js';
import type { AnnouncedShapes } from './schema-event.js';
import { windowFor } from './dispatch-window.js';

interface DataItem {
  kind: 'data';
  walStart: Lsn;
  message: PgoutputMessage | RawRowMessage;
  /** Size of the message on the wire: what a batch's byte budget counts. */
  bytes: number;
}

type InboxItem = DataItem | Keepalive;

export interface FlowControl {
  pause(): void;
  resume(): void;
  sendStatus(confirmed: Lsn, replyRequested?: boolean): void;
}

export interface PipelineOptions {
  batchEvents: number;
  /** A batch is also dispatched once its events' pgoutput messages reach this many bytes (wide rows, large values). */
  batchBytes: number;
  inFlightBatches: number;
  /**
   * Under a live feed a batch is dispatched at most this often (unless full):
   * one sink write and one read per window instead of per transaction, which
   * is what a live feed of small transactions spends its CPU on
   * (bench/OPTIMISATIONS.md). A transaction arriving after a quiet spell is
   * dispatched at once. 0: no window (config key pipeline.dispatchWindowMs).
   */
  dispatchWindowMs: number;
  /** Put a commit marker into the batch at each transaction's end (some sink has transactionEvents). */
  commitMarkers?: boolean;
  /** Events carry their origin (PostgreSQL's text, column types): some sink renders Debezium. */
  keepOrigins?: boolean;
  /** Build row changes from decoded text even without keepOrigins (comparisons of the two paths: bench/core-cpu.ts, tests). */
  rowsAsText?: boolean;
}

/** Above this many queued messages the socket is paused until the inbox drains. */
const INBOX_HIGH_WATER = 10_000;

export class Pipeline {
  private readonly assembler: TransactionAssembler;
  private inbox: InboxItem[] = [];
  private inboxHead = 0;
  private batch: ChangeEvent[] = [];
  private batchBytes = 0;
  private batchCommitEnd: Lsn | null = null;
  private waiting: Promise<void> | null = null;
  private flushScheduled = false;
  /** When the last batch was dispatched (performance.now()). */
  private lastDispatchAt = -Infinity;
  private readonly flushNow = (): void => {
    this.flushScheduled = false;
    const windowEnded = this.windowEnded;
    this.windowEnded = false;
    if (this.waiting || this.failure) return;
    const sending = this.batch.length > 0 || this.batchCommitEnd !== null;
    const gathered = this.batch.length;
    const gatheredInMs = performance.now() - this.lastDispatchAt;
    // Read before dispatch() and the reset below: a window whose reads filled batches was a backlog's.
    const light = this.isLight();
    if (!this.dispatch()) return;
    this.dispatchedFull = false;
    // A window that brought transactions: the feed is live, and the next window starts now with reads held, so its
    // first transaction wakes nothing (the window's timer reads it with the rest): one wake-up per window, not two.
    // A window that brought nothing ends this (reads stay on, no timer runs while the feed is quiet).
    if (windowEnded && sending && light) {
      this.windowMs = windowFor(gathered, gatheredInMs, this.options.dispatchWindowMs);
      this.flushScheduled = true;
      this.holdReads();
      setTimeout(this.endWindow, this.windowMs);
    } else if (windowEnded && !sending) {
      this.windowMs = this.options.dispatchWindowMs; // the feed went quiet: its next burst starts from the full window
    }
  };
  /** The current window: dispatchWindowMs, shorter while the feed is fast enough to fill a window with less (windowFor). */
  private windowMs: number;
  /** The flush now scheduled is a window's end (not a transaction's after a quiet spell). */
  private windowEnded = false;
  /** Reads held (the socket paused) until the current dispatch window ends: see scheduleFlush. */
  private holdingReads = false;
  /** The last batch went out because it was full, not at a window's end: a backlog, whose reads are not held. */
  private dispatchedFull = false;
  /** The pgoutput bytes of the last batch dispatched: how much a window brings. */
  private lastBatchBytes = 0;
  /**
   * A window's end: reads resume, the walsender's transactions that waited in
   * the socket meanwhile are read in this turn of the event loop (its poll
   * phase), and the batch, with them, goes after that read.
   */
  private readonly endWindow = (): void => {
    this.windowEnded = true;
    this.releaseReads();
    setImmediate(this.flushNow);
  };
  private pausedByInbox = false;
  private failure: Error | null = null;
  private serverWalEnd: Lsn | null = null;
  private intakeClosed = false;
  private stopAtCommit = false;
  /** The last event of the transaction being applied, for its commit marker. */
  private lastEvent: ChangeEvent | null = null;
  /** Row messages read as spans and their JSON written as bytes (not when a sink needs PostgreSQL's text: Debezium). */
  private readonly rowsAsBytes: boolean;
  /** In-flight batches may hold this many bytes of pgoutput messages together (and always one batch). */
  private readonly inFlightByteBudget: number;

  constructor(
    private readonly routes: readonly SinkRoute[],
    readonly checkpoint: Checkpoint,
    catalog: TypeCatalog,
    private readonly flow: FlowControl,
    private readonly options: PipelineOptions,
    private readonly onFatal: (error: Error) => void,
    /** Shapes announced by schema events, kept across the process's sessions (schema-event.ts); none: no schema events. */
    shapes?: AnnouncedShapes,
    /** The key that tells walrelay's own control messages from forgeries (control-message.ts). */
    control?: ControlMessages,
  ) {
    shapes?.forgetUnconfirmed(checkpoint.confirmed);
    this.rowsAsBytes = options.keepOrigins !== true && options.rowsAsText !== true;
    this.windowMs = options.dispatchWindowMs;
    this.inFlightByteBudget = options.inFlightBatches * options.batchBytes;
    this.assembler = new TransactionAssembler(catalog, {
      event: (event) => { this.batch.push(event); this.lastEvent = event; },
      commit: (endLsn) => {
        this.batchCommitEnd = endLsn;
        // For sinks with transaction events: where the transaction ended (transaction-events.ts).
        if (options.commitMarkers && this.lastEvent?.commitLsn) this.batch.push(commitMarker(this.lastEvent));
        this.lastEvent = null;
      },
    }, shapes, control, options.keepOrigins === true);
  }

  /**
   * The session ended (not a stop): nothing more is applied or dispatched. A
   * window's timer may still fire, and a batch sent after the routes dropped
   * the session's queue would reach the sinks beside the next session's.
   */
  close(): void {
    this.failure ??= new WalrelayError('REPLICATION_ENDED', 'the replication session ended', { retriable: true });
    this.intakeClosed = true;
  }

  /** Latest WAL end the server reported (for lag). */
  get serverPosition(): Lsn | null {
    return this.serverWalEnd;
  }

  onData(data: XLogData): void {
    this.serverWalEnd = data.walEnd;
    let message: PgoutputMessage | RawRowMessage;
    try {
      message = (this.rowsAsBytes ? parseRowMessage(data.payload) : null) ?? parsePgoutput(data.payload);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (message.tag === 'message') message.content = Buffer.from(message.content); // a small copy, not the whole socket chunk kept alive
    // A row message's spans point into the payload, which is never overwritten (copy-data-framer.ts): a queued one needs no copy.
    this.enqueue({ kind: 'data', walStart: data.walStart, message, bytes: data.payload.length });
  }

  onKeepalive(keepalive: Keepalive): void {
    this.serverWalEnd = keepalive.walEnd;
    this.enqueue(keepalive);
  }

  /**
   * Shutdown: keep reading only until the transaction in progress is
   * complete, then take nothing more from the socket. Stopping at a commit
   * boundary means a clean stop re-delivers nothing.
   */
  closeIntake(): void {
    this.stopAtCommit = true;
    if (!this.assembler.inTransaction && this.inboxHead === this.inbox.length) this.stopIntake();
  }

  private stopIntake(): void {
    this.intakeClosed = true;
    this.inbox.length = this.inboxHead; // anything after the boundary is re-sent by the server
    this.flow.pause();
  }

  private enqueue(item: InboxItem): void {
    if (this.failure || this.intakeClosed) return;
    this.inbox.push(item);
    if (this.waiting) {
      if (!this.pausedByInbox && this.inbox.length - this.inboxHead > INBOX_HIGH_WATER) {
        this.pausedByInbox = true;
        this.flow.pause();
      }
      return;
    }
    this.pump();
  }

  private pump(): void {
    try {
      while (this.inboxHead < this.inbox.length && !this.waiting && !this.failure) {
        if (this.batch.length >= this.options.batchEvents || this.batchBytes >= this.options.batchBytes) {
          if (!this.dispatch()) return;
          this.dispatchedFull = true;
          this.releaseReads(); // a hold taken early in this read: the socket holds more of a backlog
        }
        const item = this.inbox[this.inboxHead++];
        let pending: Promise<void> | void;
        if (item.kind === 'data') {
          this.batchBytes += item.bytes;
          const message = item.message;
          pending = 'raw' in message ? this.assembler.applyRow(message, item.walStart) : this.assembler.apply(message, item.walStart);
        } else {
          pending = this.onKeepaliveInOrder(item);
        }
        if (pending) this.waitFor(pending);
        else if (this.stopAtCommit && !this.intakeClosed && !this.assembler.inTransaction) this.stopIntake();
      }
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (this.inboxHead === this.inbox.length) {
      this.inbox = [];
      this.inboxHead = 0;
      if (this.pausedByInbox && !this.waiting) {
        this.pausedByInbox = false;
        this.resumeIntake();
      }
    }
    this.scheduleFlush();
  }

  private onKeepaliveInOrder(keepalive: Keepalive): void {
    const idle = !this.assembler.inTransaction && this.batch.length === 0 && this.batchCommitEnd === null;
    if (idle) this.checkpoint.confirmIdle(keepalive.walEnd);
    if (keepalive.replyRequested) this.flow.sendStatus(this.checkpoint.confirmed);
  }

  /** Dispatch after the current burst of socket data, so batches grow under load and stay small when idle. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    if (this.batch.length === 0 && this.batchCommitEnd === null) return;
    this.flushScheduled = true;
    const wait = this.lastDispatchAt + this.windowMs - performance.now();
    if (wait > 0) {
      // A live feed: the walsender sends each transaction as it commits, one
      // socket read (one wake-up) each. Reads are held until the window ends,
      // so the transactions committed meanwhile come in one read. Not on a
      // backlog (the last batch went out full, or it or this one is large):
      // there the socket holds more, and a held read only slows the drain
      // (about 15%, bench/OPTIMISATIONS.md). The timer always releases the
      // hold (nothing else may be relied on to: a read holding only a
      // keepalive schedules no flush).
      if (this.isLight()) this.holdReads();
      setTimeout(this.endWindow, wait);
    } else {
      setImmediate(this.flushNow);
    }
  }

  /** A light feed: the last batch did not go out full, and neither it nor the one being filled is large. */
  private isLight(): boolean {
    const light = this.options.batchBytes / 4;
    return !this.dispatchedFull && this.lastBatchBytes < light && this.batchBytes < light;
  }

  private holdReads(): void {
    if (this.holdingReads) return;
    this.holdingReads = true;
    this.flow.pause();
  }

  private releaseReads(): void {
    if (!this.holdingReads) return;
    this.holdingReads = false;
    // Still paused for another reason (a step waiting, a full inbox, shutdown): that reason resumes reads when it ends.
    if (!this.waiting && !this.pausedByInbox && !this.failure) this.resumeIntake();
  }

  /** Sends the current batch; returns false (and waits for capacity) when too many batches are out. */
  private dispatch(): boolean {
    if (this.batch.length === 0 && this.batchCommitEnd === null) {
      this.batchBytes = 0; // begin/relation messages alone: nothing to send
      return true;
    }
    // Counted in batches and in bytes: a batch holds at least one event, and one event can be a large value (up to
    // 1 GB in PostgreSQL), so eight batches of large values would be eight such values in memory.
    const { inFlight, inFlightBytes } = this.checkpoint;
    if (inFlight >= this.options.inFlightBatches || (inFlight > 0 && inFlightBytes >= this.inFlightByteBudget)) {
      this.waitFor(this.checkpoint.nextCompletion());
      return false;
    }
    const events = this.batch;
    this.lastDispatchAt = performance.now();
    const ticket = this.checkpoint.begin(this.batchCommitEnd, this.batchBytes);
    this.lastBatchBytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    this.batchCommitEnd = null;
    const durable: Promise<void>[] = [];
    for (const route of this.routes) {
      const delivery = route.deliver(events);
      if (delivery && route.sink.durable) durable.push(delivery);
    }
    Promise.all(durable).then(
      () => { this.checkpoint.complete(ticket); },
      (error: Error) => { this.fail(error); },
    );
    return true;
  }

  /** Stops taking socket data until `pending` settles, then carries on in order. */
  private waitFor(pending: Promise<void>): void {
    this.waiting = pending;
    this.flow.pause();
    pending.then(
      () => {
        this.waiting = null;
        if (this.failure) return;
        this.pausedByInbox = false;
        this.resumeIntake();
        this.pump();
      },
      (error: Error) => { this.waiting = null; this.fail(error); },
    );
  }

  private resumeIntake(): void {
    // While reads are held for the window, its end resumes them (releaseReads).
    if (!this.intakeClosed && !this.holdingReads) this.flow.resume();
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.flow.pause();
    this.onFatal(error);
  }

  /**
   * Applies what is queued, dispatches the last batch and waits until every
   * batch is acknowledged (or `deadline` passes). Used on shutdown.
   */
  async drain(deadline: number): Promise<boolean> {
    const boundaryDeadline = Date.now() + (deadline - Date.now()) / 2;
    while (!this.intakeClosed && !this.failure && Date.now() < boundaryDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 10)); // the rest of the open transaction is still arriving
    }
    if (!this.intakeClosed) this.stopIntake();
    while (!this.failure && Date.now() < deadline) {
      if (this.waiting) {
        await withTimeout(this.waiting.catch(() => undefined), deadline - Date.now());
      } else if (this.inboxHead < this.inbox.length) {
        this.pump();
        if (!this.waiting) await new Promise((resolve) => setImmediate(resolve));
      } else if (this.batch.length > 0 || this.batchCommitEnd !== null) {
        this.dispatch();
      } else if (this.checkpoint.inFlight > 0) {
        await withTimeout(this.checkpoint.nextCompletion(), deadline - Date.now());
      } else {
        return true;
      }
    }
    return false;
  }
}
