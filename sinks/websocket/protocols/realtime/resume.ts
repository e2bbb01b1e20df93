// walrelay beyond Realtime: a client that names itself with the socket
// parameter walrelay_client gets, when it rejoins a channel, the changes it
// missed while reconnecting. When its socket ends, walrelay remembers, per
// joined topic, the replay-ring position of the first change it could not
// have received (the oldest one still queued for it, else the next one to
// come); a rejoin of the same topic within the window replays the ring from
// there. Changes already written to a connection that then broke are not
// re-sent (walrelay cannot know they were lost), and a ring that has moved
// past the position is a gap the client is told about.

/** Names remembered at most (the oldest are forgotten first): memory stays bounded whatever clients call themselves. */
const MAX_NAMES = 10_000;

interface Remembered {
  endedAt: number;
  positions: Map<string, number>;
}

export class ResumePoints<Session> {
  private readonly byName = new Map<string, Remembered>();
  /** The live connection of each name. */
  private readonly live = new Map<string, Session>();

  constructor(private readonly windowMs: number) {}

  /** A new connection of `name`; returns the previous live one, which the caller ends (its socket may not have noticed it is dead). */
  connected(name: string, session: Session): Session | undefined {
    const previous = this.live.get(name);
    this.live.set(name, session);
    return previous;
  }

  /** The connection of `name` ended; `positions` maps each topic it had joined to its resume position. */
  ended(name: string, session: Session, positions: Map<string, number>): void {
    if (this.live.get(name) === session) this.live.delete(name);
    if (positions.size === 0) return;
    this.byName.delete(name);
    this.byName.set(name, { endedAt: Date.now(), positions });
    while (this.byName.size > MAX_NAMES) this.byName.delete(this.byName.keys().next().value!);
  }

  /** The position to replay from when `name` rejoins `topic`, once; null when there is none or the window has passed. */
  take(name: string, topic: string): number | null {
    const remembered = this.byName.get(name);
    if (!remembered) return null;
    if (Date.now() - remembered.endedAt > this.windowMs) {
      this.byName.delete(name);
      return null;
    }
    const position = remembered.positions.get(topic);
    if (position === undefined) return null;
    remembered.positions.delete(topic);
    if (remembered.positions.size === 0) this.byName.delete(name);
    return position;
  }
}
