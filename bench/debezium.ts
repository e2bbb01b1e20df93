// Debezium Server 3.6.1 (PostgreSQL connector → Redis sink, JSON without
// schemas) as a measured peer on the same backlog, from its own slot: the
// time from starting the JVM until every event is in its Redis streams, its
// peak RSS and CPU seconds. Only when its distribution is cached
// (scripts/debezium-server.sh) and Java 21+ is present.
import type { Redis } from 'ioredis';
import { debeziumAvailable, startDebezium } from '../test/harness/debezium.js';
import { processFigures } from './consumers.js';

export { debeziumAvailable };

export interface PeerMeasurement {
  seconds: number;
  peakRssMb: number;
  cpuSeconds: number;
}

/** Drains the backlog of `table` from `slot` (created before the backlog was written) into Redis. */
export async function runDebeziumServer(options: { postgresUrl: string; redisUrl: string; redis: Redis; slot: string; publication: string; table: string; events: number }): Promise<PeerMeasurement> {
  const prefix = `dbzbench_${options.slot}`;
  const stream = `${prefix}.${options.table}`;
  const started = performance.now();
  const server = await startDebezium({
    postgresUrl: options.postgresUrl,
    redisUrl: options.redisUrl,
    topicPrefix: prefix,
    slot: options.slot,
    publication: options.publication,
    tables: [options.table],
    extra: { 'debezium.source.publication.autocreate.mode': 'disabled', 'quarkus.log.level': 'WARN' },
  });
  let figures = { peakRssMb: 0, cpuSeconds: 0 };
  try {
    // Done when every event is there and nothing more arrives for a second (deletes add
    // tombstones, so the entry count is not known beforehand); the time is that of the last growth.
    const deadline = Date.now() + 900_000;
    let length = 0;
    let grewAt = performance.now();
    while (Date.now() < deadline) {
      figures = processFigures(server.pid);
      const now = await options.redis.xlen(stream);
      if (now !== length) {
        length = now;
        grewAt = performance.now();
      } else if (length >= options.events && performance.now() - grewAt > 1000) {
        return { seconds: (grewAt - started) / 1000, ...figures };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`Debezium Server wrote ${length} of ${options.events} events to ${stream} within 15 minutes`);
  } finally {
    await server.stop();
    await options.redis.del(stream);
  }
}
