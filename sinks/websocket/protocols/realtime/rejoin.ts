// A rejoin of a Realtime client that named itself (walrelay_client): what it
// missed while reconnecting, from the ring; on `walrelay edge`, from the feed
// when the ring no longer reaches back to its point (feed-catch-up.ts), the
// channel taking no live change until the catch-up hands over to the ring.
// Beyond what is held: Realtime's `system` message, extension "walrelay".
import type { ChangeEvent } from '../../../../relay/route/event.js';
import type { Client } from '../../client.js';
import type { ReplayRing } from '../../ring.js';
import type { SinkFeedHistory } from '../../feed-history.js';
import { catchUpFromFeed } from '../../feed-catch-up.js';
import type { SessionContext } from '../session.js';
import type { Vsn } from './serializer.js';
import type { Channel } from './channel.js';
import type { ResumeMark } from './resume.js';

/** What a rejoin needs of its session. */
export interface RejoinHost {
  readonly client: Client;
  readonly context: SessionContext;
  readonly vsn: Vsn;
  /** The channel is still joined on an open socket. */
  joined(channel: Channel): boolean;
  /** One change to one channel through its bindings; `position` in the ring, undefined for one read from the feed. */
  deliverChange(channel: Channel, event: ChangeEvent, position: number | undefined): void;
}

/** The mark of the event id an edge saved for a channel; position -1 when the ring no longer reaches back to it. */
export function markOfStoredPoint(ring: ReplayRing, channel: Channel, afterId: string): ResumeMark {
  // A ring that has received nothing yet (an edge started while its feed was unreachable) cannot place the point.
  const position = ring.position === 0 ? null : ring.positionAfter(afterId);
  if (position === null) return { position: -1, afterId };
  // This edge has not read as far as the edge that saved the point: what arrives up to that id the client already has.
  if (position === ring.position && (ring.idBefore(position) ?? '') < afterId) channel.resumeAfter = afterId;
  return { position, afterId };
}

/** Sends what the channel missed since `mark`: from the ring, or (edges) from the feed, or the gap message. */
export function replayMissed(host: RejoinHost, channel: Channel, mark: ResumeMark): void {
  const { client, context } = host;
  const missed = mark.position < 0 ? null : context.ring.from(mark.position);
  if (missed === null) {
    if (context.history && mark.afterId) void fromFeed(host, channel, mark.afterId, context.history);
    else resumeGap(host, channel, `ringSize ${context.config.ringSize}`);
    return;
  }
  client.beginBatch();
  missed.forEach((event, index) => host.deliverChange(channel, event, mark.position + index));
  client.endBatch();
}

function resumeGap(host: RejoinHost, channel: Channel, held: string): void {
  host.client.sendControl(channel.system(host.vsn, 'walrelay', 'error', `changes committed while you were reconnecting are no longer held (${held}); reload the current state`));
}

async function fromFeed(host: RejoinHost, channel: Channel, afterId: string, history: SinkFeedHistory): Promise<void> {
  const { client, context } = host;
  const active = () => host.joined(channel);
  channel.catchingUp = true;
  channel.caughtUpTo = afterId;
  const live = () => { channel.catchingUp = false; };
  try {
    const cursor = await history.open(afterId);
    if (!active()) return;
    if (cursor === null) {
      live();
      resumeGap(host, channel, 'the feed does not reach back to them');
      return;
    }
    await catchUpFromFeed(cursor, history, context.ring, client, context.config.maxClientQueue, {
      active,
      send: (event) => host.deliverChange(channel, event, undefined),
      reached: (id) => { channel.caughtUpTo = id; },
      handOver: (id, position) => {
        live();
        channel.resumeAfter = id;
        if (position === null) return;
        client.beginBatch();
        (context.ring.from(position) ?? []).forEach((event, index) => host.deliverChange(channel, event, position + index));
        client.endBatch();
      },
      gap: () => {
        live();
        resumeGap(host, channel, 'the feed was trimmed past them while they were read');
      },
    });
  } catch (error) {
    if (!active()) return;
    live();
    context.logger.warn({ err: (error as Error).message, topic: channel.topic }, 'realtime: reading the feed to catch a client up failed');
    resumeGap(host, channel, `the feed cannot be read: ${(error as Error).message}`);
  }
}
