// The Redis client of the edge feed, on both sides (the relay's feed sink
// writes, edges read). ioredis rather than the sink's hand-made connection:
// the feed is one stream, written in batches, and edges need XREAD BLOCK.
// With cluster: true the whole feed is one key, hence one slot on one shard.
import { Redis, Cluster } from 'ioredis';
import { credentialsOf } from '../redis/topology.js';

export type FeedRedis = Redis | Cluster;

export function feedRedisClient(settings: { url: string; cluster: boolean; password?: string }, timeoutMs: number, options: { blocking?: boolean } = {}): FeedRedis {
  const url = new URL(settings.url);
  const common = {
    ...credentialsOf(url),
    ...(settings.password === undefined ? {} : { password: settings.password }),
    connectTimeout: timeoutMs,
    // An XREAD BLOCK is silent for its whole block time by design: no command timeout on the reading client.
    commandTimeout: options.blocking ? undefined : timeoutMs,
    maxRetriesPerRequest: 2,
    lazyConnect: true,
  };
  if (settings.cluster) {
    return new Cluster([{ host: url.hostname || '127.0.0.1', port: Number(url.port || 6379) }], {
      redisOptions: common,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      retryDelayOnFailover: 200,
      lazyConnect: true,
    });
  }
  return new Redis({ ...common, host: url.hostname || '127.0.0.1', port: Number(url.port || 6379), db: Number(url.pathname.slice(1) || 0), retryStrategy: (times) => Math.min(100 * times, 2000) });
}
