// `walrelay edge` (docs/edges.md): websocket sinks served from the relay's
// feed instead of from PostgreSQL. No database connection, no slot: edges
// are added and removed behind a load balancer without the relay knowing.
// Each sink takes the feed's events through a SinkRoute, as in the relay,
// so its `tables` and `schemaEvents` select the same events.
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { EdgeConfig } from '../../config/schema.js';
import { WebsocketSink } from '../../sinks/websocket/index.js';
import { SinkRoute } from '../route/sink-route.js';
import { Metrics } from '../ops/metrics.js';
import { startHttp } from '../ops/http.js';
import { originOf, type ChangeEvent } from '../route/event.js';
import { RedisFeedReader, type FeedReader } from './feed-reader.js';
import { KafkaFeedReader } from './kafka-feed-reader.js';
import { ReadLimit } from './read-limit.js';
import { describeError } from '../errors.js';
import type { ResumeStore } from '../../sinks/websocket/protocols/realtime/resume-store.js';
import { RedisResumeStore } from '../../sinks/feed/redis-resume-store.js';
import { KafkaResumeStore } from '../../sinks/feed/kafka-resume-store.js';
import { feedRedisClient } from '../../sinks/feed/redis-client.js';

export interface RunningEdge {
  sinks: WebsocketSink[];
  http: Server | null;
  stop(): Promise<void>;
}

export async function startEdge(config: EdgeConfig, logger: Logger): Promise<RunningEdge> {
  const metrics = new Metrics();
  const feedEvents = new Counter({ name: 'walrelay_edge_feed_events_total', help: 'Events this edge read from the feed and handed to its websocket sinks', registers: [metrics.registry] });
  const lagMs = new Gauge({ name: 'walrelay_edge_feed_lag_ms', help: 'Now minus the commit time of the newest event read from the feed (ms)', registers: [metrics.registry] });
  const lagEntries = new Gauge({ name: 'walrelay_edge_feed_lag_entries', help: 'Feed entries behind the feed\'s tail (capped at 10000)', registers: [metrics.registry] });
  const feedReady = new Gauge({ name: 'walrelay_edge_feed_ready', help: '1 while the edge reads its feed', registers: [metrics.registry] });

  const resumeStore = config.sinks.some((sink) => sink.supabase) ? await resumeStoreOf(config, logger) : undefined;
  let newestCommit: string | null = null;
  let warnedNoOrigins = false;
  const deliver = async (events: ChangeEvent[]): Promise<void> => {
    feedEvents.inc(events.length);
    if (debeziumSinks.length > 0 && !warnedNoOrigins && events.some((event) => event.op !== 'begin' && event.op !== 'commit' && !originOf(event))) {
      warnedNoOrigins = true;
      logger.warn({ feed: config.feed.name, sinks: debeziumSinks, code: 'FEED_WITHOUT_ORIGINS' }, 'edge: the feed\'s entries carry no Debezium origins, so format: debezium sends walrelay\'s values in Debezium\'s envelope, not the relay\'s frames; set debeziumOrigins: true on the relay\'s feed sink');
    }
    for (let at = events.length - 1; at >= 0; at--) if (events[at].commitTime) { newestCommit = events[at].commitTime; break; }
    // A websocket sink's failure concerns that sink alone (as in the relay): logged, never stops the edge.
    await Promise.all(routes.map((route) => route.deliver(events)?.catch((error: Error) => logger.warn({ sink: route.sink.name, err: error.message }, 'edge: websocket sink write failed'))));
  };
  const reader: FeedReader = config.feed.redis
    ? new RedisFeedReader({ redis: config.feed.redis, name: config.feed.name }, logger, deliver)
    : new KafkaFeedReader({ kafka: config.feed.kafka!, name: config.feed.name }, logger, deliver);
  // A client resuming from further back than a sink's ring is caught up from the feed, through the sink's own route.
  const catchUpHistory = new ReadLimit(config.feed.catchUpReads).limit(reader.history);
  const sinks: WebsocketSink[] = config.sinks.map((sinkConfig, index) => new WebsocketSink(sinkConfig, index, logger, {
    slot: 'edge', resumeStore,
    feedHistory: { open: (afterId) => catchUpHistory.open(afterId), accepts: (event) => routes[index].takes(event) },
  }));
  const routes = config.sinks.map((sinkConfig, index) => new SinkRoute(sinks[index], sinkConfig.tables, metrics).withSchemaEvents(sinkConfig.schemaEvents));
  const debeziumSinks = sinks.filter((_, index) => config.sinks[index].format === 'debezium').map((sink) => sink.name);
  const stops: (() => Promise<unknown>)[] = [];
  let http: Server | null = null;
  try {
    for (const sink of sinks) {
      await sink.start();
      stops.push(() => sink.close());
    }
    if (config.http) {
      http = await startHttp(config.http.host, config.http.port, metrics, {
        ready: () => {
          const reasons = [...(reader.ready ? [] : [reader.notReadyReason ?? 'feed not connected']), ...sinks.filter((sink) => !sink.isReady()).map((sink) => `${sink.name} not listening`)];
          return { ready: reasons.length === 0, reasons };
        },
      });
      stops.push(() => new Promise((resolve) => http!.close(resolve)));
    }
    await reader.start(Math.max(...config.sinks.map((sink) => sink.ringSize)));
    stops.unshift(() => reader.stop());
  } catch (error) {
    await reader.stop();
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await resumeStore?.close();
    throw error;
  }
  const timer = setInterval(() => {
    feedReady.set(reader.ready ? 1 : 0);
    for (const sink of sinks) metrics.observeClients(sink.name, sink.clientStats());
    if (newestCommit) lagMs.set(Math.max(0, Date.now() - Date.parse(newestCommit)));
    reader.entriesBehind().then((count) => lagEntries.set(count), () => undefined);
  }, 1000);
  timer.unref();
  logger.info({ feed: config.feed.name, sinks: sinks.map((sink) => `${sink.name}:${sink.port}`) }, 'edge started');
  return {
    sinks, http,
    async stop() {
      clearInterval(timer);
      for (const stop of stops) await stop().catch(() => undefined);
      await resumeStore?.close().catch(() => undefined); // last: closing the sinks saved the points of the sockets they ended
    },
  };
}

/**
 * Where the edges of one feed share the resume points of Realtime clients
 * named with walrelay_client: the feed's Redis, or a compacted topic beside
 * the Kafka feed (docs/edges.md).
 */
async function resumeStoreOf(config: EdgeConfig, logger: Logger): Promise<ResumeStore> {
  const { redis, kafka, name } = config.feed;
  if (redis) {
    const client = feedRedisClient(redis, 10_000);
    client.on('error', (error) => logger.debug({ err: describeError(error) }, 'resume store redis client error'));
    // Connected before the edge serves, so the first clients' points are saved as fast as later ones (retried by each save otherwise).
    await client.connect().catch((error: Error) => logger.warn({ err: describeError(error) }, 'edge: the feed\'s Redis is not reachable yet for walrelay_client resume points'));
    return new RedisResumeStore(client, name);
  }
  const windowMs = Math.max(...config.sinks.map((sink) => sink.resumeWindowSeconds)) * 1000;
  const store = new KafkaResumeStore({ ...kafka!, feed: name, windowMs }, logger);
  await store.start();
  return store;
}
