// An edge's limit on concurrent feed reads for catching-up clients
// (relay/edge/read-limit.ts): never more than the limit at once, every read
// done, in arrival order, and a failed read frees its turn.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { ReadLimit } from '../../relay/edge/read-limit.js';

it('runs at most max reads at once and all of them, in arrival order', async () => {
  const limit = new ReadLimit(3);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const reads = Array.from({ length: 20 }, (_, index) => limit.run(async () => {
    started.push(index);
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 2 + (index % 4)));
    running--;
    return index;
  }));
  assert.deepEqual(await Promise.all(reads), Array.from({ length: 20 }, (_, index) => index));
  assert.equal(most, 3);
  assert.deepEqual(started, Array.from({ length: 20 }, (_, index) => index));
  assert.equal(limit.inFlight, 0);
});

it('frees the turn of a read that failed', async () => {
  const limit = new ReadLimit(1);
  await assert.rejects(limit.run(() => Promise.reject(new Error('feed unreachable'))), /feed unreachable/);
  assert.equal(await limit.run(async () => 'next'), 'next');
  assert.equal(limit.inFlight, 0);
});

it('limits a history\'s locate and chunk reads together', async () => {
  const limit = new ReadLimit(2);
  let running = 0;
  let most = 0;
  const busy = async <T>(value: T): Promise<T> => {
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 3));
    running--;
    return value;
  };
  const history = limit.limit({
    open: (afterId) => busy({ lastId: afterId, next: (count: number) => busy({ events: [], atEnd: count > 0 }) }),
  });
  const cursors = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => history.open(id)));
  await Promise.all(cursors.map((cursor) => cursor!.next(10)));
  assert.equal(most, 2);
  assert.deepEqual(cursors.map((cursor) => cursor!.lastId), ['a', 'b', 'c', 'd', 'e']);
});
