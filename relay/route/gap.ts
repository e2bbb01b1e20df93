// The gap event: changes between `fromLsn` and `toLsn` were lost with the
// replication slot (source.onSlotLost: recreate, relay/ops/slot-recovery.ts).
// It travels through the WAL as a transactional logical message with this
// prefix, written right after the new slot's start, and becomes op "gap".
import type { ChangeEvent } from './event.js';

export const GAP_PREFIX = 'walrelay.gap';

/** The content of the gap message. */
export interface GapMessage {
  v: 1;
  slot: string;
  /** Every change before this position was delivered. */
  fromLsn: string;
  /** The new slot's consistent point: every change committed after it is delivered. */
  toLsn: string;
}

/** The gap event for a message's content, or null when the content is not a gap message (then it stays a plain message). */
export function gapEvent(content: string, stamp: Pick<ChangeEvent, 'id' | 'lsn' | 'commitLsn' | 'xid' | 'commitTime'>): ChangeEvent | null {
  let gap: Partial<GapMessage>;
  try {
    gap = JSON.parse(content);
  } catch {
    return null;
  }
  if (gap?.v !== 1 || typeof gap.fromLsn !== 'string' || typeof gap.toLsn !== 'string' || typeof gap.slot !== 'string') return null;
  return { id: stamp.id, op: 'gap', slot: gap.slot, fromLsn: gap.fromLsn, toLsn: gap.toLsn, lsn: stamp.lsn, commitLsn: stamp.commitLsn, xid: stamp.xid, commitTime: stamp.commitTime };
}
