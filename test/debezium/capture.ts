// Reads every entry of Debezium-layout Redis streams: field = key JSON, value = value JSON.
import type { Redis } from 'ioredis';

export interface StreamEntry {
  stream: string;
  key: string;
  value: string;
}

/** Entries of the given streams, each stream in its order. */
export async function readDebeziumStreams(redis: Redis, streams: string[]): Promise<StreamEntry[]> {
  const entries: StreamEntry[] = [];
  for (const stream of streams) {
    const rows = (await redis.xrange(stream, '-', '+')) as [string, string[]][];
    for (const [, fields] of rows) {
      for (let i = 0; i < fields.length; i += 2) entries.push({ stream, key: fields[i], value: fields[i + 1] });
    }
  }
  return entries;
}

/** Number of entries per stream. */
export async function streamLengths(redis: Redis, streams: string[]): Promise<number[]> {
  return Promise.all(streams.map((stream) => redis.xlen(stream)));
}
