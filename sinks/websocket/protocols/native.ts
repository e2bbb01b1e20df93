// walrelay's own websocket protocol (contract section 5, README "WebSocket
// protocol"): subscribe / unsubscribe / auth frames in, change frames out.
import type { RawData } from 'ws';
import type { ChangeEvent } from '../../../relay/route/event.js';
import { debeziumValues, encodeEvent } from '../../formats.js';
import type { DebeziumOptions } from '../../debezium/options.js';
import { mayReceive } from '../auth.js';
import type { Client } from '../client.js';
import { Subscription } from '../subscription.js';
import { parseClientFrame, errorFrame, FrameError, type SubscribeFrame } from '../protocol.js';
import { FilterSyntaxError } from '../filter.js';
import { frameSize, type Session, type SessionContext } from './session.js';
import { catchUpFromFeed } from '../feed-catch-up.js';
import type { FeedCursor } from '../feed-history.js';

export class NativeSession implements Session {
  private readonly subscriptions = new Map<string, Subscription>();
  /** Subscription ids whose resume point is being looked up in the feed. */
  private readonly locating = new Set<string>();
  private ended = false;

  constructor(readonly client: Client, private readonly context: SessionContext) {
    this.scheduleExpiry();
  }

  async receive(data: RawData, isBinary: boolean): Promise<void> {
    const client = this.client;
    const { maxFrameBytes } = this.context.config;
    const size = frameSize(data);
    if (size > maxFrameBytes) {
      client.sendControl(errorFrame('too_large', `frame of ${size} bytes exceeds maxFrameBytes ${maxFrameBytes}`));
      return;
    }
    if (isBinary) {
      client.sendControl(errorFrame('bad_request', 'binary frames are not understood; send JSON text frames'));
      return;
    }
    try {
      const frame = parseClientFrame(data.toString());
      if (frame.type === 'subscribe') await this.subscribe(frame);
      else if (frame.type === 'unsubscribe') {
        if (!this.subscriptions.delete(frame.id)) throw new FrameError('unknown_subscription', `no subscription ${frame.id}`, frame.id);
        client.sendControl(JSON.stringify({ type: 'unsubscribed', id: frame.id }));
      } else {
        await this.reauthenticate(frame.token);
      }
    } catch (error) {
      if (error instanceof FrameError) client.sendControl(errorFrame(error.code, error.message, error.id));
      else client.sendControl(errorFrame('internal', (error as Error).message));
    }
  }

  deliver(event: ChangeEvent, name: string | null): void {
    if (!mayReceive(this.client.claims, event, name)) return;
    for (const subscription of this.subscriptions.values()) {
      if (subscription.catchingUp) continue;
      if (subscription.resumeAfter !== null) {
        if (event.id <= subscription.resumeAfter) continue;
        subscription.resumeAfter = null;
      }
      if (subscription.matches(event, name)) this.sendChange(this.client, subscription, event);
    }
  }

  /**
   * The event's change frames to one client. With format debezium a change of a row's key is two records, the delete
   * of the old key and the create of the new one, so two frames; the delete is never conflated away (it is about
   * another key than the one the conflation key names).
   */
  private sendChange(client: Client, subscription: Subscription, event: ChangeEvent): void {
    if (this.context.config.format !== 'debezium') {
      // Every client but the first finds the frame built: no builder closures on that path.
      const frame = this.context.frames.cached(event, subscription.framePrefix) ?? this.changeFrame(subscription, event, 0, () => encodeEvent(event, this.context.config.format));
      client.sendChange(subscription, event, frame);
      return;
    }
    const values = debeziumValuesOnce(event, this.context.config.debezium, this.context.database);
    values.forEach((value, index) => client.sendChange(subscription, event, this.changeFrame(subscription, event, index, () => value), index === values.length - 1));
  }

  /** `{"type":"change","subscription":…,"event":…}` on the wire, shared by every client whose subscription has the same id. */
  private changeFrame(subscription: Subscription, event: ChangeEvent, record: number, json: () => string): Buffer {
    const key = record === 0 ? subscription.framePrefix : `${subscription.framePrefix}\u0000${record}`;
    return this.context.frames.get(event, key, () => subscription.framePrefix + json() + '}');
  }

  end(): void {
    this.ended = true;
    if (this.client.expiryTimer) clearTimeout(this.client.expiryTimer);
    this.client.expiryTimer = null;
  }

  private async subscribe(frame: SubscribeFrame): Promise<void> {
    const { client, context } = this;
    if (!frame.table.includes('*') && !client.claims.mayRead(frame.table)) {
      throw new FrameError('forbidden', `your token does not allow reading ${frame.table}`, frame.id);
    }
    if (this.subscriptions.has(frame.id) || this.locating.has(frame.id)) throw new FrameError('bad_request', `subscription ${frame.id} exists; unsubscribe first`, frame.id);
    if (this.subscriptions.size + this.locating.size >= context.config.maxSubscriptionsPerConnection) {
      context.refused('too_many_subscriptions');
      throw new FrameError('too_many_subscriptions', `this connection holds maxSubscriptionsPerConnection ${context.config.maxSubscriptionsPerConnection} subscriptions; unsubscribe first`, frame.id);
    }
    let subscription: Subscription;
    try {
      subscription = new Subscription(frame);
    } catch (error) {
      if (error instanceof FilterSyntaxError) throw new FrameError('bad_request', error.message, frame.id);
      throw error;
    }
    let replay: ChangeEvent[] = [];
    if (frame.since !== undefined) {
      let missed = context.ring.after(frame.since);
      if (missed === null && context.ring.isAhead(frame.since)) {
        // An id this process has not received yet (an edge a few events behind the one the client came from): wait for it.
        subscription.resumeAfter = frame.since;
        missed = [];
      }
      if (missed === null && context.history) return this.subscribeFromFeed(subscription, frame.since, context.history);
      if (missed === null) throw new FrameError('resume_gap', `event ${frame.since} is no longer held (ring of ${context.config.ringSize}); reload the current state, then subscribe without since`, frame.id);
      replay = missed;
    } else if (frame.recent) {
      replay = context.ring.latest(frame.recent, (event) => {
        const name = event.table === undefined ? null : `${event.schema}.${event.table}`;
        return mayReceive(client.claims, event, name) && subscription.matches(event, name);
      });
    }
    // Registered, replayed and acknowledged in one turn of the event loop: nothing written after "subscribed" is missed, nothing is sent twice.
    this.subscriptions.set(frame.id, subscription);
    client.sendControl(JSON.stringify({ type: 'subscribed', id: frame.id }));
    client.beginBatch();
    for (const event of replay) {
      const name = event.table === undefined ? null : `${event.schema}.${event.table}`;
      if (mayReceive(client.claims, event, name) && subscription.matches(event, name)) this.sendChange(client, subscription, event);
    }
    client.endBatch();
  }

  /**
   * Edges: `since` is older than the ring holds, so the changes after it are
   * read from the feed (feed-catch-up.ts); resume_gap when the feed no
   * longer reaches back to it either.
   */
  private async subscribeFromFeed(subscription: Subscription, since: string, history: NonNullable<SessionContext['history']>): Promise<void> {
    const { client, context } = this;
    const id = subscription.id;
    const gap = (why: string) => new FrameError('resume_gap', `event ${since} is no longer held (${why}); reload the current state, then subscribe without since`, id);
    this.locating.add(id);
    let cursor: FeedCursor | null;
    try {
      cursor = await history.open(since);
    } catch (error) {
      throw gap(`the feed cannot be read: ${(error as Error).message}`);
    } finally {
      this.locating.delete(id);
    }
    if (cursor === null) throw gap('the feed does not reach back to it');
    if (this.ended) return;
    subscription.catchingUp = true;
    this.subscriptions.set(id, subscription);
    client.sendControl(JSON.stringify({ type: 'subscribed', id }));
    const send = (event: ChangeEvent) => {
      const name = event.table === undefined ? null : `${event.schema}.${event.table}`;
      if (mayReceive(client.claims, event, name) && subscription.matches(event, name)) this.sendChange(client, subscription, event);
    };
    try {
      await catchUpFromFeed(cursor, history, context.ring, client, context.config.maxClientQueue, {
        active: () => !this.ended && this.subscriptions.get(id) === subscription,
        send,
        reached: () => undefined,
        handOver: (afterId, position) => {
          subscription.catchingUp = false;
          subscription.resumeAfter = afterId;
          if (position === null) return;
          client.beginBatch();
          for (const event of context.ring.from(position) ?? []) send(event);
          client.endBatch();
        },
        gap: () => {
          this.subscriptions.delete(id);
          client.sendControl(errorFrame('resume_gap', gap('the feed was trimmed past it while it was read').message, id));
        },
      });
    } catch (error) {
      if (this.subscriptions.get(id) !== subscription) return;
      this.subscriptions.delete(id);
      throw gap(`reading the feed failed: ${(error as Error).message}`);
    }
  }

  private async reauthenticate(token: string): Promise<void> {
    const client = this.client;
    try {
      client.claims = await this.context.verify(token);
    } catch (error) {
      throw new FrameError('unauthorized', (error as Error).message);
    }
    this.scheduleExpiry();
    for (const [id, subscription] of this.subscriptions) {
      // Subscriptions the new token no longer allows end here (patterns stay: events are filtered one by one).
      if (!subscription.tablePattern.includes('*') && !client.claims.mayRead(subscription.tablePattern)) {
        this.subscriptions.delete(id);
        client.sendControl(errorFrame('forbidden', `your new token does not allow reading ${subscription.tablePattern}; subscription ended`, id));
      }
    }
    client.sendControl(JSON.stringify({ type: 'authenticated', expiresAt: client.claims.expiresAt === null ? null : new Date(client.claims.expiresAt).toISOString() }));
  }

  private scheduleExpiry(): void {
    const client = this.client;
    if (client.expiryTimer) clearTimeout(client.expiryTimer);
    client.expiryTimer = null;
    const expiresAt = client.claims.expiresAt;
    if (expiresAt === null) return;
    client.expiryTimer = setTimeout(() => this.context.drop(client, 4001, 'token expired: reconnect or send {"type":"auth","token":…} before expiry'), Math.max(0, expiresAt - Date.now()));
  }
}

const debeziumCache = new WeakMap<ChangeEvent, string[]>();

/** The event's Debezium values (formats.ts), rendered once per event for every client. */
function debeziumValuesOnce(event: ChangeEvent, options: Partial<DebeziumOptions> | undefined, database: string | undefined): string[] {
  let values = debeziumCache.get(event);
  if (values === undefined) {
    values = debeziumValues(event, { debezium: options, database });
    debeziumCache.set(event, values);
  }
  return values;
}
