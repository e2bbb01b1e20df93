// Which listed host to talk to: the first, in source.url's order, that is a
// primary (pg_is_in_recovery() false, as libpq's target_session_attrs=
// read-write) and not on an older timeline than one walrelay already read
// from. The second rule fences zombies: a primary that crashed, was replaced
// by a promoted standby, and came back without being demoted still says it is
// a primary, on its old timeline, with its old slot; what it serves was
// never on the new primary's history.
//
// The highest timeline is remembered per process. A process that knows none
// yet (it just started) asks every host at once and starts from the highest
// primary timeline among them, so a zombie listed first is refused after a
// walrelay restart too.
import pg from 'pg';
import { WalrelayError } from '../errors.js';
import { fromPgError } from '../setup/pg-errors.js';
import { type SourceHost, type SourceUrl, hostLabel, parseSourceUrl, singleHostUrl } from './hosts.js';

export interface SourceState {
  source: SourceUrl;
  /** The highest timeline a primary walrelay used was on; 0 = not known yet. */
  highestTimeline: number;
  /** The host last chosen (what `status` and the catalog pool use). */
  current: SourceHost | null;
}

const states = new Map<string, SourceState>();

/** The process-wide state for one source.url. */
export function sourceState(url: string): SourceState {
  let state = states.get(url);
  if (!state) {
    state = { source: parseSourceUrl(url), highestTimeline: 0, current: null };
    states.set(url, state);
  }
  return state;
}

/** Records the timeline a primary was read from (IDENTIFY_SYSTEM), so that older ones are refused from now on. */
export function noteTimeline(url: string, host: SourceHost, timeline: number): void {
  const state = sourceState(url);
  state.highestTimeline = Math.max(state.highestTimeline, timeline);
  state.current = host;
}

/** On a primary, the first 8 hex digits of the current WAL file name are its timeline; a standby has none of its own. */
// Numbers, not booleans: a caller's type parsers may read every value as text (backfill does).
const PROBE_SQL = `SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END AS standby,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline`;

export function staleError(host: string, timeline: number, highest: number): WalrelayError {
  return new WalrelayError('STALE_PRIMARY',
    `PostgreSQL at ${host} says it is a primary but is on timeline ${timeline}, older than timeline ${highest} walrelay already read from: ` +
    'a former primary that came back without being demoted; walrelay does not read from it', {
      retriable: true,
      hint: `stop ${host} or rebuild it as a standby of the new primary; walrelay keeps using the other hosts of source.url`,
    });
}

export function standbyError(host: string): WalrelayError {
  return new WalrelayError('NOT_PRIMARY', `PostgreSQL at ${host} is a standby (in recovery)`, {
    retriable: true,
    hint: 'walrelay reads only from a primary: list the primary in source.url (several hosts: postgres://u@host1:5432,host2:5432/db); it waits for a promotion meanwhile',
  });
}

export interface ConnectOptions {
  clientConfig?: Omit<pg.ClientConfig, 'connectionString'>;
  /** Told about each host passed over, with the reason (a standby, a stale primary, unreachable). */
  onSkip?: (host: SourceHost, reason: WalrelayError) => void;
}

export interface PrimaryConnection {
  client: pg.Client;
  host: SourceHost;
  timeline: number;
}

interface Probe {
  host: SourceHost;
  client?: pg.Client;
  timeline?: number;
  error?: WalrelayError;
}

async function probe(state: SourceState, host: SourceHost, options: ConnectOptions): Promise<Probe> {
  const client = new pg.Client({ ...options.clientConfig, connectionString: singleHostUrl(state.source, host) });
  client.on('error', () => undefined); // a connection lost while idle: the next query fails with it
  try {
    await client.connect();
    const row = (await client.query(PROBE_SQL)).rows[0];
    if (Number(row.standby) === 1) {
      await client.end().catch(() => undefined);
      return { host, error: standbyError(hostLabel(host)) };
    }
    return { host, client, timeline: Number(row.timeline) };
  } catch (error) {
    await client.end().catch(() => undefined);
    return { host, error: fromPgError(error, `cannot connect to PostgreSQL at ${hostLabel(host)}`) };
  }
}

/**
 * A connection to the primary, by the rules above. Throws the host's own
 * error when source.url names one host, else NO_PRIMARY listing why each
 * host was passed over (retriable while any of them may yet answer).
 */
export async function connectPrimary(url: string, options: ConnectOptions = {}): Promise<PrimaryConnection> {
  const state = sourceState(url);
  const { hosts } = state.source;
  const skipped: Probe[] = [];
  const skip = (result: Probe) => {
    skipped.push(result);
    options.onSkip?.(result.host, result.error!);
  };
  let chosen: PrimaryConnection | null = null;
  if (state.highestTimeline === 0 && hosts.length > 1) {
    const probes = await Promise.all(hosts.map((host) => probe(state, host, options)));
    const highest = Math.max(0, ...probes.map((result) => result.timeline ?? 0));
    for (const result of probes) {
      if (result.client && result.timeline! < highest) {
        await result.client.end().catch(() => undefined);
        skip({ host: result.host, error: staleError(hostLabel(result.host), result.timeline!, highest) });
      } else if (result.client && !chosen) {
        chosen = { client: result.client, host: result.host, timeline: result.timeline! };
      } else if (result.client) {
        await result.client.end().catch(() => undefined); // a second primary on the same timeline: list order decides
      } else {
        skip(result);
      }
    }
    if (highest > 0) state.highestTimeline = highest;
  } else {
    for (const host of hosts) {
      const result = await probe(state, host, options);
      if (result.client && result.timeline! < state.highestTimeline) {
        await result.client.end().catch(() => undefined);
        skip({ host, error: staleError(hostLabel(host), result.timeline!, state.highestTimeline) });
      } else if (result.client) {
        chosen = { client: result.client, host, timeline: result.timeline! };
        break;
      } else {
        skip(result);
      }
    }
  }
  if (chosen) {
    noteTimeline(url, chosen.host, chosen.timeline);
    return chosen;
  }
  if (skipped.length === 1) throw skipped[0].error!;
  const retriable = skipped.some((result) => result.error!.retriable);
  throw new WalrelayError('NO_PRIMARY', `no host of source.url is a primary walrelay can use: ${skipped.map((result) => `${hostLabel(result.host)}: ${result.error!.message}`).join('; ')}`, {
    retriable,
    hint: retriable
      ? 'walrelay keeps trying every host (at most 5 s between rounds) until one is a primary; promote a standby if the primary is gone'
      : skipped[0].error!.hint,
  });
}

/** The URL `pg` gets for one host (credentials and parameters of source.url). */
export function hostUrl(url: string, host: SourceHost): string {
  return singleHostUrl(sourceState(url).source, host);
}
