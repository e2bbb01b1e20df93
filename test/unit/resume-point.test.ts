// Where a session resumes (relay/ops/resume-point.ts): walrelay's own, later
// position only where the server's history provably contains it; the slot's
// otherwise. And the parsing of TIMELINE_HISTORY's file.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { refusedWarning, resumePoint, type OwnPosition, type ResumeInputs } from '../../relay/ops/resume-point.js';
import { parseTimelineHistory, type TimelineSwitch } from '../../relay/source/timeline-history.js';
import { parseLsn } from '../../relay/lsn.js';

const SYSTEM = '7400000000000000001';
const slotConfirmed = parseLsn('0/3000000');
const ownOnTimeline1: OwnPosition = { confirmed: parseLsn('0/5000000'), server: { systemId: SYSTEM, timeline: 1 } };

/** Inputs with a history reader that records what it was asked. */
function inputs(overrides: Partial<ResumeInputs>, history: Record<number, TimelineSwitch[]> = {}): ResumeInputs & { asked: number[] } {
  const asked: number[] = [];
  return {
    slotConfirmed, own: ownOnTimeline1, slotRecreated: false, server: { systemId: SYSTEM, timeline: 1 },
    timelineHistory: async (timeline) => {
      asked.push(timeline);
      if (!history[timeline]) throw new Error(`could not open file "pg_wal/0000000${timeline}.history"`);
      return history[timeline];
    },
    asked,
    ...overrides,
  };
}

describe('resume point', () => {
  it('same system and timeline: walrelay\'s own position, when later than the slot\'s', async () => {
    const input = inputs({});
    assert.deepEqual(await resumePoint(input), { start: ownOnTimeline1.confirmed, from: 'own' });
    assert.deepEqual(input.asked, [], 'no history needed');
  });

  it('same system and timeline, but the server\'s WAL ends below walrelay\'s position (a restored server): the slot\'s', async () => {
    const server = { systemId: SYSTEM, timeline: 1, walEnd: parseLsn('0/4000000') };
    const point = await resumePoint(inputs({ server }));
    assert.deepEqual(point, { start: slotConfirmed, from: 'slot', refused: { why: 'behind', walEnd: server.walEnd } });
    const warning = refusedWarning(point, ownOnTimeline1, server, 'db1:5432');
    assert.equal(warning?.code, 'OWN_POSITION_UNPROVEN');
    assert.match(warning!.message, /WAL ends at 0\/4000000/);
    const ahead = { ...server, walEnd: parseLsn('0/6000000') };
    assert.deepEqual(await resumePoint(inputs({ server: ahead })), { start: ownOnTimeline1.confirmed, from: 'own' }, 'WAL past walrelay\'s position: its own');
  });

  it('the slot\'s position when it is not behind walrelay\'s own, or walrelay has none yet', async () => {
    const ahead = parseLsn('0/6000000');
    assert.deepEqual(await resumePoint(inputs({ slotConfirmed: ahead })), { start: ahead, from: 'slot', refused: undefined });
    assert.deepEqual(await resumePoint(inputs({ own: null })), { start: slotConfirmed, from: 'slot', refused: undefined });
  });

  it('a newer timeline that forked above walrelay\'s position (a standby that had everything): its own position', async () => {
    const input = inputs({ server: { systemId: SYSTEM, timeline: 2 } }, { 2: [{ timeline: 1, switchpoint: parseLsn('0/5000100') }] });
    assert.deepEqual(await resumePoint(input), { start: ownOnTimeline1.confirmed, from: 'own' });
    assert.deepEqual(input.asked, [2]);
    // Ending exactly at walrelay's position is enough: the commit walrelay confirmed ends there.
    const atPosition = inputs({ server: { systemId: SYSTEM, timeline: 2 } }, { 2: [{ timeline: 1, switchpoint: ownOnTimeline1.confirmed }] });
    assert.equal((await resumePoint(atPosition)).from, 'own');
  });

  it('a newer timeline that forked below walrelay\'s position (a standby promoted behind it): the slot\'s, naming the fork point', async () => {
    const forkLsn = parseLsn('0/4000000');
    const point = await resumePoint(inputs({ server: { systemId: SYSTEM, timeline: 2 } }, { 2: [{ timeline: 1, switchpoint: forkLsn }] }));
    assert.deepEqual(point, { start: slotConfirmed, from: 'slot', refused: { why: 'forked', timeline: 1, forkLsn } });
    // Just promoted, its WAL not yet past walrelay's position: still the fork that is named (it says where).
    const young = { systemId: SYSTEM, timeline: 2, walEnd: parseLsn('0/4100000') };
    assert.deepEqual((await resumePoint(inputs({ server: young }, { 2: [{ timeline: 1, switchpoint: forkLsn }] }))).refused, { why: 'forked', timeline: 1, forkLsn });
    const warning = refusedWarning(point, ownOnTimeline1, { systemId: SYSTEM, timeline: 2 }, 'db2:5432');
    assert.equal(warning?.code, 'TIMELINE_FORKED');
    assert.deepEqual(warning?.fields, { host: 'db2:5432', ownLsn: '0/5000000', slotLsn: '0/3000000', fromTimeline: 1, timeline: 2, forkLsn: '0/4000000', forkId: '0000000004000000' });
    assert.match(warning!.message, /forked from timeline 1 at 0\/4000000, below walrelay's confirmed position 0\/5000000: resuming from the slot's position 0\/3000000/);
    assert.match(warning!.message, /between 0\/4000000 and 0\/5000000 came from the old primary's lost timeline/);
    assert.doesNotMatch(warning!.message, /Exactly-once/);
    // Exactly-once sinks skip ids not above their checkpoint: the new primary's transactions up to walrelay's position.
    const withExactlyOnce = refusedWarning(point, ownOnTimeline1, { systemId: SYSTEM, timeline: 2 }, 'db2:5432', ['orders']);
    assert.equal(withExactlyOnce?.fields.forkId, '0000000004000000');
    assert.match(withExactlyOnce!.message, /Exactly-once sink\(s\) orders skip .* committed between 0\/4000000 and 0\/5000000 are missing there; .*backfill --restart --sink/);
  });

  it('two promotions later: the switchpoint of the timeline walrelay streamed on decides, not the latest one', async () => {
    const history = { 3: [{ timeline: 1, switchpoint: parseLsn('0/4000000') }, { timeline: 2, switchpoint: parseLsn('0/6000000') }] };
    const fromTimeline2: OwnPosition = { confirmed: parseLsn('0/5000000'), server: { systemId: SYSTEM, timeline: 2 } };
    assert.equal((await resumePoint(inputs({ own: fromTimeline2, server: { systemId: SYSTEM, timeline: 3 } }, history))).from, 'own');
    assert.deepEqual((await resumePoint(inputs({ server: { systemId: SYSTEM, timeline: 3 } }, history))).refused, { why: 'forked', timeline: 1, forkLsn: parseLsn('0/4000000') });
  });

  it('a timeline that does not descend from walrelay\'s (a sibling branch, or an older timeline): the slot\'s', async () => {
    const fromTimeline2: OwnPosition = { ...ownOnTimeline1, server: { systemId: SYSTEM, timeline: 2 } };
    const sibling = await resumePoint(inputs({ own: fromTimeline2, server: { systemId: SYSTEM, timeline: 3 } }, { 3: [{ timeline: 1, switchpoint: parseLsn('0/6000000') }] }));
    assert.deepEqual(sibling, { start: slotConfirmed, from: 'slot', refused: { why: 'not-an-ancestor', timeline: 2 } });
    const older = inputs({ own: fromTimeline2, server: { systemId: SYSTEM, timeline: 1 } });
    assert.deepEqual((await resumePoint(older)).refused, { why: 'not-an-ancestor', timeline: 2 });
    assert.deepEqual(older.asked, []);
    assert.equal(refusedWarning(sibling, fromTimeline2, { systemId: SYSTEM, timeline: 3 }, 'db3:5432')?.code, 'OWN_POSITION_UNPROVEN');
  });

  it('a history that cannot be read: the slot\'s (nothing proves the position)', async () => {
    const point = await resumePoint(inputs({ server: { systemId: SYSTEM, timeline: 2 } }));
    assert.equal(point.from, 'slot');
    assert.equal(point.refused?.why, 'history-unreadable');
    assert.match(refusedWarning(point, ownOnTimeline1, { systemId: SYSTEM, timeline: 2 }, 'db2:5432')!.message, /history could not be read \(could not open file/);
  });

  it('another system (a restored or rebuilt server): never walrelay\'s own position, whatever the timeline', async () => {
    for (const timeline of [1, 2]) {
      const input = inputs({ server: { systemId: '7400000000000000002', timeline } }, { 2: [{ timeline: 1, switchpoint: parseLsn('F/0') }] });
      assert.deepEqual(await resumePoint(input), { start: slotConfirmed, from: 'slot', refused: { why: 'other-system', systemId: '7400000000000000002' } });
      assert.deepEqual(input.asked, []);
    }
    const point = await resumePoint(inputs({ server: { systemId: '7400000000000000002', timeline: 1 } }));
    assert.match(refusedWarning(point, ownOnTimeline1, { systemId: '7400000000000000002', timeline: 1 }, 'db1:5432')!.message, /another PostgreSQL system \(system identifier 7400000000000000002, walrelay streamed from 7400000000000000001\)/);
  });

  it('a recreated slot: its position, without a warning (the recreation sent a gap event)', async () => {
    const point = await resumePoint(inputs({ slotRecreated: true }));
    assert.deepEqual(point, { start: slotConfirmed, from: 'slot', refused: { why: 'slot-recreated' } });
    assert.equal(refusedWarning(point, ownOnTimeline1, { systemId: SYSTEM, timeline: 1 }, 'db1:5432'), null);
  });
});

describe('TIMELINE_HISTORY content', () => {
  it('reads each ancestor and where it ended, skipping blank and comment lines', () => {
    const content = '1\t0/3000060\tno recovery target specified\n\n# a comment\n2\t0/5A0F2D8\tbefore 2026-12-06 07:00:00+00\n';
    assert.deepEqual(parseTimelineHistory(content), [
      { timeline: 1, switchpoint: parseLsn('0/3000060') },
      { timeline: 2, switchpoint: parseLsn('0/5A0F2D8') },
    ]);
    assert.deepEqual(parseTimelineHistory(''), []);
  });
});
