// The live feed's window: the full dispatchWindowMs for a feed that gathers
// fewer than EVENTS_PER_WINDOW in it, shorter for a faster one, never under
// 1 ms, and the full one when nothing says how fast the feed is.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { windowFor } from '../../relay/route/dispatch-window.js';

describe('dispatch window', () => {
  it('keeps the full window for a feed of up to 100 events per window, shortens it for a faster one', () => {
    assert.equal(windowFor(50, 5, 5), 5, '10k rows/s: 50 events in 5 ms');
    assert.equal(windowFor(100, 5, 5), 5);
    assert.ok(Math.abs(windowFor(150, 5, 5) - 10 / 3) < 1e-9, '30k rows/s: 150 events in 5 ms → a window of ~3.3 ms');
    assert.equal(windowFor(1000, 5, 5), 1, 'never under 1 ms');
  });

  it('the full window when the last one says nothing of the rate', () => {
    assert.equal(windowFor(0, 5, 5), 5);
    assert.equal(windowFor(100, 0, 5), 5);
    assert.equal(windowFor(100, Infinity, 5), 5, 'the first dispatch (no earlier one)');
    assert.equal(windowFor(100, 5, 0), 0, 'dispatchWindowMs 0: no window');
  });
});
