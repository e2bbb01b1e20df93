// The configuration file (contract section 2). Every object is strict: an
// unknown key is an error naming its path, so that a typo never silently
// falls back to a default.
import { z } from 'zod';

const tablePattern = z.string({ error: 'expected a table pattern such as "public.orders", "public.*" or "*.audit_log"' })
  .regex(/^[^.\s]+\.[^.\s]+$/, { error: 'expected a table pattern of the form schema.table ("*" allowed on either side)' });

const tableName = z.string({ error: 'expected a table name such as "public.orders"' })
  .regex(/^[^.\s*]+\.[^.\s*]+$/, { error: 'expected a table name of the form schema.table' });

const identifier = z.string({ error: 'expected a PostgreSQL identifier' })
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: 'expected a lower-case identifier (letters, digits, _; at most 63 characters)' });

const port = z.number({ error: 'expected a TCP port number' }).int().min(0).max(65535);
const positiveInt = z.number({ error: 'expected a positive integer' }).int().positive();
const hostPort = z.string().regex(/^[^\s:]+:\d+$/);

/** How long a server may stay silent before walrelay counts it as hung (logs, /readyz 503, reconnects, retries). */
const serverTimeoutSeconds = z.number({ error: 'expected a number of seconds' }).positive({ error: 'expected a positive number of seconds' }).default(30);

const format = z.enum(['walrelay', 'debezium', 'cloudevents'], { error: 'expected one of walrelay, debezium, cloudevents' });

/** Debezium's knobs for format: debezium (README "Moving from Debezium"), with Debezium's defaults. */
const debeziumKnobs = z.strictObject({
  decimalHandlingMode: z.enum(['precise', 'string', 'double'], { error: 'expected precise, string or double' }).default('precise'),
  timePrecisionMode: z.enum(['adaptive', 'adaptive_time_microseconds', 'connect'], { error: 'expected adaptive, adaptive_time_microseconds or connect' }).default('adaptive'),
  tombstonesOnDelete: z.boolean({ error: 'expected true or false' }).default(true),
  topicPrefix: z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'expected a topic prefix of letters, digits, ".", "_" and "-"' }).default('walrelay'),
  schemas: z.boolean({ error: 'expected true or false' }).default(false)
    .describe('Write each key and value as Kafka Connect\'s JsonConverter does with schemas.enable=true: {"schema": …, "payload": …}, the schemas the Debezium PostgreSQL connector declares (docs/debezium.md "From Kafka Connect"). For Kafka Connect sink connectors such as Debezium\'s JDBC sink.'),
});

/** Keys of a sink's `columns` (checked below: a record's key error would not say what was expected). */
const columnPattern = /^[^.\s]+\.[^.\s]+\.[^.\s]+$/;

const sinkCommon = {
  name: z.string().optional(),
  tables: z.array(tablePattern, { error: 'expected an array of table patterns' }).optional(),
  format: format.default('walrelay'),
  debezium: debeziumKnobs.optional(),
  /** Column policies (relay/stages/column-policy.ts). */
  columns: z.record(z.string(), z.enum(['drop', 'hash', 'mask'], { error: 'expected drop, hash or mask' })).optional(),
  /** op "begin" / "commit" events around each transaction (relay/stages/transaction-events.ts). */
  transactionEvents: z.boolean().default(false),
  /** Receive op "schema" events when a table's shape changes (relay/route/schema-event.ts). */
  schemaEvents: z.boolean({ error: 'expected true or false' }).default(false),
};

/** Outbox tables turned into domain events (relay/stages/outbox.ts); column names default to Debezium's. */
const outboxSchema = z.strictObject({
  table: tableName,
  columns: z.strictObject({
    id: z.string().default('id'),
    aggregatetype: z.string().default('aggregatetype'),
    aggregateid: z.string().default('aggregateid'),
    type: z.string().default('type'),
    payload: z.string().default('payload'),
    timestamp: z.string().optional(),
  }).default({ id: 'id', aggregatetype: 'aggregatetype', aggregateid: 'aggregateid', type: 'type', payload: 'payload' }),
  destination: z.string().min(1).default('outbox.event.{aggregatetype}'),
});

/** Transactional logical messages routed by prefix (relay/stages/message-routing.ts). */
const messageRouteSchema = z.strictObject({
  prefix: z.string().min(1),
  destination: z.string().min(1),
});

export const redisSinkSchema = z.strictObject({
  type: z.literal('redis'),
  ...sinkCommon,
  url: z.string({ error: 'expected a redis:// URL' }).regex(/^rediss?:\/\//, { error: 'expected a redis:// or rediss:// URL' }).default('redis://127.0.0.1:6379'),
  /** Default walrelay:{schema}.{table}; with format: debezium, <topicPrefix>.{schema}.{table} (sinks/redis/index.ts). */
  stream: z.string().optional(),
  /** Stream for pg_logical_emit_message events, which belong to no table (default walrelay:messages; debezium: <topicPrefix>.message). */
  messageStream: z.string().optional(),
  maxLen: positiveInt.optional(),
  /** Redis must answer a write (or the idle PING) within this many seconds. */
  timeoutSeconds: serverTimeoutSeconds,
  /** Each batch and the checkpoint in one atomic script: every event id once per stream, whatever crashes. */
  exactlyOnce: z.boolean({ error: 'expected true or false' }).default(false),
  /** Key of the exactly-once checkpoint (the last event id written); default walrelay:checkpoint:<slot>:<sink name>. */
  checkpointKey: z.string().min(1).optional(),
});

export const kafkaSinkSchema = z.strictObject({
  type: z.literal('kafka'),
  ...sinkCommon,
  brokers: z.array(hostPort, { error: 'expected an array of host:port strings' })
    .min(1, { error: 'expected an array of host:port strings' }),
  /** Default walrelay.{schema}.{table}; with format: debezium, <topicPrefix>.{schema}.{table} (sinks/kafka/index.ts). */
  topic: z.string().optional(),
  /** Default walrelay.messages; with format: debezium, <topicPrefix>.message. */
  messageTopic: z.string().optional(),
  clientId: z.string().default('walrelay'),
  /** Every request to a broker must be answered within this many seconds (the producer's request timeout). */
  timeoutSeconds: serverTimeoutSeconds,
  compression: z.enum(['none', 'gzip', 'lz4'], { error: 'expected none, gzip or lz4' }).default('none'),
  batch: z.strictObject({
    size: positiveInt.default(10000),
    lingerMs: z.number().int().min(0).default(0),
  }).default({ size: 10000, lingerMs: 0 }),
  ssl: z.strictObject({
    ca: z.string().optional(),
    cert: z.string().optional(),
    key: z.string().optional(),
    rejectUnauthorized: z.boolean().default(true),
  }).optional(),
  sasl: z.strictObject({
    mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512'], { error: 'expected plain, scram-sha-256 or scram-sha-512' }),
    username: z.string(),
    password: z.string(),
  }).optional(),
  createTopics: z.union([
    z.literal(false),
    z.strictObject({ partitions: positiveInt.default(3), replicationFactor: positiveInt.default(1) }),
  ]).default(false),
  /** Each batch and walrelay's checkpoint in one Kafka transaction: read_committed consumers see every change once. */
  exactlyOnce: z.boolean({ error: 'expected true or false' }).default(false),
  /** Transactional id of the exactly-once producer; default walrelay-<slot>-<sink name>. */
  transactionalId: z.string().min(1).optional(),
  /** Compacted topic holding each exactly-once sink's last committed event id (created when missing). */
  checkpointTopic: z.string().min(1).default('walrelay.checkpoints'),
  /** Experimental (benchmark): send through @platformatic/kafka instead of walrelay's own producer. */
  producer: z.enum(['own', 'platformatic'], { error: 'expected own or platformatic' }).default('own'),
});

export const stdoutSinkSchema = z.strictObject({
  type: z.literal('stdout'),
  ...sinkCommon,
});

const websocketAuth = z.union([
  z.literal('none'),
  // HS256 wants a key at least as long as its 256-bit hash (RFC 7518 3.2); a short one is guessable offline.
  z.strictObject({ jwtSecret: z.string().refine((secret) => Buffer.byteLength(secret) >= 32, { error: 'expected at least 32 bytes for HS256 (e.g. openssl rand -base64 32)' }) }),
  z.strictObject({ jwksUrl: z.string().url() }),
  z.strictObject({ publicKey: z.string().min(1), algorithm: z.enum(['RS256', 'ES256']).default('RS256') }),
], { error: 'expected auth: none, or an object with jwtSecret, jwksUrl or publicKey' });

export const websocketSinkSchema = z.strictObject({
  type: z.literal('websocket'),
  ...sinkCommon,
  host: z.string().default('127.0.0.1'),
  port: port.default(8080),
  path: z.string().startsWith('/').default('/'),
  auth: websocketAuth,
  tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
  /** Recent events kept for clients that reconnect with "since". */
  ringSize: z.number().int().min(0).default(10000),
  /** Frames queued for one client before it counts as unable to keep up. */
  maxClientQueue: positiveInt.default(1000),
  maxFrameBytes: positiveInt.default(65536),
  /** Static files served next to the socket (the demo page); omitted = none. */
  staticDir: z.string().optional(),
  /** Also speak Supabase Realtime (postgres_changes) on every path ending in /websocket. */
  supabase: z.boolean().default(false),
  /** How long a Realtime client that names itself (walrelay_client) may rejoin and still get what it missed. */
  resumeWindowSeconds: z.number().positive().default(120),
});

export const sinkSchema = z.discriminatedUnion('type', [redisSinkSchema, kafkaSinkSchema, stdoutSinkSchema, websocketSinkSchema], {
  error: 'expected a sink with type redis, kafka, stdout or websocket',
});

export const configSchema = z.strictObject({
  source: z.strictObject({
    url: z.string({ error: 'expected a postgres:// URL (or set DATABASE_URL)' }).regex(/^postgres(ql)?:\/\//, { error: 'expected a postgres:// URL' }),
    slot: identifier.default('walrelay'),
    publication: identifier.default('walrelay'),
    tables: z.array(tableName, { error: 'expected an array of schema.table names' }).min(1).optional(),
    snapshot: z.enum(['never', 'initial'], { error: 'expected never or initial' }).default('never'),
    /** Publish changes of partitions under the partitioned (root) table's name. */
    publishViaPartitionRoot: z.boolean().default(false),
    /** Seconds between standby status updates sent to PostgreSQL. */
    statusIntervalSeconds: z.number().positive().default(10),
    /** Silence from PostgreSQL longer than this (no data, no answer to a keepalive request) ends the connection; walrelay reconnects. */
    timeoutSeconds: serverTimeoutSeconds,
    /** An invalidated (wal_status lost) or dropped slot: stop, or recreate it, send a gap event and re-snapshot. */
    onSlotLost: z.enum(['fail', 'recreate'], { error: 'expected fail or recreate' }).default('fail'),
    /** Seconds between reads of the slot's retained WAL and wal_status (metrics). */
    slotHealthIntervalSeconds: z.number().positive().default(5),
  }),
  sinks: z.array(sinkSchema, { error: 'expected an array of sinks' }).min(1, { error: 'expected at least one sink' }),
  // Measured (bench/): small batches with few in flight keep fewer events alive between
  // garbage collections, which is both faster and smaller than deep pipelining.
  pipeline: z.strictObject({
    batchEvents: positiveInt.default(500),
    batchBytes: positiveInt.default(131_072),
    inFlightBatches: positiveInt.default(2),
    drainTimeoutSeconds: z.number().positive().default(30),
  }).default({ batchEvents: 500, batchBytes: 131_072, inFlightBatches: 2, drainTimeoutSeconds: 30 }),
  backfill: z.strictObject({
    /** Progress of `walrelay backfill`; relative paths are relative to the configuration file. */
    stateFile: z.string({ error: 'expected a file path' }).min(1).default('walrelay-backfill.json'),
  }).default({ stateFile: 'walrelay-backfill.json' }),
  http: z.strictObject({
    host: z.string().default('127.0.0.1'),
    port: port,
  }).optional(),
  log: z.strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  }).default({ level: 'info' }),
  /** Key of the columns "hash" policy (or WALRELAY_COLUMN_HASH_KEY). */
  columnHashKey: z.string().min(1).optional(),
  outbox: z.array(outboxSchema, { error: 'expected an array of outbox tables' }).optional(),
  messages: z.array(messageRouteSchema, { error: 'expected an array of { prefix, destination }' }).optional(),
}).superRefine((config, context) => {
  config.messages?.forEach((route, index) => {
    for (const [, name] of route.destination.matchAll(/\{([^{}]+)\}/g)) {
      if (name !== 'prefix') context.addIssue({ code: 'custom', path: ['messages', index, 'destination'], message: `{${name}} is not available: a message destination may use {prefix}` });
    }
  });
  config.sinks.forEach((sink, index) => {
    for (const pattern of Object.keys(sink.columns ?? {})) {
      if (!columnPattern.test(pattern)) context.addIssue({ code: 'custom', path: ['sinks', index, 'columns', pattern], message: 'expected a column pattern of the form schema.table.column ("*" allowed in each part)' });
    }
    if (!config.columnHashKey && Object.values(sink.columns ?? {}).includes('hash')) {
      context.addIssue({ code: 'custom', path: ['sinks', index, 'columns'], message: 'a hash policy needs a key: set columnHashKey (or WALRELAY_COLUMN_HASH_KEY)' });
    }
  });
});

export type Config = z.infer<typeof configSchema>;
export type SinkConfig = z.infer<typeof sinkSchema>;
export type RedisSinkConfig = z.infer<typeof redisSinkSchema>;
export type KafkaSinkConfig = z.infer<typeof kafkaSinkSchema>;
export type StdoutSinkConfig = z.infer<typeof stdoutSinkSchema>;
export type WebsocketSinkConfig = z.infer<typeof websocketSinkSchema>;
