// A per-connection limit on client frames: a token bucket holding one
// second's worth, refilled continuously. Bursts (a page joining its channels
// at once) pass; a client that keeps sending faster than the rate is closed.
export class FrameRate {
  private tokens: number;
  private last = performance.now();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  /** False when this frame is over the limit. */
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
