// The decoder under fuzzing: at least 100,000 damaged pgoutput messages
// (truncated, wrong lengths and counts, unknown tags, invalid UTF-8, spliced,
// random), built by mutating messages captured from real PostgreSQL 15 and
// 18 servers, go through the parser, the transaction assembler and the value
// converters. Only typed decode errors may come out, and every message must
// return.
//
// The seed is printed; replay a failure with WALRELAY_FUZZ_SEED=<seed>.
// WALRELAY_FUZZ_MESSAGES sets the number of damaged messages (npm run fuzz
// runs a million with a random seed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import type { FuzzFailure, FuzzStats } from './harness/fuzz-run.js';

/** Fixed, so the suite is repeatable; WALRELAY_FUZZ_SEED=random draws one (and prints it). */
const SEED = process.env.WALRELAY_FUZZ_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.WALRELAY_FUZZ_SEED ?? 20261127);
const MESSAGES = Number(process.env.WALRELAY_FUZZ_MESSAGES ?? 100_000);
/** No progress report (every 500 cases, a few milliseconds of work) for this long means a message never returned. */
const STALLED_MS = 60_000;

function runInWorker(seed: number, minMutated: number): Promise<{ failure: FuzzFailure | null; stats: FuzzStats }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./harness/fuzz-worker.js', import.meta.url), { workerData: { seed, minMutated } });
    let lastIndex = 0;
    let watchdog = setTimeout(stalled, STALLED_MS);
    function stalled() {
      void worker.terminate();
      reject(new Error(`the fuzz loop made no progress for ${STALLED_MS} ms after case ${lastIndex} (seed ${seed}): a message did not return`));
    }
    worker.on('message', (message: { progress?: number; result?: { failure: FuzzFailure | null; stats: FuzzStats } }) => {
      clearTimeout(watchdog);
      if (message.result) {
        void worker.terminate();
        resolve(message.result);
        return;
      }
      lastIndex = message.progress!;
      watchdog = setTimeout(stalled, STALLED_MS);
    });
    worker.on('error', (error) => { clearTimeout(watchdog); reject(error); });
  });
}

describe('pgoutput decoder under fuzzing', () => {
  it(`turns ${MESSAGES} damaged messages into typed decode errors or events, never a crash or a hang (seed ${SEED})`, async (t) => {
    t.diagnostic(`fuzz seed ${SEED} (replay: WALRELAY_FUZZ_SEED=${SEED})`);
    const { failure, stats } = await runInWorker(SEED, MESSAGES);
    t.diagnostic(`${stats.cases} cases, ${stats.messages} messages (${stats.mutated} damaged), ${stats.decoded} tuples decoded, ${stats.events} events (${stats.invalidEvents} with a damaged value that is not valid JSON); errors ${JSON.stringify(stats.errors)}`);
    assert.equal(failure, null, failure ? `case ${failure.index} of seed ${failure.seed} (${failure.mutations.join(', ')}), ${failure.stage} of ${failure.messageHex}:\n${failure.error}` : '');
    assert.ok(stats.mutated >= MESSAGES);
    // The corpus and the mutations reach every layer: the parser's errors, the assembler's, the values', and intact events.
    for (const code of ['PGOUTPUT_MALFORMED', 'PGOUTPUT_UNSUPPORTED', 'PGOUTPUT_UNKNOWN_RELATION', 'PGOUTPUT_OUT_OF_TRANSACTION', 'VALUE_MALFORMED', 'BACKFILL_MALFORMED']) {
      assert.ok((stats.errors[code] ?? 0) > 0, `no case produced ${code}`);
    }
    assert.ok(stats.events > MESSAGES / 10, `only ${stats.events} events came out`);
  });
});
