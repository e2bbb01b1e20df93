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
//
// A hung host (a stopped server, a partition) accepts TCP connections and
// never answers, so every step that talks to a host is bounded by the
// caller's connect timeout (source.timeoutSeconds). A host that did not
// answer its last attempt, or whose stream went silent, is asked after the
// others, in the background: a search that finds a primary elsewhere, or
// none, does not wait for it. Otherwise each search (one every few seconds
// while walrelay looks for a new primary) would wait out the timeout on the
// hung host before it could notice the promoted standby. Its answer, when it
// comes, counts for the next search.
import pg from 'pg';
import { WalrelayError } from '../errors.js';
import { fromPgError } from '../setup/pg-errors.js';
import { withTimeout } from '../with-timeout.js';
import { type SourceHost, type SourceUrl, hostLabel, parseSourceUrl, singleHostUrl } from './hosts.js';

export interface SourceState {
  source: SourceUrl;
  /** The highest timeline a primary walrelay used was on; 0 = not known yet. */
  highestTimeline: number;
  /** The host last chosen (what `status` and the catalog pool use). */
  current: SourceHost | null;
  /** Hosts ("host:port") that did not answer their last connection attempt, or whose replication stream went silent. */
  unanswered: Set<string>;
}

const states = new Map<string, SourceState>();

/** The process-wide state for one source.url. */
export function sourceState(url: string): SourceState {
  let state = states.get(url);
  if (!state) {
    state = { source: parseSourceUrl(url), highestTimeline: 0, current: null, unanswered: new Set() };
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

/** The replication stream from `host` went silent (source.timeoutSeconds): the next searches ask it last and do not wait for it. */
export function noteSilent(url: string, label: string): void {
  sourceState(url).unanswered.add(label);
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
  const label = hostLabel(host);
  let client: pg.Client;
  try {
    // Reads sslrootcert, sslcert and sslkey, and checks sslmode against them: a missing file fails here.
    client = new pg.Client({ ...options.clientConfig, connectionString: singleHostUrl(state.source, host) });
  } catch (error) {
    return { host, error: fromPgError(error, `cannot connect to PostgreSQL at ${label}`) };
  }
  client.on('error', () => undefined); // a connection lost while idle: the next query fails with it
  // connectionTimeoutMillis bounds the connection; the same bound for the question (a host that hangs right after it).
  const bound = options.clientConfig?.connectionTimeoutMillis || undefined;
  try {
    await client.connect();
    const row = (await client.query({ text: PROBE_SQL, query_timeout: bound } as pg.QueryConfig)).rows[0];
    state.unanswered.delete(label);
    if (Number(row.standby) === 1) {
      await closeClient(client, bound ?? GOODBYE_MS);
      return { host, error: standbyError(label) };
    }
    return { host, client, timeline: Number(row.timeline) };
  } catch (error) {
    // An error with an SQLSTATE is the server's answer; a timeout or a refused connection is none.
    if (hasSqlState(error)) state.unanswered.delete(label);
    else state.unanswered.add(label);
    discard(client); // end() would wait for the goodbye of a server that may never answer
    return { host, error: fromPgError(error, `cannot connect to PostgreSQL at ${label}`) };
  }
}

function hasSqlState(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);
}

/** Closes the socket without a goodbye. */
function discard(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/** Says goodbye, waiting at most `ms` for the server's end of it (a server that hung meanwhile never sends it). */
export async function closeClient(client: pg.Client, ms: number): Promise<void> {
  await withTimeout(client.end().catch(() => undefined), ms);
  discard(client);
}

/** How long a connection not used further waits for the server's goodbye (not awaited by the search). */
const GOODBYE_MS = 5000;

/** A probe that can be looked at before it settles. */
interface Pending {
  host: SourceHost;
  result: Probe | null;
  done: Promise<Probe>;
}

function pending(state: SourceState, host: SourceHost, options: ConnectOptions): Pending {
  const item: Pending = { host, result: null, done: probe(state, host, options) };
  void item.done.then((result) => { item.result = result; });
  return item;
}

function notAnswered(host: SourceHost, timeoutMs: number | undefined): WalrelayError {
  const label = hostLabel(host);
  return new WalrelayError('SOURCE_UNREACHABLE',
    `PostgreSQL at ${label} has not answered yet, and was silent the last time too (no answer${timeoutMs ? ` within ${timeoutMs / 1000} s` : ''}: hung or unreachable)`, {
      retriable: true,
      hint: `walrelay asks ${label} again in each search, after the other hosts, without waiting for it; a hung or unreachable host is passed over`,
    });
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
        void closeClient(result.client, GOODBYE_MS);
        skip({ host: result.host, error: staleError(hostLabel(result.host), result.timeline!, highest) });
      } else if (result.client && !chosen) {
        chosen = { client: result.client, host: result.host, timeline: result.timeline! };
      } else if (result.client) {
        void closeClient(result.client, GOODBYE_MS); // a second primary on the same timeline: list order decides
      } else {
        skip(result);
      }
    }
    if (highest > 0) state.highestTimeline = highest;
  } else {
    // Hosts that did not answer last time: asked at once, in the background; the others one by one, in list order.
    const silent = hosts.length > 1 && hosts.some((host) => !state.unanswered.has(hostLabel(host)))
      ? hosts.filter((host) => state.unanswered.has(hostLabel(host))) : [];
    const background = silent.map((host) => pending(state, host, options));
    const take = (result: Probe): boolean => {
      if (result.client && result.timeline! < state.highestTimeline) {
        void closeClient(result.client, GOODBYE_MS);
        skip({ host: result.host, error: staleError(hostLabel(result.host), result.timeline!, state.highestTimeline) });
        return false;
      }
      if (result.client) {
        chosen = { client: result.client, host: result.host, timeline: result.timeline! };
        return true;
      }
      skip(result);
      return false;
    };
    for (const host of hosts) {
      if (silent.includes(host)) continue;
      if (take(await probe(state, host, options))) break;
    }
    for (const item of background) {
      if (item.result) {
        if (!chosen) take(item.result);
        else if (item.result.client) lateAnswer(item.result, state, options); // another host was taken
        continue;
      }
      // Not answered yet: not waited for. Its answer may still come; a stale primary is reported then (the zombie
      // shows itself), and any connection it opened is closed.
      if (!chosen) skip({ host: item.host, error: notAnswered(item.host, options.clientConfig?.connectionTimeoutMillis) });
      void item.done.then((late) => lateAnswer(late, state, options));
    }
  }
  if (chosen) {
    noteTimeline(url, chosen.host, chosen.timeline);
    return chosen;
  }
  if (skipped.length === 1) throw skipped[0].error!;
  skipped.sort((a, b) => hosts.indexOf(a.host) - hosts.indexOf(b.host)); // named in list order, however they were asked
  const retriable = skipped.some((result) => result.error!.retriable);
  throw new WalrelayError('NO_PRIMARY', `no host of source.url is a primary walrelay can use: ${skipped.map((result) => `${hostLabel(result.host)}: ${result.error!.message}`).join('; ')}`, {
    retriable,
    hint: retriable
      ? 'walrelay keeps trying every host (at most 5 s between rounds) until one is a primary; promote a standby if the primary is gone'
      : skipped[0].error!.hint,
  });
}

/** The answer of a host the search did not wait for: only reported (a stale primary), its connection closed. */
function lateAnswer(result: Probe, state: SourceState, options: ConnectOptions): void {
  if (!result.client) return;
  void closeClient(result.client, GOODBYE_MS);
  if (state.highestTimeline > 0 && result.timeline! < state.highestTimeline) {
    options.onSkip?.(result.host, staleError(hostLabel(result.host), result.timeline!, state.highestTimeline));
  }
}

/** The URL `pg` gets for one host (credentials and parameters of source.url). */
export function hostUrl(url: string, host: SourceHost): string {
  return singleHostUrl(sourceState(url).source, host);
}
