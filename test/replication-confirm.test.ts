// Confirmations to PostgreSQL are coalesced under a live feed: one status
// update per interval at most, carrying the latest position, sent by the batch
// completions themselves (a timer due at each interval woke the process up to
// 50 times a second); one held back when the feed goes quiet still goes out.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationStream } from '../relay/source/replication-stream.js';
import { ZERO_LSN, type Lsn } from '../relay/lsn.js';
import { scriptedServer } from './harness/scripted-walsender.js';
import { waitFor } from './harness/wait.js';

async function streaming() {
  const server = await scriptedServer([]);
  const stream = new ReplicationStream(`postgres://walrelay@127.0.0.1:${server.port}/db`, 10_000);
  void stream.start({ slot: 's', publication: 'p', startLsn: ZERO_LSN }, { onData: () => undefined, onKeepalive: () => undefined, onClose: () => undefined });
  await waitFor(() => { try { server.send([]); return true; } catch { return false; } }, { what: 'START_REPLICATION', timeoutMs: 10_000 });
  return { server, stream };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('replication stream: confirmations', () => {
  it('after a quiet spell a confirmation goes out at once; under a live feed at most one per 20 ms, the latest position each, and the last one once the feed stops', async () => {
    const { server, stream } = await streaming();
    try {
      await sleep(50);
      const before = server.statuses.length;
      stream.confirm(0x100n as Lsn);
      await waitFor(() => server.statuses.length > before, { what: 'the first confirmation', timeoutMs: 1000, intervalMs: 1 });
      assert.equal(server.statuses.at(-1)!.flushed, 0x100n);
      // A live feed: a batch completes every 2 ms for 400 ms. The completions themselves carry the confirmations: the
      // stream's confirmation timer, a wake-up each time it fires, must not fire while they come.
      const start = server.statuses.length;
      let position = 0x100n;
      let timerFired = 0;
      const realSetTimeout = globalThis.setTimeout;
      globalThis.setTimeout = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => realSetTimeout((...given: unknown[]) => {
        if (callback.name === 'sendPendingConfirmation') timerFired++;
        callback(...given);
      }, ms, ...args)) as typeof setTimeout;
      const feedStart = performance.now();
      try {
        while (performance.now() - feedStart < 400) {
          position += 0x10n;
          stream.confirm(position as Lsn);
          await sleep(2);
        }
      } finally {
        globalThis.setTimeout = realSetTimeout;
      }
      assert.ok(timerFired <= 1, `the confirmation timer fired ${timerFired} times while batches completed`);
      const last = position;
      const stoppedAt = performance.now();
      await waitFor(() => server.statuses.at(-1)!.flushed === last, { what: 'the last confirmation', timeoutMs: 2000, intervalMs: 1 });
      const sent = server.statuses.slice(start);
      // Received times carry the loopback's jitter: allow a few milliseconds under the interval.
      for (let i = 1; i < sent.length; i++) assert.ok(sent[i].at - sent[i - 1].at >= 15, `status ${i} came ${(sent[i].at - sent[i - 1].at).toFixed(1)} ms after the one before`);
      assert.ok(sent.length >= 8 && sent.length <= 22, `${sent.length} status updates over 400 ms of completions`);
      for (let i = 1; i < sent.length; i++) assert.ok(sent[i].flushed > sent[i - 1].flushed, 'each carries a later position');
      assert.ok(server.statuses.at(-1)!.at - stoppedAt < 250, 'the held one went out soon after the feed stopped');
    } finally {
      await stream.stop();
      await server.close();
    }
  });

  it('stop sends a confirmation that was held back', async () => {
    const { server, stream } = await streaming();
    stream.confirm(0x100n as Lsn);
    stream.confirm(0x200n as Lsn); // within the interval: held
    await stream.stop();
    await waitFor(() => server.statuses.at(-1)?.flushed === 0x200n, { what: 'the held confirmation at stop', timeoutMs: 2000 });
    await server.close();
  });
});
