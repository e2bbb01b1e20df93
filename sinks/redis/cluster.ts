// Redis Cluster (`cluster: true`): the sink's url is one seed node; ioredis's
// Cluster learns the slot map from it (CLUSTER SLOTS), follows MOVED and ASK,
// waits out TRYAGAIN and CLUSTERDOWN, and refreshes the map after a failover.
// walrelay groups each batch by the master that owns each stream's slot and
// sends one pipeline per master, all at once; within a pipeline a stream's
// XADDs keep their order, so per-stream (per-table) order holds.
//
// A failed group (a master killed, a failover in progress) is sent again, with
// backoff, to whoever owns its slots then; the other groups are not re-sent.
// Every node learned from the slot map becomes a seed, because the configured
// seed may be the master that was killed.
//
// Exactly-once: a Lua script may touch keys of one slot only, so each stream
// has its own checkpoint key carrying the stream's hash tag
// (`<checkpointKey>:{<stream>}`), and each stream's part of a batch is one
// script call. See docs/redis-cluster.md.
import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import { WalrelayError, describeError } from '../../relay/errors.js';
import type { StreamEntry } from './exactly-once.js';
import { hashedPart, keySlot } from './key-slot.js';
import { credentialsOf, pingWithin, scriptCall, writeGroup, type PendingBatch, type RedisTopology, type ScriptCall, type TopologyOptions } from './topology.js';

interface Seed {
  host: string;
  port: number;
}

export class ClusterTopology implements RedisTopology {
  readonly description: string;
  private readonly cluster: Cluster;
  private readonly slots = new Map<string, number>();
  private readonly checkpoints = new Map<string, string>();
  private readonly seeds: Seed[];

  constructor(private readonly options: TopologyOptions, readonly logger: Logger, sink: string) {
    const url = new URL(options.url);
    const seed = { host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) };
    this.description = `redis cluster seeded by ${seed.host}:${seed.port}`;
    this.seeds = [seed];
    this.cluster = new Cluster(this.seeds, {
      redisOptions: {
        ...credentialsOf(url),
        connectTimeout: options.timeoutMs,
        // A hung node is noticed like a hung single Redis.
        commandTimeout: options.timeoutMs,
        // A WAIT re-sent on a new connection would count none of the writes made on the old one.
        autoResendUnfulfilledCommands: false,
        maxRetriesPerRequest: 2,
      },
      // Never give up on the cluster: the sink's retry loop decides, and logs.
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 200,
      maxRedirections: 16,
      slotsRefreshTimeout: options.timeoutMs,
      slotsRefreshInterval: 5000,
      enableReadyCheck: true,
    });
    this.cluster.on('error', (error) => logger.debug({ sink, err: describeError(error) }, 'redis cluster client error'));
    this.cluster.on('refresh', () => this.rememberNodes());
  }

  get connected(): boolean {
    return this.cluster.status === 'ready';
  }

  ping(): Promise<void> {
    return pingWithin(() => this.cluster.ping(), this.options.timeoutMs, this.description);
  }

  async write(batch: PendingBatch): Promise<void> {
    const groups = new Map<string, StreamEntry[]>();
    for (const entry of batch.entries) {
      const slot = this.slotOf(entry.stream);
      // ioredis sends a pipeline to one group of nodes (master and replicas); unknown slots go alone.
      const owners = this.cluster.slots[slot];
      const group = owners?.length ? owners.join(';') : `slot ${slot}`;
      let entries = groups.get(group);
      if (!entries) groups.set(group, entries = []);
      entries.push(entry);
    }
    const parts = [...groups.values()];
    const outcomes = await Promise.allSettled(parts.map((entries) => writeGroup(this.cluster, this.scriptsFor(entries), entries, this.options)));
    const failed: StreamEntry[] = [];
    let firstError: unknown;
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'fulfilled') batch.appended += outcome.value;
      else {
        failed.push(...parts[index]);
        firstError ??= outcome.reason;
      }
    });
    batch.entries = failed;
    if (failed.length > 0) {
      // A failover or a resharding may be under way: learn the new owners before the retry.
      this.cluster.refreshSlotsCache();
      throw firstError;
    }
  }

  /** Exactly-once: one script call per stream, each with the stream's own checkpoint (one slot per call). */
  private scriptsFor(entries: readonly StreamEntry[]): ScriptCall[] | null {
    if (this.options.checkpointKey === null) return null;
    const byStream = new Map<string, StreamEntry[]>();
    for (const entry of entries) {
      let list = byStream.get(entry.stream);
      if (!list) byStream.set(entry.stream, list = []);
      list.push(entry);
    }
    return [...byStream].map(([stream, list]) => scriptCall(this.checkpointOf(stream, this.options.checkpointKey!), list, this.options.maxLen));
  }

  private slotOf(stream: string): number {
    let slot = this.slots.get(stream);
    if (slot === undefined) this.slots.set(stream, slot = keySlot(stream));
    return slot;
  }

  /** `<checkpointKey>:{<stream>}`, or `<checkpointKey>:{<tag>}:<stream>` for a stream that has a hash tag: the stream's slot either way. */
  checkpointOf(stream: string, prefix: string): string {
    let key = this.checkpoints.get(stream);
    if (key !== undefined) return key;
    const tag = hashedPart(stream);
    key = tag === stream ? `${prefix}:{${stream}}` : `${prefix}:{${tag}}:${stream}`;
    if (keySlot(key) !== this.slotOf(stream)) {
      throw new WalrelayError('REDIS_CHECKPOINT_SLOT', `the exactly-once checkpoint ${JSON.stringify(key)} does not hash to the slot of stream ${JSON.stringify(stream)}`, {
        hint: 'in cluster mode each stream\'s checkpoint is <checkpointKey>:{<stream>}; keep "{" and "}" out of checkpointKey and the sink name, and out of stream names unless they form a hash tag such as "{orders}:events"',
      });
    }
    this.checkpoints.set(stream, key);
    return key;
  }

  /** Every node the slot map named is a seed from now on (ioredis reconnects from its seeds when it has lost every node). */
  private rememberNodes(): void {
    for (const node of this.cluster.nodes('all')) {
      const { host, port } = node.options;
      if (host && port && !this.seeds.some((seed) => seed.host === host && seed.port === port)) this.seeds.push({ host, port });
    }
    // ioredis reads its startup nodes on every full reconnect; the array is ours.
    (this.cluster as unknown as { startupNodes: Seed[] }).startupNodes = this.seeds;
  }

  close(): void {
    this.cluster.disconnect();
  }
}
