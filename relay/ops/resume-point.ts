// Where a replication session resumes: the slot's confirmed_flush_lsn, or
// walrelay's own confirmed position when that is later and provably part of
// the server's history.
//
// The slot may be behind what walrelay's sinks acknowledged: confirmations are
// coalesced (one status update per interval), the last ones may die with the
// connection, and a failover slot on a promoted standby was synchronized from
// the old primary a moment before it failed. Resuming from walrelay's own
// position then delivers nothing twice that need not be. But a start above the
// slot makes the server skip every transaction committed below it, so the own
// position is used only where it means the same WAL: on the same system and
// timeline, or on a later timeline of that system whose history shows that the
// timeline walrelay streamed on continued at least up to walrelay's position.
// A standby promoted behind walrelay (asynchronous replication) forks below
// it: there, the new primary's own transactions between the fork point and
// walrelay's position would be skipped, and the slot's position (synchronized
// no further than the standby's WAL) is the one to resume from.
import { type Lsn, formatLsn, lsnKey } from '../lsn.js';
import type { ServerIdentity, TimelineHistoryReader } from '../source/replication-stream.js';

/** walrelay's own confirmed position, with the system and timeline it was confirmed on. */
export interface OwnPosition {
  confirmed: Lsn;
  server: ServerIdentity;
}

/** Why walrelay's own, later position is not where the session resumes. */
export type OwnPositionRefused =
  | { why: 'slot-recreated' }
  | { why: 'other-system'; systemId: string }
  /** The server's WAL ends at `walEnd`, below walrelay's position. */
  | { why: 'behind'; walEnd: Lsn }
  /** The timeline walrelay streamed on ended at `forkLsn` on the server's history, below walrelay's position. */
  | { why: 'forked'; timeline: number; forkLsn: Lsn }
  /** walrelay's timeline is not an ancestor of the server's (an older timeline, or a sibling branch). */
  | { why: 'not-an-ancestor'; timeline: number }
  | { why: 'history-unreadable'; error: string };

export interface ResumePoint {
  start: Lsn;
  from: 'slot' | 'own';
  /** Set when walrelay's own position was later than the slot's and not used. */
  refused?: OwnPositionRefused;
}

export interface ResumeInputs {
  slotConfirmed: Lsn;
  /** Null before the first session streamed. */
  own: OwnPosition | null;
  /** The slot was recreated since `own` was confirmed: its position, not walrelay's, is the truth. */
  slotRecreated: boolean;
  /** The server about to stream (IDENTIFY_SYSTEM). */
  server: ServerIdentity;
  timelineHistory: TimelineHistoryReader;
}

export async function resumePoint(inputs: ResumeInputs): Promise<ResumePoint> {
  const { slotConfirmed, own, server } = inputs;
  const slot = (refused?: OwnPositionRefused): ResumePoint => ({ start: slotConfirmed, from: 'slot', refused });
  if (!own || own.confirmed <= slotConfirmed) return slot();
  if (inputs.slotRecreated) return slot({ why: 'slot-recreated' });
  if (own.server.systemId !== server.systemId) return slot({ why: 'other-system', systemId: server.systemId });
  // Used only where the server's WAL reaches it: on the same timeline, a server restored from a backup has the
  // system and timeline but not the WAL (a fork is told apart by the history below, which says where).
  const reached = server.walEnd === undefined || own.confirmed <= server.walEnd;
  const ownIfReached: ResumePoint = reached ? { start: own.confirmed, from: 'own' } : slot({ why: 'behind', walEnd: server.walEnd! });
  if (own.server.timeline === server.timeline) return ownIfReached;
  if (own.server.timeline > server.timeline) return slot({ why: 'not-an-ancestor', timeline: own.server.timeline });
  let history: Awaited<ReturnType<TimelineHistoryReader>>;
  try {
    history = await inputs.timelineHistory(server.timeline);
  } catch (error) {
    return slot({ why: 'history-unreadable', error: (error as Error).message });
  }
  const ended = history.find((entry) => entry.timeline === own.server.timeline);
  if (!ended) return slot({ why: 'not-an-ancestor', timeline: own.server.timeline });
  if (own.confirmed <= ended.switchpoint) return ownIfReached;
  return slot({ why: 'forked', timeline: own.server.timeline, forkLsn: ended.switchpoint });
}

export interface ResumeWarning {
  code: 'TIMELINE_FORKED' | 'OWN_POSITION_UNPROVEN';
  fields: Record<string, unknown>;
  message: string;
}

/**
 * What to tell the operator when walrelay's own position was refused; null when there is nothing to say.
 * `exactlyOnceSinks`: the names of the sinks whose checkpoint is an event id (Redis and Kafka `exactlyOnce`).
 */
export function refusedWarning(point: ResumePoint, own: OwnPosition | null, server: ServerIdentity, host: string, exactlyOnceSinks: readonly string[] = []): ResumeWarning | null {
  const refused = point.refused;
  if (!refused || !own || refused.why === 'slot-recreated') return null;
  const ownLsn = formatLsn(own.confirmed);
  const slotLsn = formatLsn(point.start);
  const fields = { host, ownLsn, slotLsn, fromTimeline: own.server.timeline, timeline: server.timeline };
  if (refused.why === 'forked') {
    const forkLsn = formatLsn(refused.forkLsn);
    // Event ids come from commit LSNs: the new timeline's ids between the fork point and walrelay's position are at or
    // below ids already delivered, and a checkpoint that skips ids not greater than the last one skips them.
    const skipping = exactlyOnceSinks.length > 0
      ? ` Exactly-once sink(s) ${exactlyOnceSinks.join(', ')} skip the events whose ids are not above their checkpoint: the new primary's ` +
        `transactions committed between ${forkLsn} and ${ownLsn} are missing there; re-snapshot the published tables into them ` +
        '("walrelay backfill --restart --sink NAME -c FILE TABLE…")'
      : '';
    return {
      code: 'TIMELINE_FORKED',
      fields: { ...fields, forkLsn, forkId: lsnKey(refused.forkLsn), ...(exactlyOnceSinks.length > 0 ? { exactlyOnceSinks } : {}) },
      message: `timeline ${server.timeline} of ${host} forked from timeline ${refused.timeline} at ${forkLsn}, below walrelay's confirmed position ${ownLsn}: ` +
        `resuming from the slot's position ${slotLsn}. The events walrelay delivered between ${forkLsn} and ${ownLsn} came from the old primary's ` +
        `lost timeline (a standby promoted behind walrelay: asynchronous replication without synchronized_standby_slots); the new primary lacks them, ` +
        `and its own transactions from the fork point on are delivered now: their ids (from ${lsnKey(refused.forkLsn)} on) may be at or below ` +
        `ids already delivered (docs/failover.md).${skipping}`,
    };
  }
  const why = unprovenBecause(refused, own, server);
  return {
    code: 'OWN_POSITION_UNPROVEN',
    fields,
    message: `walrelay's confirmed position ${ownLsn} may not exist on ${host}: ${why}; resuming from the slot's position ${slotLsn} ` +
      '(what lies between may be delivered again, or may have come from WAL this server lacks) (docs/failover.md)',
  };
}

/** Why walrelay's position may not exist on the server (the cases other than a recreated slot and a fork). */
function unprovenBecause(refused: Exclude<OwnPositionRefused, { why: 'slot-recreated' | 'forked' }>, own: OwnPosition, server: ServerIdentity): string {
  switch (refused.why) {
    case 'other-system':
      return `it is another PostgreSQL system (system identifier ${refused.systemId}, walrelay streamed from ${own.server.systemId})`;
    case 'behind':
      return `its WAL ends at ${formatLsn(refused.walEnd)} (restored from a backup, or promoted behind the server walrelay streamed from)`;
    case 'not-an-ancestor':
      return `timeline ${refused.timeline}, which walrelay streamed on, is not in the history of its timeline ${server.timeline}`;
    case 'history-unreadable':
      return `its history could not be read (${refused.error})`;
  }
}
