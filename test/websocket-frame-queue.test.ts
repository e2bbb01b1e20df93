// Issue 24 item 10: a client that is always slightly behind (its queue
// never drains to empty) must not grow the queue's memory forever.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameQueue } from '../sinks/websocket/frame-queue.js';

describe('FrameQueue', () => {
  it('stays bounded for a client that never fully drains', () => {
    const queue = new FrameQueue();
    let sent = 0;
    let pushed = 0;
    for (let round = 0; round < 100_000; round++) {
      queue.push({ frame: `f${pushed++}`, conflationKey: null });
      queue.push({ frame: `f${pushed++}`, conflationKey: null });
      // Sends two, but only after the socket took the frames queued before: always a few behind.
      if (queue.length > 3) {
        assert.equal(queue.shift()!.frame, `f${sent++}`);
        assert.equal(queue.shift()!.frame, `f${sent++}`);
      }
    }
    assert.ok(queue.length <= 5, `queued ${queue.length}`);
    assert.ok(queue.capacity <= 2 * 1024 + 10, `backing array holds ${queue.capacity} slots for ${queue.length} queued frames`);
  });

  it('keeps conflation and order across compactions', () => {
    const queue = new FrameQueue();
    const out: string[] = [];
    for (let i = 0; i < 5000; i++) {
      queue.push({ frame: `row${i % 3}@${i}`, conflationKey: `k${i % 3}` });
      queue.push({ frame: `plain${i}`, conflationKey: null });
      if (queue.length > 10) out.push(String(queue.shift()!.frame));
    }
    while (queue.length > 0) out.push(String(queue.shift()!.frame));
    const plain = out.filter((frame) => frame.startsWith('plain'));
    assert.deepEqual(plain, Array.from({ length: 5000 }, (_, i) => `plain${i}`), 'non-conflated frames all arrive, in order');
    for (const key of ['row0', 'row1', 'row2']) {
      const versions = out.filter((frame) => frame.startsWith(key)).map((frame) => Number(frame.split('@')[1]));
      assert.deepEqual(versions, [...versions].sort((a, b) => a - b), `${key} versions ascend`);
      assert.equal(versions.at(-1)! % 3, Number(key.slice(3)));
      assert.ok(versions.at(-1)! >= 4997, `${key}: its newest version is delivered last (${versions.at(-1)})`);
    }
    assert.equal(queue.shift(), undefined);
  });
});
