// Exponential backoff, the one used by every retry loop (sink delivery,
// replication sessions, Kafka's transaction coordinator, backfill chunks
// waiting on row locks): wait, double, up to a ceiling; a stop cuts the
// current wait short.

export class Backoff {
  private delayMs: number;
  private wakeUp: (() => void) | null = null;

  /** Equal `initialMs` and `maxMs` give a constant pause. */
  constructor(private readonly initialMs: number, private readonly maxMs: number) {
    this.delayMs = initialMs;
  }

  /** How long the next wait() lasts (for the log line announcing it). */
  get nextMs(): number {
    return this.delayMs;
  }

  /** Waits the current delay (or until interrupt() or `signal` aborts), then doubles the delay up to the ceiling. */
  async wait(signal?: AbortSignal): Promise<void> {
    const ms = this.delayMs;
    this.delayMs = Math.min(this.maxMs, this.delayMs * 2);
    if (signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done);
      this.wakeUp = done;
    });
    this.wakeUp = null;
  }

  /** Ends a wait under way at once (a stop must not sit out a long pause). */
  interrupt(): void {
    this.wakeUp?.();
  }

  /** After a success: the next failure waits the initial delay again. */
  reset(): void {
    this.delayMs = this.initialMs;
  }
}
