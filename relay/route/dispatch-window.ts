// How long a live feed's dispatch window is (relay/route/pipeline.ts): a
// window gathers the transactions that commit during it into one batch, one
// sink write and one wake-up for all of them.

/**
 * Events per dispatch that make its fixed cost (a sink write, its reply, a wake-up: about 0.2-0.3 ms of CPU here,
 * bench/OPTIMISATIONS.md) small beside the events' own: a feed that brings more in a window gets a shorter one.
 */
const EVENTS_PER_WINDOW = 100;

/**
 * The next window of a live feed: long enough to gather EVENTS_PER_WINDOW at the rate the last one saw (`gathered`
 * events in `gatheredInMs`), at most `maxMs` (pipeline.dispatchWindowMs) and at least 1 ms. So a faster feed waits
 * less (30k rows/s: ~3 ms instead of 5) where its dispatches would cost little per event anyway.
 */
export function windowFor(gathered: number, gatheredInMs: number, maxMs: number): number {
  if (gathered <= 0 || !(gatheredInMs > 0) || !Number.isFinite(gatheredInMs)) return maxMs;
  return Math.min(maxMs, Math.max(1, gatheredInMs * EVENTS_PER_WINDOW / gathered));
}
