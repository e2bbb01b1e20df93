// The frames waiting for one client's socket, oldest first, with conflation:
// a newer change of the same row replaces its queued predecessor in place.
//
// Sent frames leave from the head; the array is compacted once the sent
// prefix is both large and at least half of it, so a client that is always
// a little behind (never fully drained) holds memory for what is queued,
// not for everything it was ever sent.

/** Sent slots tolerated at the head before compaction is considered. */
const COMPACT_AFTER = 1024;

export interface Queued {
  /** A control frame's text, or a change frame's wire bytes shared by many clients (wire-frame.ts). */
  frame: string | Buffer;
  /** For conflation: subscription + table + key; null when not conflatable. */
  conflationKey: string | null;
  /** The change's position in the replay ring, for a Realtime client's resume. */
  position?: number;
}

export class FrameQueue {
  private items: (Queued | undefined)[] = [];
  private head = 0;
  /** Conflation key → index in `items`. */
  private readonly conflated = new Map<string, number>();

  get length(): number {
    return this.items.length - this.head;
  }

  /** Slots the backing array holds (sent ones not yet compacted included): what the memory bound is about. */
  get capacity(): number {
    return this.items.length;
  }

  push(item: Queued): void {
    if (item.conflationKey) {
      const at = this.conflated.get(item.conflationKey);
      if (at !== undefined) {
        this.items[at] = item;
        return;
      }
      this.conflated.set(item.conflationKey, this.items.length);
    }
    this.items.push(item);
  }

  shift(): Queued | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined;
    if (item.conflationKey) this.conflated.delete(item.conflationKey);
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.compact();
    }
    return item;
  }

  /** The ring position of the oldest queued change, or null. */
  firstPosition(): number | null {
    for (let i = this.head; i < this.items.length; i++) {
      const position = this.items[i]?.position;
      if (position !== undefined) return position;
    }
    return null;
  }

  private compact(): void {
    const shift = this.head;
    this.items = this.items.slice(shift);
    this.head = 0;
    for (const [key, at] of this.conflated) this.conflated.set(key, at - shift);
  }
}
