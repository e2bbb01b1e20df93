// The configuration file (contract section 2). Every object is strict: an
// unknown key is an error naming its path, so that a typo never silently
// falls back to a default.
import { z } from 'zod';
import { deadLetterIssues } from './dead-letter-check.js';
import { parseSourceUrl } from '../relay/source/hosts.js';
import { columnPattern, identifier, port, positiveInt, serverTimeoutSeconds, tableName } from './schema-parts.js';
import { feedTransport, type feedSinkSchema, type kafkaSinkSchema, type natsSinkSchema, type rabbitmqSinkSchema, type redisSinkSchema, sinkSchema, type stdoutSinkSchema, type webhookSinkSchema, websocketSinkSchema } from './sink-schemas.js';

export * from './sink-schemas.js';

/** Outbox tables turned into domain events; column names default to Debezium's. */
const outboxSchema = z.strictObject({
  table: tableName.describe("The outbox table (schema.table)"),
  columns: z.strictObject({
    id: z.string().default('id'),
    aggregatetype: z.string().default('aggregatetype'),
    aggregateid: z.string().default('aggregateid'),
    type: z.string().default('type'),
    payload: z.string().default('payload'),
    timestamp: z.string().optional(),
  }).default({ id: 'id', aggregatetype: 'aggregatetype', aggregateid: 'aggregateid', type: 'type', payload: 'payload' }),
  destination: z.string().min(1).default('outbox.event.{aggregatetype}').describe("Stream, topic or subject of the domain events, with {aggregatetype} (and the outbox columns) as placeholders"),
});

/** Transactional logical messages routed by prefix. */
const messageRouteSchema = z.strictObject({
  prefix: z.string().min(1).describe("Prefix of the pg_logical_emit_message messages this route takes"),
  destination: z.string().min(1).describe("Stream, topic or subject the messages go to; {prefix} is a placeholder"),
});

/** `walrelay edge -c FILE`: websocket sinks served from a feed, no PostgreSQL (docs/edges.md). */
const POSTGRES_URL = /^postgres(ql)?:\/\//;

/** The one message for every way pipeline.dispatchWindowMs can be wrong (type, fraction, range). */
const WINDOW_MS = 'expected a whole number of milliseconds from 0 to 1000';

export const edgeConfigSchema = z.strictObject({
  feed: z.strictObject({
    ...feedTransport,
    name: z.string().min(1).default('walrelay.feed').describe('The stream or topic the relay\'s feed sink writes'),
    catchUpReads: positiveInt.default(8)
      .describe('Feed reads for clients resuming from further back than the ring that run at once on this edge; more wait their turn (after an edge dies, its clients reconnect to the others together)'),
  }).describe('The relay\'s feed sink to read'),
  sinks: z.array(websocketSinkSchema, { error: 'expected an array of websocket sinks' }).min(1, { error: 'expected at least one websocket sink' })
    .describe('The websocket sinks this edge serves (every key of the relay\'s websocket sink)'),
  http: z.strictObject({ host: z.string().default('127.0.0.1'), port: port }).optional()
    .describe('/healthz, /readyz (feed connected) and /metrics'),
  log: z.strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  }).default({ level: 'info', format: 'auto' }),
}).superRefine((config, context) => {
  if ((config.feed.redis === undefined) === (config.feed.kafka === undefined)) context.addIssue({ code: 'custom', path: ['feed'], message: 'expected exactly one of redis or kafka' });
});

export const configSchema = z.strictObject({
  source: z.strictObject({
    url: z.string({ error: 'expected a postgres:// URL (or set DATABASE_URL)' }).regex(POSTGRES_URL, { error: 'expected a postgres:// URL' })
      .describe('PostgreSQL to read from: postgres://USER:PASSWORD@HOST:PORT/DB, or libpq\'s multi-host form postgres://USER:PASSWORD@HOST1:PORT1,HOST2:PORT2/DB (IPv6 in brackets); walrelay reads from the first listed host that is a primary and moves on when it fails (docs/failover.md).'),
    slot: identifier.default('walrelay').describe("Replication slot (pgoutput) that walrelay creates and reads"),
    publication: identifier.default('walrelay').describe("Publication that selects the tables"),
    tables: z.array(tableName, { error: 'expected an array of schema.table names' }).min(1).optional().describe("Tables of the publication when walrelay creates it; omitted = ALL TABLES"),
    snapshot: z.enum(['never', 'initial'], { error: 'expected never or initial' }).default('never').describe("initial: setup emits the existing rows as op read events before streaming"),
    publishViaPartitionRoot: z.boolean().default(false).describe("Publish changes of partitions under the partitioned (root) table's name."),
    statusIntervalSeconds: z.number().positive().default(10).describe('Seconds between standby status updates sent to PostgreSQL.'),
    timeoutSeconds: serverTimeoutSeconds.describe('Silence from PostgreSQL longer than this (no data, no answer to a keepalive request) ends the connection; walrelay reconnects.'),
    onSlotLost: z.enum(['fail', 'recreate'], { error: 'expected fail or recreate' }).default('fail').describe('An invalidated (wal_status lost) or dropped slot: stop, or recreate it, send a gap event and re-snapshot.'),
    failoverSlot: z.union([z.literal('auto'), z.boolean()], { error: 'expected auto, true or false' }).default('auto')
      .describe('Create (or turn on) the slot with PostgreSQL 17+\'s FAILOVER option, so that a standby with sync_replication_slots keeps it across a promotion. auto: true on PostgreSQL 17+, false before; true on 14-16 is an error.'),
    slotHealthIntervalSeconds: z.number().positive().default(5).describe("Seconds between reads of the slot's retained WAL and wal_status (metrics)."),
  }),
  sinks: z.array(sinkSchema, { error: 'expected an array of sinks' }).min(1, { error: 'expected at least one sink' }),
  // Measured (bench/OPTIMISATIONS.md): small batches keep fewer events alive between garbage
  // collections; eight of them out at once let the relay keep reading the replication socket while
  // a sink answers (batches queued behind a write are merged into the next one).
  pipeline: z.strictObject({
    batchEvents: positiveInt.default(500).describe("Events per batch handed to the sinks"),
    batchBytes: positiveInt.default(131_072).describe("Or fewer, once their pgoutput messages reach this many bytes"),
    inFlightBatches: positiveInt.default(8).describe("Batches out at once; beyond this the replication socket is paused (backpressure)"),
    drainTimeoutSeconds: z.number({ error: 'expected a positive number of seconds' }).positive({ error: 'expected a positive number of seconds' }).default(30).describe("On SIGTERM, how long to wait for the sinks to acknowledge what is in flight"),
    dispatchWindowMs: z.number({ error: WINDOW_MS }).int({ error: WINDOW_MS }).min(0, { error: WINDOW_MS }).max(1000, { error: WINDOW_MS }).default(5)
      .describe("Under a live feed, a batch goes out at most this often (unless full; a feed that brings over 100 events in a window gets a shorter one): larger costs less CPU per event (fewer sink writes and wake-ups), smaller adds less latency; 0 sends each read's changes at once; at most 1000"),
  }).default({ batchEvents: 500, batchBytes: 131_072, inFlightBatches: 8, drainTimeoutSeconds: 30, dispatchWindowMs: 5 }),
  backfill: z.strictObject({
    stateFile: z.string({ error: 'expected a file path' }).min(1).default('walrelay-backfill.json').describe('Progress of `walrelay backfill`; relative paths are relative to the configuration file.'),
  }).default({ stateFile: 'walrelay-backfill.json' }),
  http: z.strictObject({
    host: z.string().default('127.0.0.1').describe("Address of /healthz, /readyz and /metrics; 0.0.0.0 inside a container"),
    port: port.describe("TCP port of /healthz, /readyz and /metrics; omitted http = no HTTP server"),
  }).optional(),
  log: z.strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe("Log level (or WALRELAY_LOG_LEVEL)"),
    format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('auto: one readable line per entry when stderr is a terminal, JSON lines otherwise (or WALRELAY_LOG_FORMAT)'),
  }).default({ level: 'info', format: 'auto' }),
  columnHashKey: z.string().min(1).optional().describe('Key of the columns "hash" policy (or WALRELAY_COLUMN_HASH_KEY).'),
  outbox: z.array(outboxSchema, { error: 'expected an array of outbox tables' }).optional().describe("Outbox tables whose rows become domain events (docs/domain-events.md)"),
  messages: z.array(messageRouteSchema, { error: 'expected an array of { prefix, destination }' }).optional().describe("Logical messages routed by prefix to their own destinations (docs/domain-events.md)"),
}).superRefine((config, context) => {
  try {
    if (POSTGRES_URL.test(config.source.url)) parseSourceUrl(config.source.url); // else the field's own check said it
  } catch (error) {
    context.addIssue({ code: 'custom', path: ['source', 'url'], message: (error as Error).message.replace(/^source\.url: /, '') });
  }
  config.messages?.forEach((route, index) => {
    for (const [, name] of route.destination.matchAll(/\{([^{}]+)\}/g)) {
      if (name !== 'prefix') context.addIssue({ code: 'custom', path: ['messages', index, 'destination'], message: `{${name}} is not available: a message destination may use {prefix}` });
    }
  });
  checkCheckpointIdentities(config, context);
  config.sinks.forEach((sink, index) => {
    if (sink.type === 'feed' && (sink.redis === undefined) === (sink.kafka === undefined)) context.addIssue({ code: 'custom', path: ['sinks', index], message: 'a feed sink needs exactly one of redis or kafka' });
    if (sink.type === 'redis') redisTopologyIssues(sink).forEach((issue) => context.addIssue({ code: 'custom', path: ['sinks', index, ...issue.path], message: issue.message }));
    for (const pattern of Object.keys(sink.columns ?? {})) {
      if (!columnPattern.test(pattern)) context.addIssue({ code: 'custom', path: ['sinks', index, 'columns', pattern], message: 'expected a column pattern of the form schema.table.column ("*" allowed in each part)' });
    }
    if (sink.type === 'redis' && (sink.waitReplicas !== undefined || sink.waitAof !== undefined) && sink.waitTimeoutMs >= sink.timeoutSeconds * 1000) {
      // WAIT is silent until it returns: longer than the reply timeout and the connection would be dropped as hung.
      context.addIssue({ code: 'custom', path: ['sinks', index, 'waitTimeoutMs'], message: `must be below timeoutSeconds (${sink.timeoutSeconds} s): Redis sends nothing while WAIT blocks` });
    }
    if (!config.columnHashKey && Object.values(sink.columns ?? {}).includes('hash')) {
      context.addIssue({ code: 'custom', path: ['sinks', index, 'columns'], message: 'a hash policy needs a key: set columnHashKey (or WALRELAY_COLUMN_HASH_KEY)' });
    }
  });
  for (const issue of deadLetterIssues(config.sinks)) context.addIssue({ code: 'custom', ...issue });
});

/**
 * The name of an exactly-once sink's checkpoint: the Redis key holding its
 * last event id, or the Kafka transactional id (which also keys its record in
 * the checkpoint topic). Built from what the operator named, never from the
 * sink's position in the list (docs/sinks/redis.md, "Checkpoint identity").
 */
export function checkpointIdentity(sink: { type: 'redis'; name?: string; checkpointKey?: string } | { type: 'kafka'; name?: string; transactionalId?: string }, slot: string): string | undefined {
  if (sink.type === 'redis') return sink.checkpointKey ?? (sink.name === undefined ? undefined : `walrelay:checkpoint:${slot}:${sink.name}`);
  return sink.transactionalId ?? (sink.name === undefined ? undefined : `walrelay-${slot}-${sink.name}`);
}

/** Every exactly-once sink has a checkpoint of its own: named, and shared with no other sink. */
function checkCheckpointIdentities(config: { source: { slot: string }; sinks: readonly z.infer<typeof sinkSchema>[] }, context: z.RefinementCtx): void {
  const owners = new Map<string, number>();
  config.sinks.forEach((sink, index) => {
    if ((sink.type !== 'redis' && sink.type !== 'kafka') || !sink.exactlyOnce) return;
    const explicitKey = sink.type === 'redis' ? 'checkpointKey' : 'transactionalId';
    const identity = checkpointIdentity(sink, config.source.slot);
    if (identity === undefined) {
      context.addIssue({
        code: 'custom', path: ['sinks', index, 'name'],
        message: `an exactly-once sink needs a name: its checkpoint is named after it, and a position such as ${sink.type}#${index} moves when sinks are added or reordered (or set ${explicitKey}); docs/sinks/redis.md`,
      });
      return;
    }
    // Kafka transactional ids and Redis keys live in different places: only the same kind can collide.
    const scoped = `${sink.type}\u0000${identity}`;
    const owner = owners.get(scoped);
    if (owner !== undefined) {
      const explicit = sink.type === 'redis' ? sink.checkpointKey !== undefined : sink.transactionalId !== undefined;
      context.addIssue({
        code: 'custom', path: ['sinks', index, explicit ? explicitKey : 'name'],
        message: `this sink would share the exactly-once checkpoint ${identity} with sinks[${owner}], and each would skip what the other wrote; give each sink its own name${explicit ? ` or ${explicitKey}` : ''}`,
      });
      return;
    }
    owners.set(scoped, index);
  });
}

/** Cluster and sentinel exclude each other; a cluster has one database only. */
function redisTopologyIssues(sink: z.infer<typeof redisSinkSchema>): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  if (sink.cluster && sink.sentinel) issues.push({ path: ['sentinel'], message: 'cluster: true and sentinel exclude each other (a cluster fails over by itself)' });
  if (sink.cluster && /^rediss?:\/\/[^/]*\/\d+/.test(sink.url) && !/^rediss?:\/\/[^/]*\/0?$/.test(sink.url)) issues.push({ path: ['url'], message: 'Redis Cluster has database 0 only: remove the /db path' });
  return issues;
}

export type Config = z.infer<typeof configSchema>;
export type SinkConfig = z.infer<typeof sinkSchema>;
export type RedisSinkConfig = z.infer<typeof redisSinkSchema>;
export type KafkaSinkConfig = z.infer<typeof kafkaSinkSchema>;
export type StdoutSinkConfig = z.infer<typeof stdoutSinkSchema>;
export type WebsocketSinkConfig = z.infer<typeof websocketSinkSchema>;
export type WebhookSinkConfig = z.infer<typeof webhookSinkSchema>;
export type NatsSinkConfig = z.infer<typeof natsSinkSchema>;
export type RabbitmqSinkConfig = z.infer<typeof rabbitmqSinkSchema>;
export type FeedSinkConfig = z.infer<typeof feedSinkSchema>;
export type EdgeConfig = z.infer<typeof edgeConfigSchema>;
