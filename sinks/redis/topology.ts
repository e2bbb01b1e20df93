// The Redis sink's way to a Redis that is more than one address: a Cluster
// (cluster.ts) or a master named by Sentinel (sentinel.ts). Both go through
// ioredis, which keeps the slot map or the master address current; this file
// holds what they share: one pipelined exchange with one server, and the
// optional WAIT that makes a batch count only once replicas have it.
//
// A single Redis keeps its own faster connection (connection.ts).
import type { Cluster, Redis } from 'ioredis';
import { WalrelayError } from '../../relay/errors.js';
import { EXACTLY_ONCE_SCRIPT, exactlyOnceArguments, type StreamEntry } from './exactly-once.js';

/**
 * What the sink hands a topology, kept across retries: the entries still to
 * deliver (after a failed write, only those of the servers that failed) and
 * how many have been appended so far (exactly-once skips those already there).
 */
export interface PendingBatch {
  entries: StreamEntry[];
  appended: number;
}

export interface RedisTopology {
  /** Who walrelay talks to, for logs and /readyz ("redis cluster seeded by …"). */
  readonly description: string;
  readonly connected: boolean;
  ping(): Promise<void>;
  /** Delivers `batch.entries`; on failure leaves in it what must be sent again, and rejects. */
  write(batch: PendingBatch): Promise<void>;
  close(): void;
}

export interface WriteSettings {
  maxLen: number | undefined;
  /** The sink's timeoutSeconds, in ms: a pipeline not answered by then (plus the WAIT's own time) counts as failed. */
  timeoutMs: number;
  waitReplicas: number;
  waitTimeoutMs: number;
}

/**
 * One pipeline to one server: the XADDs (or exactly-once scripts, one per
 * checkpoint) and, with waitReplicas, a WAIT on the same connection, so it
 * covers exactly these writes. Resolves with the number of entries appended;
 * rejects on the first error reply or a WAIT that fell short.
 */
export async function writeGroup(client: Redis | Cluster, scripts: ScriptCall[] | null, entries: readonly StreamEntry[], settings: WriteSettings): Promise<number> {
  const pipeline = client.pipeline();
  if (scripts) {
    for (const call of scripts) pipeline.eval(EXACTLY_ONCE_SCRIPT, call.keys.length, ...call.keys, ...call.args);
  } else {
    const trim = settings.maxLen === undefined ? [] : ['MAXLEN', '~', String(settings.maxLen)];
    for (const entry of entries) pipeline.xadd(entry.stream, ...trim, '*', ...entry.fields);
  }
  if (settings.waitReplicas > 0) pipeline.call('WAIT', String(settings.waitReplicas), String(settings.waitTimeoutMs));
  // ioredis queues a pipeline without a deadline while it has no connection to send it on.
  const results = await within(pipeline.exec(), settings.timeoutMs + settings.waitTimeoutMs, 'a pipelined batch');
  if (!results) throw new Error('redis pipeline was discarded');
  for (const [error] of results) if (error) throw error;
  if (settings.waitReplicas > 0) {
    const acknowledged = Number(results[results.length - 1][1]);
    if (acknowledged < settings.waitReplicas) {
      throw new WalrelayError('REDIS_WAIT', `only ${acknowledged} of ${settings.waitReplicas} replicas acknowledged the batch within ${settings.waitTimeoutMs} ms`, {
        retriable: true,
        hint: 'walrelay sends the batch again (duplicates keep their id); check the replicas (INFO replication), or lower waitReplicas / raise waitTimeoutMs',
      });
    }
  }
  if (!scripts) return entries.length;
  return results.slice(0, scripts.length).reduce((sum, [, appended]) => sum + Number(appended), 0);
}

export interface ScriptCall {
  keys: string[];
  args: string[];
}

/** The exactly-once script call appending `entries` after the checkpoint in `checkpointKey` (all keys must share a slot in a cluster). */
export function scriptCall(checkpointKey: string, entries: readonly StreamEntry[], maxLen: number | undefined): ScriptCall {
  return exactlyOnceArguments(checkpointKey, entries, maxLen);
}

/** What both topologies are built from (the sink's config, resolved). */
export interface TopologyOptions extends WriteSettings {
  url: string;
  /** Exactly-once: the sink's checkpoint key (cluster mode derives one per stream from it); null for at-least-once. */
  checkpointKey: string | null;
}

/**
 * A PING that gives up after `timeoutMs`: while ioredis has no node (or no
 * master) to send to, it queues commands without a deadline, and the sink's
 * start and idle probe must not wait forever.
 */
export async function pingWithin(ping: () => Promise<unknown>, timeoutMs: number, description: string): Promise<void> {
  await within(ping(), timeoutMs, `${description}: a PING`);
}

function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WalrelayError('REDIS_TIMEOUT', `${what} was not answered within ${timeoutMs / 1000} s`, {
      retriable: true,
      hint: 'walrelay keeps trying; check that the nodes (or sentinels) in the config are reachable, or raise timeoutSeconds',
    })), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** user:password and TLS from the sink's url, as a single Redis takes them. */
export function credentialsOf(url: URL): { username?: string; password?: string; tls?: object } {
  return {
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    tls: url.protocol === 'rediss:' ? {} : undefined,
  };
}
