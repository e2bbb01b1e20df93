// One joined Realtime channel: its topic, the join_ref its lifecycle frames
// carry, what it streams (bindings), the claims it reads with (the join's
// access_token, else the socket's apikey), and how a change becomes its frames.
import type { ChangeEvent } from '../../../../relay/route/event.js';
import { mayReceive, type Claims } from '../../auth.js';
import type { Binding } from './bindings.js';
import type { RealtimeType } from './change.js';
import { encode, type Vsn } from './serializer.js';
import type { FrameCache } from '../../frame-cache.js';
import type { RlsAudience } from './audience.js';

export class Channel {
  readonly topicJson: string;
  /** The channel name Realtime's system messages carry: the topic without "realtime:". */
  readonly name: string;
  expiryTimer: NodeJS.Timeout | null = null;
  /** Set when the channel resumed after an event id this process has not read yet: changes up to it are skipped. */
  resumeAfter: string | null = null;
  /** Set while the channel is caught up from the feed (edges): live changes are not delivered to it meanwhile. */
  catchingUp = false;
  /** While catching up: the id up to which the socket took every change (the channel's resume point). */
  caughtUpTo = '';
  /** Each binding's id as text, made once: matching runs for every change and every channel. */
  private readonly idTexts: string[];
  /** Frame-cache keys by vsn, ids and variant, made once per channel rather than once per change. */
  private readonly cacheKeys = new Map<string, string>();
  private keysVsn: Vsn | null = null;
  /** With authorization: rls, the subscribers of the same (role, claims) whose checks this channel shares. */
  audience: RlsAudience | null = null;

  constructor(
    readonly topic: string,
    readonly joinRef: string | null,
    /** A legacy join (no `config`): changes go out with event = their type, and again as "*" for 0.x clients. */
    readonly legacy: boolean,
    /** Empty when an entry was unusable (Realtime then delivers nothing on the channel). */
    readonly bindings: readonly Binding[],
    public claims: Claims,
  ) {
    this.topicJson = JSON.stringify(topic);
    this.name = topic.startsWith('realtime:') ? topic.slice('realtime:'.length) : topic;
    this.idTexts = bindings.map((binding) => String(binding.id));
  }

  /** The ids of this channel's bindings the change matches, comma-separated; "" when none does or the claims hide it. */
  matching(event: ChangeEvent, type: RealtimeType, name: string): string {
    let ids = '';
    for (let i = 0; i < this.bindings.length; i++) {
      if (!this.bindings[i]!.matches(event, type)) continue;
      ids = ids === '' ? this.idTexts[i]! : `${ids},${this.idTexts[i]}`;
    }
    return ids === '' || !mayReceive(this.claims, event, name) ? '' : ids;
  }

  /**
   * The change's one frame as another subscriber already built it (undefined
   * when none did yet, or on a legacy channel's two frames); null when
   * nothing is sent. What a fan-out asks first: no builder closures, no array.
   */
  builtFrame(vsn: Vsn, event: ChangeEvent, type: RealtimeType, name: string, cache: FrameCache): Buffer | null | undefined {
    if (this.legacy) return undefined;
    const ids = this.matching(event, type, name);
    return ids === '' ? null : cache.cached(event, this.cacheKey(vsn, ids, ''));
  }

  /** The frames that carry this change to the channel (none when nothing matches or the claims hide it). */
  frames(vsn: Vsn, event: ChangeEvent, type: RealtimeType, name: string, data: () => string, cache: FrameCache): Buffer[] {
    return this.framesFor(vsn, event, type, this.matching(event, type, name), data, cache, '');
  }

  /** The frames for bindings `ids` (from matching); `variant` tells apart data that differs per subscriber (row-level security's columns). */
  framesFor(vsn: Vsn, event: ChangeEvent, type: RealtimeType, ids: string, data: () => string, cache: FrameCache, variant: string): Buffer[] {
    if (ids === '') return [];
    if (this.legacy) {
      return [
        cache.get(event, `${vsn} ${this.topic} ${type}${variant}`, () => encode(vsn, null, null, this.topicJson, type, data())),
        cache.get(event, `${vsn} ${this.topic} *${variant}`, () => encode(vsn, null, null, this.topicJson, '*', data())),
      ];
    }
    return [cache.get(event, this.cacheKey(vsn, ids, variant), () => encode(vsn, null, null, this.topicJson, 'postgres_changes', `{"ids":[${ids}],"data":${data()}}`))];
  }

  /** `${vsn} ${topic} ${ids}${variant}`, remembered (a channel sees few distinct id sets; bounded all the same). */
  private cacheKey(vsn: Vsn, ids: string, variant: string): string {
    if (vsn !== this.keysVsn) {
      this.cacheKeys.clear(); // a channel belongs to one connection, so this happens once
      this.keysVsn = vsn;
    }
    const lookup = variant === '' ? ids : `${ids}${variant}`;
    let key = this.cacheKeys.get(lookup);
    if (key === undefined) {
      if (this.cacheKeys.size >= 64) this.cacheKeys.clear();
      key = `${vsn} ${this.topic} ${lookup}`;
      this.cacheKeys.set(lookup, key);
    }
    return key;
  }

  /** Realtime's `system` push: {"extension","status","message","channel"}. */
  system(vsn: Vsn, extension: string, status: 'ok' | 'error', message: string): string {
    return encode(vsn, null, null, this.topicJson, 'system', JSON.stringify({ extension, status, message, channel: this.name }));
  }

  /** The server ends the channel: phx_close with ref = join_ref (the client reports CLOSED and does not rejoin). */
  close(vsn: Vsn): string {
    return encode(vsn, this.joinRef, this.joinRef, this.topicJson, 'phx_close', '{}');
  }
}
