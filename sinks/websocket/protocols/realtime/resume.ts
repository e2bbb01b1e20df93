// walrelay beyond Realtime: a client that names itself with the socket
// parameter walrelay_client gets, when it rejoins a channel, the changes it
// missed while reconnecting. When its socket ends, walrelay remembers, per
// joined topic, the replay-ring position of the first change it could not
// have received (the oldest one still queued for it, else the next one to
// come); a rejoin of the same topic within the window replays the ring from
// there. Changes already written to a connection that then broke are not
// re-sent (walrelay cannot know they were lost), and a ring that has moved
// past the position is a gap the client is told about.
//
// On `walrelay edge` the points are also kept in a shared store (the feed's
// Redis or Kafka, resume-store.ts) as event ids, so the client may reconnect
// to any edge, also after the edge it was on was killed: the edge saves the
// point of every such client after each batch it hands on (one save in
// flight at a time, later batches coalesced into the next), and at once
// when a socket ends.
import type { Logger } from 'pino';
import type { ReplayRing } from '../../ring.js';
import type { ResumeStore, StoredResume } from './resume-store.js';

/** Names remembered at most (the oldest are forgotten first): memory stays bounded whatever clients call themselves. */
const MAX_NAMES = 10_000;

/**
 * Where a connection stands on one topic: the ring position of the first
 * change it was not sent (-1: none in the ring, a catch-up from the feed),
 * and the id of the change just before it (null when unknown: nothing was
 * missed yet; '' when the ring had already dropped it: a gap). The id means
 * the same on every edge and reaches back as far as the feed holds.
 */
export interface ResumeMark {
  position: number;
  afterId: string | null;
}

interface Remembered {
  endedAt: number;
  marks: Map<string, ResumeMark>;
}

export interface Resumable {
  /** Each joined topic and where this connection stands on it. */
  resumeMarks(): Map<string, ResumeMark>;
}

export interface SharedStore {
  store: ResumeStore;
  logger: Logger;
}

/** The mark of ring position `position` (the first change not sent), with the id before it while the ring holds that one. */
export function markAt(ring: ReplayRing, position: number): ResumeMark {
  return { position, afterId: ring.idBefore(position) ?? (position >= ring.position ? null : '') };
}

export class ResumePoints<Session extends Resumable> {
  private readonly byName = new Map<string, Remembered>();
  /** The live connection of each name. */
  private readonly live = new Map<string, Session>();
  /** Shared store only: what was last saved per name (to skip unchanged points), and the save in flight. */
  private readonly saved = new Map<string, { text: string; at: number }>();
  private saving: Promise<void> | null = null;
  private dirty = false;
  /** Shared store only: points of idle connections are saved again before the store forgets them. */
  private readonly refresher: NodeJS.Timeout | null = null;

  constructor(private readonly windowMs: number, private readonly shared?: SharedStore) {
    if (shared) {
      this.refresher = setInterval(() => this.written(), Math.max(1000, windowMs / 4));
      this.refresher.unref();
    }
  }

  close(): void {
    if (this.refresher) clearInterval(this.refresher);
  }

  /** A new connection of `name`; returns the previous live one, which the caller ends (its socket may not have noticed it is dead). */
  connected(name: string, session: Session): Session | undefined {
    const previous = this.live.get(name);
    this.live.set(name, session);
    return previous;
  }

  /** The connection of `name` ended; `marks` maps each topic it had joined to where it stood. */
  ended(name: string, session: Session, marks: Map<string, ResumeMark>): void {
    if (this.live.get(name) === session) this.live.delete(name);
    if (marks.size === 0) return;
    this.byName.delete(name);
    this.byName.set(name, { endedAt: Date.now(), marks });
    while (this.byName.size > MAX_NAMES) this.byName.delete(this.byName.keys().next().value!);
    if (this.shared) {
      const point = this.pointOf(name, marks, true);
      if (point) this.store([point]);
    }
  }

  /** The rejoin point of `name` from the shared store (once per connection, before its first join); null without one. */
  async load(name: string): Promise<Map<string, string> | null> {
    if (!this.shared) return null;
    try {
      const topics = await this.shared.store.load(name, this.windowMs);
      return topics ? new Map(Object.entries(topics)) : null;
    } catch (error) {
      this.shared.logger.warn({ err: (error as Error).message }, 'realtime: cannot read a walrelay_client resume point from the feed store; the client resumes only from this process');
      return null;
    }
  }

  /** Where `name` stood on `topic` when it left, once; null when there is none or the window has passed. */
  take(name: string, topic: string): ResumeMark | null {
    const remembered = this.byName.get(name);
    if (!remembered) return null;
    if (Date.now() - remembered.endedAt > this.windowMs) {
      this.byName.delete(name);
      return null;
    }
    const mark = remembered.marks.get(topic);
    if (mark === undefined) return null;
    remembered.marks.delete(topic);
    if (remembered.marks.size === 0) this.byName.delete(name);
    return mark;
  }

  /** A batch went out to the sockets: save the points of the live named connections that moved (shared store only). */
  written(): void {
    if (!this.shared || this.live.size === 0) return;
    if (this.saving) {
      this.dirty = true;
      return;
    }
    const points: StoredResume[] = [];
    for (const [name, session] of this.live) {
      const point = this.pointOf(name, session.resumeMarks());
      if (point) points.push(point);
    }
    this.store(points);
  }

  /**
   * A name's topics as "after event id" (topics with nothing missed yet are
   * left out); null when there is none, or when it is unchanged and saved
   * recently enough (unless `always`).
   */
  private pointOf(name: string, marks: Map<string, ResumeMark>, always = false): StoredResume | null {
    const topics: Record<string, string> = {};
    for (const [topic, mark] of marks) if (mark.afterId !== null) topics[topic] = mark.afterId;
    const text = JSON.stringify(topics);
    if (text === '{}') return null;
    const last = this.saved.get(name);
    if (!always && last?.text === text && Date.now() - last.at < this.windowMs / 2) return null;
    return { name, topics };
  }

  private store(points: StoredResume[]): void {
    if (points.length === 0) return;
    const { store, logger } = this.shared!;
    const previous = this.saving ?? Promise.resolve();
    const at = Date.now();
    const saving = previous.then(() => store.save(points, this.windowMs)).then(
      () => {
        for (const point of points) {
          this.saved.delete(point.name);
          this.saved.set(point.name, { text: JSON.stringify(point.topics), at });
        }
        while (this.saved.size > MAX_NAMES) this.saved.delete(this.saved.keys().next().value!);
      },
      (error: Error) => logger.warn({ err: error.message, clients: points.length }, 'realtime: saving walrelay_client resume points to the feed store failed; retried with the next batch'),
    ).finally(() => {
      if (this.saving !== saving) return;
      this.saving = null;
      if (this.dirty) {
        this.dirty = false;
        this.written();
      }
    });
    this.saving = saving;
  }
}
