// The recent events a reconnecting client can resume from ("since").
import type { ChangeEvent } from '../../relay/route/event.js';

export class ReplayRing {
  private readonly events: (ChangeEvent | undefined)[];
  private next = 0;
  private size = 0;

  constructor(private readonly capacity: number) {
    this.events = new Array(capacity);
  }

  push(event: ChangeEvent): void {
    if (this.capacity === 0) return;
    this.events[this.next] = event;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /**
   * The events after `id`, oldest first; null when the ring no longer holds
   * `id` (the client would miss events: a resume gap).
   */
  after(id: string): ChangeEvent[] | null {
    const ordered = this.ordered();
    const index = ordered.findIndex((event) => event.id === id);
    return index < 0 ? null : ordered.slice(index + 1);
  }

  private ordered(): ChangeEvent[] {
    const start = (this.next - this.size + this.capacity) % this.capacity;
    const out: ChangeEvent[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.events[(start + i) % this.capacity]!);
    return out;
  }
}
