// The webhook sink's scheduler (sinks/webhook/ordering.ts) on its own:
// requests of one lane run one after another in order, barriers wait for
// everything before and hold back everything after, a request holding one
// lane twice does not wait for itself, and the concurrency limit holds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runOrdered, type OrderedJob } from '../sinks/webhook/ordering.js';

interface Trace {
  jobs: OrderedJob[];
  /** [job, "start" | "end"] in the order they happened. */
  log: [number, 'start' | 'end'][];
  peak: number;
}

/** Jobs that take a random few milliseconds, recording when each starts and ends. */
function traced(lanes: (readonly string[] | null)[]): Trace {
  const trace: Trace = { jobs: [], log: [], peak: 0 };
  let running = 0;
  trace.jobs = lanes.map((jobLanes, index) => ({
    lanes: jobLanes,
    run: async () => {
      trace.log.push([index, 'start']);
      trace.peak = Math.max(trace.peak, ++running);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
      running--;
      trace.log.push([index, 'end']);
    },
  }));
  return trace;
}

const position = (trace: Trace, job: number, what: 'start' | 'end') => trace.log.findIndex(([index, kind]) => index === job && kind === what);

describe('webhook request ordering', { timeout: 10_000 }, () => {
  it('runs requests of one lane in order, other lanes alongside, within the concurrency limit', async () => {
    const lanes = Array.from({ length: 200 }, (_, i) => [`k${i % 7}`]);
    const trace = traced(lanes);
    await runOrdered(trace.jobs, 4);
    assert.equal(trace.log.length, 400);
    assert.ok(trace.peak <= 4 && trace.peak > 1, `peak ${trace.peak}`);
    for (let i = 7; i < 200; i++) assert.ok(position(trace, i - 7, 'end') < position(trace, i, 'start'), `job ${i} started before job ${i - 7} of its lane ended`);
  });

  it('a barrier waits for everything before it, and everything after waits for it', async () => {
    const lanes: (readonly string[] | null)[] = [['a'], ['b'], ['c'], null, ['a'], ['d'], null, null, ['e']];
    const trace = traced(lanes);
    await runOrdered(trace.jobs, 16);
    for (const barrier of [3, 6, 7]) {
      for (let i = 0; i < lanes.length; i++) {
        if (i < barrier) assert.ok(position(trace, i, 'end') < position(trace, barrier, 'start'), `job ${i} ended after barrier ${barrier} started`);
        if (i > barrier) assert.ok(position(trace, barrier, 'end') < position(trace, i, 'start'), `job ${i} started before barrier ${barrier} ended`);
      }
    }
  });

  it('a request holding two events of one key does not wait for itself, and waits for every lane it shares', async () => {
    const trace = traced([['a', 'b'], ['x'], ['a', 'a', 'c'], ['c', 'b']]);
    await runOrdered(trace.jobs, 16);
    assert.equal(trace.log.length, 8);
    assert.ok(position(trace, 0, 'end') < position(trace, 2, 'start'));
    assert.ok(position(trace, 2, 'end') < position(trace, 3, 'start'));
    assert.ok(position(trace, 0, 'end') < position(trace, 3, 'start'));
  });

  it('starts nothing new after a failure, and fails once the requests under way are over', async () => {
    let started = 0;
    let ended = 0;
    const jobs: OrderedJob[] = Array.from({ length: 10 }, (_, i) => ({
      lanes: [`k${i}`],
      run: async () => {
        started++;
        await new Promise((resolve) => setTimeout(resolve, i === 0 ? 1 : 20));
        ended++;
        if (i === 0) throw new Error('closed');
      },
    }));
    await assert.rejects(runOrdered(jobs, 3), /closed/);
    assert.equal(started, 3);
    assert.equal(ended, 3, 'the write failed before the requests under way were over');
  });
});
