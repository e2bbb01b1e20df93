// Every Realtime subscriber whose token has the same (role, claims) sees the
// same rows under row-level security: they form one audience, and a change is
// checked once per audience, not once per subscriber. The check, its verdict
// and the frames built from it are shared by the audience's subscribers, so a
// frame is serialised once however many of them receive it.
import type { ChangeEvent, Row } from '../../../../relay/route/event.js';
import type { Group } from './rls.js';
import { FrameCache } from '../../frame-cache.js';

export interface RlsVerdict {
  visible: boolean;
  /** The columns the role may read (has_column_privilege), or null when the check failed. */
  columns: ReadonlySet<string> | null;
}

/** One change checked for one audience. */
export class RlsCheck {
  /** Null until PostgreSQL answered. */
  verdict: RlsVerdict | null = null;
  private cache: FrameCache | null = null;
  /** While queued: the row's current key, its JSON, and the later checks of the same row the same lookup answers. */
  key: Row | null = null;
  rowKey: string | null = null;
  sameRow: RlsCheck[] | null = null;

  constructor(readonly event: ChangeEvent) {}

  /** The frames of this change for the audience's subscribers, built by the first that sends them. */
  get frames(): FrameCache {
    this.cache ??= new FrameCache();
    return this.cache;
  }
}

/** What an audience tells when checks of its changes settled (a Realtime session: it sends what is ready, in order). */
export interface RlsMember {
  checksSettled(): void;
}

export class RlsAudience {
  /** Members and how many of their channels use this audience. */
  private readonly members = new Map<RlsMember, number>();
  private lastEvent: ChangeEvent | null = null;
  private lastCheck: RlsCheck | null = null;
  /** This audience's checks waiting to be sent to PostgreSQL, by table (rls.ts queues and takes them). */
  readonly groups = new Map<string, Group>();
  /** The statement that sets its role and claims, built once. */
  settings: string | undefined;
  /** Until then its checks go in round trips of their own (one failed: rls.ts). */
  failedUntil = 0;

  constructor(
    readonly key: string,
    readonly role: string,
    readonly claimsJson: string,
    readonly subject: string,
    private readonly queue: (event: ChangeEvent, check: RlsCheck) => void,
  ) {}

  /**
   * The check of `event` for this audience. The fan-out hands a change to every subscriber before the next one,
   * so the last change's check is kept: the audience's other subscribers share it.
   */
  checkOf(event: ChangeEvent): RlsCheck {
    if (event === this.lastEvent) return this.lastCheck!;
    const check = new RlsCheck(event);
    this.lastEvent = event;
    this.lastCheck = check;
    this.queue(event, check);
    return check;
  }

  get empty(): boolean {
    return this.members.size === 0;
  }

  add(member: RlsMember): void {
    this.members.set(member, (this.members.get(member) ?? 0) + 1);
  }

  /** True when no member is left. */
  remove(member: RlsMember): boolean {
    const count = this.members.get(member) ?? 0;
    if (count <= 1) this.members.delete(member);
    else this.members.set(member, count - 1);
    return this.members.size === 0;
  }

  /** Checks of this audience settled: each member once, however many changes the round trip covered. */
  settled(onError: (error: Error) => void): void {
    for (const member of this.members.keys()) {
      // One subscriber's failure must not keep the others' changes back (nor take the relay down).
      try {
        member.checksSettled();
      } catch (error) {
        onError(error as Error);
      }
    }
  }
}
