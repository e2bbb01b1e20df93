// The pieces of the walrelay_client resume that the end-to-end test
// (supabase-realtime.test.ts) does not reach: ring positions across a wrap
// and the gap they reveal, the resume window, one resume per rejoin, and a
// reconnecting name replacing its previous connection.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayRing } from '../../sinks/websocket/ring.js';
import { ResumePoints, markAt, type ResumeMark } from '../../sinks/websocket/protocols/realtime/resume.js';
import type { ChangeEvent } from '../../relay/route/event.js';

const event = (n: number): ChangeEvent => ({ id: `e${n}`, op: 'insert', schema: 'public', table: 't', key: { id: n }, new: { id: n }, old: null, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-11-22T10:00:00.000000Z' });

it('replays a ring from a position, and reports a gap once the ring has moved past it', () => {
  const ring = new ReplayRing(3);
  assert.deepEqual(ring.from(0), []);
  for (let n = 0; n < 2; n++) ring.push(event(n));
  const position = ring.position;
  assert.equal(position, 2);
  ring.push(event(2));
  ring.push(event(3));
  assert.deepEqual(ring.from(position)!.map((e) => e.id), ['e2', 'e3']);
  assert.deepEqual(ring.after('e1')!.map((e) => e.id), ['e2', 'e3']);
  ring.push(event(4));
  ring.push(event(5)); // the ring (3) now holds e3..e5: position 2 is gone
  assert.equal(ring.from(position), null);
  assert.equal(ring.after('e1'), null);
  assert.deepEqual(ring.from(3)!.map((e) => e.id), ['e3', 'e4', 'e5']);
});

it('finds where a client that had every event up to an id resumes, on a ring that holds it or not (another edge\'s point)', () => {
  const ring = new ReplayRing(3);
  assert.equal(ring.positionAfter('e1'), 0, 'an empty ring: from its start');
  for (let n = 2; n <= 4; n++) ring.push(event(n * 2)); // e4, e6, e8 (ids sort as strings here: single digits)
  assert.equal(ring.idBefore(0), null);
  assert.equal(ring.idBefore(2), 'e6');
  assert.equal(ring.positionAfter('e6'), 2, 'after a held id');
  assert.equal(ring.positionAfter('e5'), 1, 'an id this ring never had (filtered out here): after the held ones below it');
  assert.equal(ring.positionAfter('e9'), 3, 'an id ahead of this ring: from the next one to come');
  assert.equal(ring.positionAfter('e3'), null, 'older than anything held: a gap');
  ring.push(event(10));
  assert.equal(ring.idBefore(1), null, 'no longer held');
});

it('marks a resume point with the id before it, \'\' (a gap) once the ring dropped that one, null when nothing was missed', () => {
  const ring = new ReplayRing(2);
  assert.deepEqual(markAt(ring, 0), { position: 0, afterId: null }, 'an empty ring: nothing missed yet');
  for (let n = 1; n <= 3; n++) ring.push(event(n)); // holds e2, e3
  assert.deepEqual(markAt(ring, 3), { position: 3, afterId: 'e3' });
  assert.deepEqual(markAt(ring, 2), { position: 2, afterId: 'e2' });
  assert.deepEqual(markAt(ring, 1), { position: 1, afterId: '' }, 'e1 is gone: a point that no ring nor feed holds');
});

it('resumes a topic once, only within the window, and hands over a name\'s previous connection', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const connection = (name: string) => ({ name, resumeMarks: () => new Map<string, ResumeMark>() });
  const [first, second] = [connection('first'), connection('second')];
  const points = new ResumePoints<ReturnType<typeof connection>>(60_000);
  assert.equal(points.connected('tab', first), undefined);
  assert.equal(points.connected('tab', second), first, 'the previous connection is returned for the caller to end');
  points.ended('tab', first, new Map([['realtime:a', { position: 7, afterId: 'e6' }], ['realtime:b', { position: 9, afterId: 'e8' }]]));
  assert.deepEqual(points.take('tab', 'realtime:a'), { position: 7, afterId: 'e6' });
  assert.equal(points.take('tab', 'realtime:a'), null, 'a position is used once');
  assert.equal(points.take('other', 'realtime:b'), null, 'only the same name resumes');
  t.mock.timers.tick(60_001);
  assert.equal(points.take('tab', 'realtime:b'), null, 'past the window nothing is replayed');
});
