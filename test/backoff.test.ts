// The one backoff every retry loop uses (relay/backoff.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../relay/backoff.js';

test('backoff doubles up to its ceiling, resets, and a stop cuts a wait short', async () => {
  const backoff = new Backoff(10, 35);
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    delays.push(backoff.nextMs);
    const started = Date.now();
    await backoff.wait();
    assert.ok(Date.now() - started >= delays[i] - 2, `waited ${Date.now() - started} ms of ${delays[i]}`);
  }
  assert.deepEqual(delays, [10, 20, 35, 35]);
  backoff.reset();
  assert.equal(backoff.nextMs, 10);

  const long = new Backoff(60_000, 60_000);
  const started = Date.now();
  const waiting = long.wait();
  long.interrupt();
  await waiting;
  assert.ok(Date.now() - started < 1000, 'interrupt() ends the wait at once');
});
