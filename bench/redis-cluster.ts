// npm run bench:redis-cluster [-- --events N]
// The Redis sink's own cost and speed, single Redis vs Redis Cluster, for the
// same workload: N change events of 6 tables (6 streams, spread over the
// cluster's 3 masters), written in batches of 500 as the pipeline hands them
// over (one batch at a time). Reports events/s and the relay process's CPU
// seconds per million events. No PostgreSQL: this isolates the sink
// (walrelay's own RESP connection for a single Redis, ioredis's Cluster for
// the cluster; docs/redis-cluster.md quotes the results).
import pino from 'pino';
import { startRedis } from '../test/harness/redis.js';
import { startRedisCluster } from '../test/harness/redis-cluster.js';
import { RedisSink } from '../sinks/redis/index.js';
import { redisSinkSchema } from '../config/schema.js';
import type { ChangeEvent } from '../relay/route/event.js';

const argIndex = process.argv.indexOf('--events');
const EVENTS = argIndex > 0 ? Number(process.argv[argIndex + 1]) : 200_000;
const BATCH = 500;
const logger = pino({ level: 'silent' });

function events(count: number, offset: number): ChangeEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const n = offset + i;
    return {
      id: `${(0x1000000 + n).toString(16).padStart(16, '0')}-${String(0).padStart(10, '0')}`,
      op: 'insert', schema: 'public', table: `t${n % 6}`,
      key: { id: n }, new: { id: n, status: 'paid', amount: '12.50', note: `row ${n} of the benchmark` }, old: null,
      lsn: '0/16B3748', commitLsn: '0/16B37A0', xid: 771 + n, commitTime: '2026-11-22T10:00:00.123456Z',
    };
  });
}

async function measure(label: string, config: Record<string, unknown>): Promise<string> {
  const sink = new RedisSink(redisSinkSchema.parse({ type: 'redis', ...config }), 0, logger, { slot: 'bench' });
  await sink.start();
  await sink.write(events(BATCH, 0)); // connections and slot map warm
  const batches = Array.from({ length: EVENTS / BATCH }, (_, b) => events(BATCH, BATCH * (b + 1)));
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (const batch of batches) await sink.write(batch);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  await sink.close();
  const row = `| ${label} | ${EVENTS.toLocaleString('en')} | ${Math.round(EVENTS / seconds).toLocaleString('en')} | ${(((used.user + used.system) / 1e6 / EVENTS) * 1e6).toFixed(1)} |`;
  console.log(row);
  return row;
}

const single = await startRedis();
const cluster = await startRedisCluster();
try {
  console.log('| sink | events | events/s | sink CPU s per million events |');
  console.log('|---|---|---|---|');
  await measure('single Redis (own RESP connection)', { url: single.url, stream: 'single:{schema}.{table}' });
  await measure('Redis Cluster, 3 masters (ioredis Cluster)', { url: cluster.url, cluster: true, stream: 'cluster:{schema}.{table}' });
  await measure('Redis Cluster, waitReplicas: 1', { url: cluster.url, cluster: true, waitReplicas: 1, stream: 'wait:{schema}.{table}' });
  await measure('single Redis, exactlyOnce', { url: single.url, exactlyOnce: true, stream: 'single-eo:{schema}.{table}' });
  await measure('Redis Cluster, exactlyOnce', { url: cluster.url, cluster: true, exactlyOnce: true, stream: 'cluster-eo:{schema}.{table}' });
} finally {
  await Promise.all([single.stop(), cluster.stop()]);
}
process.exit(0);
