// A short-lived admin connection to the source database for setup, status,
// backfill and the relay's own checks. Every PostgreSQL error, connecting or
// in `work`, leaves as a WalrelayError with a code and a hint (pg-errors.ts),
// and the connection is always closed.
import pg from 'pg';
import type { Config } from '../../config/schema.js';
import { redact } from './sql.js';
import { fromPgError } from './pg-errors.js';

export interface SourceClientOptions {
  /** Shown in pg_stat_activity. */
  applicationName?: string;
  /** Value parsers (backfill reads every value as text). */
  types?: pg.CustomTypesConfig;
  /** What `work` does, to start the message of an error it throws. */
  doing?: string;
}

export async function withSourceClient<T>(config: Config, work: (client: pg.Client) => Promise<T>, options: SourceClientOptions = {}): Promise<T> {
  const client = new pg.Client({
    connectionString: config.source.url,
    application_name: options.applicationName ?? 'walrelay-admin',
    types: options.types,
    connectionTimeoutMillis: config.source.timeoutSeconds * 1000, // a hung server is noticed, not waited for
  });
  client.on('error', () => undefined); // a connection lost while idle: the next query fails with it
  try {
    await client.connect();
  } catch (error) {
    throw fromPgError(error, `cannot connect to PostgreSQL at ${redact(config.source.url)}`);
  }
  try {
    return await work(client);
  } catch (error) {
    throw fromPgError(error, options.doing ?? 'PostgreSQL refused a statement');
  } finally {
    await client.end().catch(() => undefined);
  }
}
