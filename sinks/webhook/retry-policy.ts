// Which answers are worth another attempt, and when to make it.
// Retriable: 5xx, 408 Request Timeout, 429 Too Many Requests (and no answer
// at all: timeouts, refused or reset connections). Any other status, 4xx
// above all, is a refusal that repeating the same request will not change.

const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 30_000;
/** A Retry-After beyond this is taken as this: an hour without a try would look like a hang. */
const MAX_RETRY_AFTER_MS = 600_000;

export function isRetriable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * Exponential backoff with jitter (a random point in the upper half of the
 * step, so that concurrent requests do not come back in step), and never
 * sooner than the receiver's Retry-After.
 */
export function backoffMs(attempts: number, retryAfterMs?: number): number {
  const step = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(attempts - 1, 20));
  const jittered = step / 2 + Math.random() * (step / 2);
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}
