// One Supabase Realtime connection (as realtime-js and the Realtime server speak it): Phoenix heartbeats,
// phx_join of postgres_changes or legacy topics, access_token refresh,
// phx_leave, and each change pushed to every channel it matches. What a
// channel may see is decided by walrelay's claims (tables, rowFilter, exp)
// from the apikey or the join's access_token; with authorization: rls also by
// PostgreSQL's row-level security as the token's role (rls.ts): each change
// waits in this client's queue, in commit order, until the check it shares
// with every subscriber of the same claims (audience.ts) is done.
import type { RawData } from 'ws';
import type { ChangeEvent, ColumnType } from '../../../../relay/route/event.js';
import type { Claims } from '../../auth.js';
import type { Client } from '../../client.js';
import { frameSize, type Session, type SessionContext } from '../session.js';
import { decode, reply, ProtocolError, type PhoenixMessage, type Vsn } from './serializer.js';
import { type Binding, BindingError, bindingFromEntry, bindingFromLegacyTopic, bindingId } from './bindings.js';
import { Channel } from './channel.js';
import { changeData, changeDataFor, columnsOf, realtimeType, type RealtimeType } from './change.js';
import type { RlsChecker, RlsVerdict } from './rls.js';
import type { RlsCheck, RlsMember } from './audience.js';
import { HeldQueue } from './held-queue.js';
import { markAt, type ResumeMark, type ResumePoints } from './resume.js';
import { markOfStoredPoint, replayMissed, type RejoinHost } from './rejoin.js';
import type { FrameCache } from '../../frame-cache.js';

/** What every Realtime session of a sink shares. */
export interface RealtimeShared {
  resume: ResumePoints<RealtimeSession>;
  /** The columns of each table as last seen in the stream, to check filter columns at join time. */
  columns: Map<string, readonly ColumnType[]>;
  frames: FrameCache;
  /** Set with authorization: rls: every INSERT and UPDATE waits for its row-level security check. */
  rls: RlsChecker | null;
}

/** A change for one channel, in commit order: its frames, or (with rls) what builds them once its check is done. */
// One per (subscriber, change) with rls, so kept small: the change itself is on the shared check.
interface Held {
  position: number | undefined;
  frames: Buffer[] | null;
  check: RlsCheck | null;
  channel: Channel | null;
  ids: string;
}

const NO_FRAMES: Buffer[] = [];

export class RealtimeSession implements Session, RlsMember {
  private readonly channels = new Map<string, Channel>();
  /** On an edge: this name's resume point saved by any edge, read once before the first join (topics are taken out as they rejoin). */
  private storedPointLoad: Promise<Map<string, string> | null> | null = null;
  private storedPoint: Map<string, string> | null = null;
  /** Changes waiting for (or behind one waiting for) a row-level security check, oldest first. */
  private readonly held = new HeldQueue<Held>();
  private ended = false;
  private readonly rejoinHost: RejoinHost;

  constructor(
    readonly client: Client,
    private readonly context: SessionContext,
    private readonly vsn: Vsn,
    /** The walrelay_client socket parameter: set = this client resumes after reconnecting. */
    private readonly clientName: string | null,
    private readonly shared: RealtimeShared,
  ) {
    this.rejoinHost = {
      client, context, vsn,
      joined: (channel) => !this.ended && this.channels.get(channel.topic) === channel,
      deliverChange: (channel, event, position) => {
        const type = realtimeType(event);
        if (event.table !== undefined && type !== null) this.deliverTo(channel, event, type, `${event.schema}.${event.table}`, position);
      },
    };
    if (clientName !== null) {
      // The same name connecting again: its previous socket is dead even if the server has not noticed; end it so its resume point is taken now.
      const previous = shared.resume.connected(clientName, this);
      if (previous) context.drop(previous.client, 4000, 'replaced: the same walrelay_client connected again');
    }
  }

  async receive(data: RawData, isBinary: boolean): Promise<void> {
    // Binary frames are vsn 2.0.0 broadcasts, which walrelay does not carry; oversized ones are not parsed.
    if (isBinary || frameSize(data) > this.context.config.maxFrameBytes) return;
    let message: PhoenixMessage;
    try {
      message = decode(this.vsn, data.toString());
    } catch (error) {
      if (error instanceof ProtocolError) this.context.logger.debug({ reason: error.message }, 'realtime frame ignored');
      return;
    }
    try {
      await this.handle(message);
    } catch (error) {
      // A defect must not take the relay down with it: the push is answered with an error, the socket stays.
      this.context.logger.warn({ err: (error as Error).message, topic: message.topic, event: message.event }, 'realtime frame failed');
      if (message.ref !== null) this.client.sendControl(reply(this.vsn, message, 'error', { reason: 'internal error' }));
    }
  }

  private async handle(message: PhoenixMessage): Promise<void> {
    if (message.topic === 'phoenix' && message.event === 'heartbeat') {
      this.client.sendControl(reply(this.vsn, message, 'ok', {}));
      return;
    }
    if (message.event === 'phx_join') {
      await this.join(message);
      return;
    }
    const channel = this.channels.get(message.topic);
    if (!channel) {
      if (message.ref !== null) this.client.sendControl(reply(this.vsn, message, 'error', { reason: 'unmatched topic' }));
      return;
    }
    if (message.event === 'phx_leave') this.leave(channel, message);
    else if (message.event === 'access_token') await this.refresh(channel, message);
    // broadcast, presence and anything else: not carried, ignored without reply as Realtime does with unknown events.
  }

  deliver(event: ChangeEvent, name: string | null, position: number): void {
    if (name === null || this.channels.size === 0) return;
    const type = realtimeType(event);
    if (type === null) return;
    for (const channel of this.channels.values()) if (!channel.catchingUp) this.deliverTo(channel, event, type, name, position);
  }

  /** `position`: the change's ring position; undefined for one read from the feed (a catch-up). */
  private deliverTo(channel: Channel, event: ChangeEvent, type: RealtimeType, name: string, position: number | undefined): void {
    if (channel.resumeAfter !== null) {
      // Resumed from a point another edge saved, ahead of what this edge had read: skip what the client already has.
      if (event.id <= channel.resumeAfter) return;
      channel.resumeAfter = null;
    }
    const rls = this.shared.rls;
    if (rls === null) {
      const built = channel.builtFrame(this.vsn, event, type, name, this.shared.frames);
      if (built === null) return;
      if (built !== undefined) {
        this.client.sendFrame(built, position);
        return;
      }
      const data = () => changeData(event, type, columnsOf(event, this.shared.columns));
      for (const frame of channel.frames(this.vsn, event, type, name, data, this.shared.frames)) this.client.sendFrame(frame, position);
      return;
    }
    const ids = channel.matching(event, type, name);
    if (ids === '') return;
    if (type === 'DELETE') {
      // Realtime does not filter deletes by RLS (the row is gone); their old_record carries only the key.
      const frames = channel.framesFor(this.vsn, event, type, ids, () => changeDataFor(event, type, columnsOf(event, this.shared.columns), null), this.shared.frames, ' key');
      if (this.held.length === 0) for (const frame of frames) this.client.sendFrame(frame, position);
      else this.held.push({ position, frames, check: null, channel: null, ids });
      return;
    }
    // Subscribers of the same (role, claims) share the change's check: it is queued once, by the first of them.
    if (channel.audience === null) return; // the session ended
    const check = channel.audience.checkOf(event);
    this.held.push({ position, frames: null, check, channel, ids });
    if (this.held.length + this.client.queued > this.context.config.maxClientQueue) {
      this.context.drop(this.client, 1013, 'client cannot keep up: too many changes waiting for row-level security checks');
      return;
    }
    if (check.verdict !== null && this.held.length === 1) this.release(); // decided without asking (a table without a key)
  }

  /** Checks of one of this session's audiences settled: what is ready goes out, coalesced into few socket writes. */
  checksSettled(): void {
    if (this.ended || this.held.length === 0 || this.held.first()!.check?.verdict === null) return;
    this.client.beginBatch();
    try {
      this.release();
    } finally {
      this.client.endBatch();
    }
  }

  /** Sends, in commit order, every held change whose check is done. */
  private release(): void {
    if (this.ended) return;
    for (let held = this.held.first(); held !== undefined; held = this.held.first()) {
      if (held.frames === null) {
        const verdict = held.check!.verdict;
        if (verdict === null) return;
        held.frames = this.framesOf(held, verdict);
      }
      this.held.shift();
      for (const frame of held.frames) this.client.sendFrame(frame, held.position);
    }
  }

  /** A checked change's frames, built once per audience (the check's frame cache) and shared by its subscribers. */
  private framesOf(held: Held, verdict: RlsVerdict): Buffer[] {
    const { channel, ids, check } = held;
    if (!verdict.visible || this.channels.get(channel!.topic) !== channel) return NO_FRAMES; // hidden, or the channel left or rejoined meanwhile
    const { event } = check!;
    const type = realtimeType(event)!;
    const variant = verdict.columns === null ? '' : variantOf(verdict.columns);
    return channel!.framesFor(this.vsn, event, type, ids, () => changeDataFor(event, type, columnsOf(event, this.shared.columns), verdict.columns), check!.frames, variant);
  }

  end(): void {
    this.ended = true;
    for (const channel of this.channels.values()) {
      this.stopTimer(channel);
      this.leaveAudience(channel);
    }
    const marks = this.resumeMarks();
    this.held.clear();
    if (this.clientName === null) return;
    this.shared.resume.ended(this.clientName, this, marks);
    this.channels.clear();
  }

  /** Each joined topic and where this connection stands on it. */
  resumeMarks(): Map<string, ResumeMark> {
    // What still waited for a check was not sent: resuming starts there (changes read from the feed have no ring position).
    const position = this.held.find((item) => item.position !== undefined)?.position ?? this.client.firstUnsentPosition() ?? this.context.ring.position;
    const live = markAt(this.context.ring, position);
    // A channel catching up from the feed stands where its socket last took a whole chunk.
    return new Map([...this.channels.values()].map((channel) => [channel.topic, channel.catchingUp ? { position: -1, afterId: channel.caughtUpTo } : live]));
  }

  private async join(message: PhoenixMessage): Promise<void> {
    const { payload, topic } = message;
    const legacy = !('config' in payload);
    if (!topic.startsWith('realtime:')) {
      this.client.sendControl(reply(this.vsn, message, 'error', { reason: `unknown topic ${topic}: Realtime topics start with realtime:` }));
      return;
    }
    const token = legacy ? payload.user_token : payload.access_token;
    let claims = this.client.claims;
    if (isJwt(token)) {
      try {
        claims = await this.context.verify(token, { tablesOptional: this.shared.rls !== null });
      } catch (error) {
        this.client.sendControl(reply(this.vsn, message, 'error', { reason: (error as Error).message }));
        return;
      }
    }
    if (expired(claims)) {
      this.client.sendControl(reply(this.vsn, message, 'error', { reason: `Token has expired ${secondsAgo(claims)} seconds ago` }));
      return;
    }
    const refusal = await this.rlsRefusal(claims);
    if (refusal !== null) {
      this.client.sendControl(reply(this.vsn, message, 'error', { reason: refusal }));
      return;
    }
    if (this.clientName !== null) this.storedPoint = await (this.storedPointLoad ??= this.shared.resume.load(this.clientName));

    // From here on nothing awaits: the channel is registered, answered and caught up in one turn of the event loop.
    const previous = this.channels.get(topic);
    if (!previous && this.channels.size >= this.context.config.maxSubscriptionsPerConnection) {
      this.context.refused('too_many_subscriptions');
      this.client.sendControl(reply(this.vsn, message, 'error', { reason: `too many channels on this connection (maxSubscriptionsPerConnection ${this.context.config.maxSubscriptionsPerConnection})` }));
      return;
    }
    if (previous) this.closeChannel(previous);
    let bindings: Binding[] = [];
    let echo: Record<string, unknown>[] = [];
    let problem: string | null = null;
    try {
      if (legacy) {
        bindings = [bindingFromLegacyTopic(topic.slice('realtime:'.length))];
      } else {
        const config = payload.config as Record<string, unknown> | null;
        const entries = config?.postgres_changes ?? [];
        if (!Array.isArray(entries) || !entries.every((entry) => entry !== null && typeof entry === 'object' && !Array.isArray(entry))) {
          throw new BindingError('Unable to subscribe to changes: config.postgres_changes must be a list of {event, schema, table, filter}');
        }
        // Echoed exactly as sent (the client compares event, schema, table and filter) plus the server id.
        echo = entries.map((entry) => ({ ...entry, id: bindingId(entry.event, entry.schema, entry.table, entry.filter) }));
        bindings = entries.map((entry) => bindingFromEntry(entry));
      }
      for (const binding of bindings) {
        const table = binding.qualifiedTable;
        if (table !== null) {
          if (!claims.mayRead(table)) throw new BindingError(`Unauthorized: your token does not allow reading ${table}`);
          binding.checkColumns(this.shared.columns.get(table));
        }
      }
    } catch (error) {
      if (!(error instanceof BindingError)) throw error;
      problem = error.message;
      bindings = [];
    }
    const channel = new Channel(topic, message.joinRef ?? message.ref, legacy, bindings, claims);
    this.enterAudience(channel);
    this.channels.set(topic, channel);
    this.client.sendControl(reply(this.vsn, message, 'ok', legacy ? {} : { postgres_changes: echo }));
    if (problem !== null) this.client.sendControl(channel.system(this.vsn, 'postgres_changes', 'error', problem));
    else if (legacy || echo.length > 0) this.client.sendControl(channel.system(this.vsn, 'postgres_changes', 'ok', 'Subscribed to PostgreSQL'));
    this.scheduleExpiry(channel);
    this.catchUp(channel);
  }

  /** A rejoin of a client that named itself: what it missed while reconnecting (rejoin.ts). */
  private catchUp(channel: Channel): void {
    if (this.clientName === null) return;
    const local = this.shared.resume.take(this.clientName, channel.topic);
    // This process's own point is exact; the stored one of the same topic is then used up too (a later rejoin must not replay it).
    if (local !== null) this.storedPoint?.delete(channel.topic);
    const stored = local === null ? this.storedPoint?.get(channel.topic) : undefined;
    if (stored !== undefined) this.storedPoint!.delete(channel.topic);
    const mark = local ?? (stored === undefined ? null : markOfStoredPoint(this.context.ring, channel, stored));
    if (mark !== null) replayMissed(this.rejoinHost, channel, mark);
  }

  private leave(channel: Channel, message: PhoenixMessage): void {
    this.client.sendControl(reply(this.vsn, message, 'ok', {}));
    this.closeChannel(channel);
  }

  /** A new token for a joined channel; a bad or expired one ends the channel as an expired one would. */
  private async refresh(channel: Channel, message: PhoenixMessage): Promise<void> {
    const token = message.payload.access_token;
    if (!isJwt(token)) return; // 1.x pushes null on every heartbeat until it has a token
    let claims: Claims;
    try {
      claims = await this.context.verify(token, { tablesOptional: this.shared.rls !== null });
    } catch (error) {
      this.shut(channel, (error as Error).message);
      return;
    }
    const refusal = await this.rlsRefusal(claims);
    if (refusal !== null) {
      this.shut(channel, refusal);
      return;
    }
    if (this.channels.get(channel.topic) !== channel) return;
    const forbidden = channel.bindings.map((binding) => binding.qualifiedTable).find((table) => table !== null && !claims.mayRead(table));
    if (forbidden) {
      this.shut(channel, `Unauthorized: your new token does not allow reading ${forbidden}`);
      return;
    }
    this.leaveAudience(channel);
    channel.claims = claims;
    this.enterAudience(channel);
    this.scheduleExpiry(channel);
  }

  /** With rls, why the claims' role cannot be checked (no role claim, an unknown role, one walrelay's role is not a member of); else null. */
  private async rlsRefusal(claims: Claims): Promise<string | null> {
    if (this.shared.rls === null) return null;
    try {
      return await this.shared.rls.refusal(claims.role);
    } catch (error) {
      this.context.logger.warn({ err: (error as Error).message }, 'row-level security: cannot reach the database to check a token\'s role');
      return 'row-level security checks are unavailable: the database cannot be reached';
    }
  }

  private scheduleExpiry(channel: Channel): void {
    this.stopTimer(channel);
    const expiresAt = channel.claims.expiresAt;
    if (expiresAt === null) return;
    channel.expiryTimer = setTimeout(() => this.shut(channel, `Token has expired ${secondsAgo(channel.claims)} seconds ago`), Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1));
  }

  /** Realtime's end of a channel whose token no longer holds: a system error, then phx_close. */
  private shut(channel: Channel, message: string): void {
    if (this.channels.get(channel.topic) !== channel) return;
    this.client.sendControl(channel.system(this.vsn, 'system', 'error', message));
    this.closeChannel(channel);
  }

  /** Stops delivering to the channel and tells the client it is closed. */
  private closeChannel(channel: Channel): void {
    this.stopTimer(channel);
    this.leaveAudience(channel);
    this.channels.delete(channel.topic);
    this.client.sendControl(channel.close(this.vsn));
  }

  /** With rls, the channel joins the audience of its claims (their checks are shared). */
  private enterAudience(channel: Channel): void {
    const { rls } = this.shared;
    if (rls === null) return;
    channel.audience = rls.enter(channel.claims.role!, channel.claims.claimsJson!, channel.claims.subject, this);
  }

  private leaveAudience(channel: Channel): void {
    if (channel.audience === null) return;
    this.shared.rls!.leave(channel.audience, this);
    channel.audience = null;
  }

  private stopTimer(channel: Channel): void {
    if (channel.expiryTimer) clearTimeout(channel.expiryTimer);
    channel.expiryTimer = null;
  }
}

const variants = new WeakMap<ReadonlySet<string>, string>();

/** The frame-cache suffix of a set of readable columns (one set object per role and table, shared by its checks). */
function variantOf(columns: ReadonlySet<string>): string {
  let variant = variants.get(columns);
  if (variant === undefined) {
    variant = ` ${[...columns].sort().join(',')}`;
    variants.set(columns, variant);
  }
  return variant;
}

/** A token to verify; "sb_…" API keys (not JWTs) and empty values mean "use the apikey", as in Realtime. */
function isJwt(token: unknown): token is string {
  return typeof token === 'string' && token !== '' && !token.startsWith('sb_');
}

function expired(claims: Claims): boolean {
  return claims.expiresAt !== null && claims.expiresAt <= Date.now();
}

function secondsAgo(claims: Claims): number {
  return Math.max(0, Math.round((Date.now() - (claims.expiresAt ?? Date.now())) / 1000));
}

