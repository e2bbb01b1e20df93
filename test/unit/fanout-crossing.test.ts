// The fan-out benchmark's summary: the frames/s at which p99 crosses 250 ms,
// taken after the last window under it (a shared host's busy moment can put
// one early window past it), interpolated between that window and the next.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FanOutStep } from '../../bench/fanout.js';
import { crossingFramesPerSecond } from '../../bench/fanout-report.js';

function step(framesPerSecond: number, p99: number, disconnected = 0): FanOutStep {
  return {
    setup: '1 relay', protocol: 'native', clients: 1000, rowsPerSecond: framesPerSecond / 1000, framesPerSecond, frames: 0, expectedFrames: 0,
    p50: 0, p99, max: p99, firstP99: 0, spreadP99: 0, clientsLoopP99: 0, disconnected,
    relayCpu: 0, edgesCpu: 0, redisCpu: 0, clientsCpu: 0, relayRunQueue: 0, clientsRunQueue: 0, load: 0,
  };
}

test('interpolated between the last window under 250 ms and the one after it', () => {
  assert.equal(crossingFramesPerSecond([step(50_000, 100), step(100_000, 200), step(200_000, 400), step(300_000, 900)]), 125_000);
});

test('an early window past the limit followed by one under it does not end the search', () => {
  assert.equal(crossingFramesPerSecond([step(50_000, 300), step(100_000, 150), step(200_000, 350), step(300_000, 900)]), 150_000);
});

test('a disconnect counts as past, at the last rate under it', () => {
  assert.equal(crossingFramesPerSecond([step(50_000, 100), step(100_000, 120, 3)]), 50_000);
});

test('no window under it: the first rate, an upper bound; none past it: not crossed', () => {
  assert.equal(crossingFramesPerSecond([step(50_000, 300), step(100_000, 400)]), 50_000);
  assert.equal(crossingFramesPerSecond([step(50_000, 100), step(100_000, 200)]), null);
  assert.equal(crossingFramesPerSecond([]), null);
});
