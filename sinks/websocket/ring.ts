// The recent events a reconnecting client can resume from: by event id
// ("since", walrelay's protocol) or by position (a Realtime client that
// named itself with walrelay_client). A position counts every event ever
// pushed, so "everything from position p on" is exact even after the ring
// has wrapped, and a position the ring no longer holds is a detectable gap.
import type { ChangeEvent } from '../../relay/route/event.js';

export class ReplayRing {
  private readonly events: (ChangeEvent | undefined)[];
  /** Events pushed since the sink started: the position the next one gets. */
  private pushed = 0;

  constructor(readonly capacity: number) {
    this.events = new Array(capacity);
  }

  /** The position the next pushed event will have (so the newest held one is position - 1). */
  get position(): number {
    return this.pushed;
  }

  push(event: ChangeEvent): void {
    if (this.capacity > 0) this.events[this.pushed % this.capacity] = event;
    this.pushed++;
  }

  /**
   * The events after `id`, oldest first; null when the ring no longer holds
   * `id` (the client would miss events: a resume gap).
   */
  after(id: string): ChangeEvent[] | null {
    const oldest = this.oldestPosition();
    for (let position = this.pushed - 1; position >= oldest; position--) {
      if (this.at(position).id === id) return this.from(position + 1);
    }
    return null;
  }

  /** The events at `position` and later, oldest first; null when some of them are no longer held. */
  from(position: number): ChangeEvent[] | null {
    if (position < this.oldestPosition() || position > this.pushed) return null;
    const out: ChangeEvent[] = [];
    for (let at = position; at < this.pushed; at++) out.push(this.at(at));
    return out;
  }

  /** The id of the event just before `position` (the last one a client resuming at `position` had), or null when not held. */
  idBefore(position: number): string | null {
    const at = position - 1;
    return at >= this.oldestPosition() && at < this.pushed ? this.at(at).id : null;
  }

  /**
   * Where a client that had every event up to `id` resumes: the position of
   * the first held event above it (ids sort in delivery order, so this holds
   * on any edge reading the same feed). `position` when no held event is
   * above it; null when the ring no longer reaches back to `id` (a gap).
   */
  positionAfter(id: string): number | null {
    const oldest = this.oldestPosition();
    for (let position = this.pushed - 1; position >= oldest; position--) {
      if (this.at(position).id <= id) return position + 1;
    }
    return this.pushed === 0 ? 0 : null;
  }

  /**
   * True when `id` is above every held event: this process has not received
   * it yet (an edge behind the one the client came from). Never for an
   * empty ring: after a restart an old id would pass for a future one.
   */
  isAhead(id: string): boolean {
    return this.pushed > 0 && this.capacity > 0 && this.at(this.pushed - 1).id < id;
  }

  /** The newest `count` held events that pass `accept`, oldest first. */
  latest(count: number, accept: (event: ChangeEvent) => boolean): ChangeEvent[] {
    const out: ChangeEvent[] = [];
    for (let position = this.pushed - 1; position >= this.oldestPosition() && out.length < count; position--) {
      const event = this.at(position);
      if (accept(event)) out.push(event);
    }
    return out.reverse();
  }

  private oldestPosition(): number {
    return Math.max(0, this.pushed - this.capacity);
  }

  private at(position: number): ChangeEvent {
    return this.events[position % this.capacity]!;
  }
}
