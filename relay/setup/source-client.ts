// A short-lived admin connection to the source database for setup, status,
// backfill and the relay's own checks. Every PostgreSQL error, connecting or
// in `work`, leaves as a WalrelayError with a code and a hint (pg-errors.ts),
// and the connection is always closed.
//
// With several hosts in source.url, the connection goes to the primary
// (relay/source/primary.ts): standbys and stale primaries are passed over.
import type pg from 'pg';
import type { Config } from '../../config/schema.js';
import { fromPgError } from './pg-errors.js';
import { closeClient, connectPrimary } from '../source/primary.js';
import type { SourceHost } from '../source/hosts.js';

export interface SourceClientOptions {
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** Value parsers (backfill reads every value as text). */
  types?: pg.CustomTypesConfig;
  /** What `work` does, to start the message of an error it throws. */
  doing?: string;
  /**
   * Bound on each statement (the relay's own quick checks: a host that hangs
   * after it was chosen must not stall the relay). Not for setup or backfill,
   * whose statements may rightly wait (slot creation waits for transactions).
   */
  queryTimeoutMs?: number;
}

export async function withSourceClient<T>(config: Config, work: (client: pg.Client, host: SourceHost) => Promise<T>, options: SourceClientOptions = {}): Promise<T> {
  const { client, host } = await connectPrimary(config.source.url, {
    clientConfig: {
      application_name: options.applicationName ?? 'walrelay-admin',
      types: options.types,
      connectionTimeoutMillis: config.source.timeoutSeconds * 1000, // a hung server is noticed, not waited for
      query_timeout: options.queryTimeoutMs,
    },
  });
  try {
    return await work(client, host);
  } catch (error) {
    throw fromPgError(error, options.doing ?? 'PostgreSQL refused a statement');
  } finally {
    await closeClient(client, config.source.timeoutSeconds * 1000);
  }
}
