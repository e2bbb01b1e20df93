// Delivery that waits out a broken server: retry with exponential backoff,
// logged, until it succeeds, the failure is permanent, or the sink closes.
import type { Logger } from 'pino';
import { WalrelayError, describeError } from '../relay/errors.js';
import { Backoff } from '../relay/backoff.js';

export interface RetryOptions {
  sink: string;
  logger: Logger;
  isClosed(): boolean;
  /** Returns the error to stop with when a failure is permanent (bad credentials, wrong key type); null to retry. */
  permanent?(error: unknown): Error | null;
  onFailure?(error: unknown): void;
  /** What to log for a failure, when the message alone does not say what to do. */
  describe?(error: unknown): string;
  onSuccess?(): void;
  /** Aborted when the events are no longer wanted (their replication session ended): stop retrying. */
  signal?: AbortSignal;
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export async function deliverWithRetry<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const backoff = new Backoff(options.initialDelayMs ?? 100, options.maxDelayMs ?? 5000);
  for (let tries = 1; ; tries++) {
    if (options.isClosed()) throw new WalrelayError('SINK_CLOSED', `${options.sink} closed before the batch was acknowledged`, { retriable: true });
    if (options.signal?.aborted) throw abandoned(options.sink);
    try {
      const result = await attempt();
      if (tries > 1) options.logger.info({ sink: options.sink, tries }, 'sink delivering again');
      options.onSuccess?.();
      return result;
    } catch (error) {
      const fatal = options.permanent?.(error);
      if (fatal) throw fatal;
      options.onFailure?.(error);
      options.logger.warn({ sink: options.sink, tries, retryInMs: backoff.nextMs, err: options.describe?.(error) ?? describeError(error) }, 'sink delivery failed; retrying (nothing is confirmed until it succeeds)');
      await backoff.wait(options.signal);
    }
  }
}

/** The session that produced the batch ended: PostgreSQL sends its events again to the next one. */
export function abandoned(sink: string): WalrelayError {
  return new WalrelayError('DELIVERY_ABANDONED', `${sink}: the replication session ended before the batch was acknowledged; the next session receives it again`, { retriable: true });
}
