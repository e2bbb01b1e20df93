// The daemon's small pool for catalog lookups and slot health, on the host
// the replication stream uses (relay/source/primary.ts): after a switch to
// another host it is rebuilt there, so that no lookup reads a stale primary.
import pg from 'pg';
import { WalrelayError } from '../errors.js';
import { hostLabel } from './hosts.js';
import { hostUrl, sourceState } from './primary.js';

export class SourcePool {
  private pool: pg.Pool | null = null;
  private label: string | null = null;

  constructor(private readonly url: string, private readonly options: Omit<pg.PoolConfig, 'connectionString'>) {}

  /** The pool of the current host; none before walrelay chose one. */
  private current(): pg.Pool {
    const host = sourceState(this.url).current;
    if (!host) throw new WalrelayError('SOURCE_UNREACHABLE', 'no PostgreSQL host chosen yet', { retriable: true });
    const label = hostLabel(host);
    if (this.pool && this.label === label) return this.pool;
    void this.pool?.end().catch(() => undefined);
    this.pool = new pg.Pool({ ...this.options, connectionString: hostUrl(this.url, host) });
    this.pool.on('error', () => undefined);
    this.label = label;
    return this.pool;
  }

  /** A client of the current host's pool, for several statements on one connection; release() it. */
  connect(): Promise<pg.PoolClient> {
    try {
      return this.current().connect();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  query(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    try {
      return this.current().query(text, values);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async end(): Promise<void> {
    await this.pool?.end().catch(() => undefined);
    this.pool = null;
  }
}
