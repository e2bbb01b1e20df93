// The configuration file (contract section 2). Every object is strict: an
// unknown key is an error naming its path, so that a typo never silently
// falls back to a default.
import { z } from 'zod';
import { isIP } from 'node:net';
import { deadLetterIssues } from './dead-letter-check.js';
import { parseSourceUrl } from '../relay/source/hosts.js';

const tablePattern = z.string({ error: 'expected a table pattern such as "public.orders", "public.*" or "*.audit_log"' })
  .regex(/^[^.\s]+\.[^.\s]+$/, { error: 'expected a table pattern of the form schema.table ("*" allowed on either side)' });

const tableName = z.string({ error: 'expected a table name such as "public.orders"' })
  .regex(/^[^.\s*]+\.[^.\s*]+$/, { error: 'expected a table name of the form schema.table' });

const identifier = z.string({ error: 'expected a PostgreSQL identifier' })
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: 'expected a lower-case identifier (letters, digits, _; at most 63 characters)' });

/** "10.0.0.1", "::1", "10.0.0.0/8", "fd00::/8". */
function isAddressOrSubnet(text: string): boolean {
  const [address, bits, extra] = text.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

const port = z.number({ error: 'expected a TCP port number' }).int().min(0).max(65535);
const positiveInt = z.number({ error: 'expected a positive integer' }).int().positive();
const hostPort = z.string().regex(/^[^\s:]+:\d+$/);

/** How long a server may stay silent before walrelay counts it as hung (logs, /readyz 503, reconnects, retries). */
const serverTimeoutSeconds = z.number({ error: 'expected a number of seconds' }).positive({ error: 'expected a positive number of seconds' }).default(30);

const format = z.enum(['walrelay', 'debezium', 'cloudevents'], { error: 'expected one of walrelay, debezium, cloudevents' });

/** Debezium's knobs for format: debezium (README "Moving from Debezium"), with Debezium's defaults. */
const debeziumKnobs = z.strictObject({
  decimalHandlingMode: z.enum(['precise', 'string', 'double'], { error: 'expected precise, string or double' }).default('precise').describe("Debezium's decimal.handling.mode: numeric as Connect Decimal bytes (precise), as a string, or as a double"),
  timePrecisionMode: z.enum(['adaptive', 'adaptive_time_microseconds', 'connect'], { error: 'expected adaptive, adaptive_time_microseconds or connect' }).default('adaptive').describe("Debezium's time.precision.mode"),
  tombstonesOnDelete: z.boolean({ error: 'expected true or false' }).default(true).describe("A delete is followed by a record with a null value (Kafka log compaction), as Debezium's tombstones.on.delete"),
  topicPrefix: z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'expected a topic prefix of letters, digits, ".", "_" and "-"' }).default('walrelay').describe("Debezium's topic.prefix: the first part of topic and schema names"),
  schemas: z.boolean({ error: 'expected true or false' }).default(false)
    .describe('Write each key and value as Kafka Connect\'s JsonConverter does with schemas.enable=true: {"schema": …, "payload": …}, the schemas the Debezium PostgreSQL connector declares (docs/debezium.md "From Kafka Connect"). For Kafka Connect sink connectors such as Debezium\'s JDBC sink.'),
});

/** Keys of a sink's `columns` (checked below: a record's key error would not say what was expected). */
const columnPattern = /^[^.\s]+\.[^.\s]+\.[^.\s]+$/;

const sinkCommon = {
  name: z.string().min(1).optional().describe('The sink\'s name in logs and metrics (default <type>#<position>). Required for exactlyOnce sinks without checkpointKey / transactionalId: their checkpoint is named after it, never after the position (docs/redis.md).'),
  tables: z.array(tablePattern, { error: 'expected an array of table patterns' }).optional().describe("Table patterns this sink receives (public.*, *.audit_log); omitted = every table, and messages"),
  format: format.default('walrelay').describe("Event format: walrelay (the change event), debezium (Debezium's JSON envelope, byte for byte) or cloudevents (CloudEvents 1.0 structured JSON)"),
  debezium: debeziumKnobs.optional().describe("Settings of format: debezium (docs/debezium.md)"),
  columns: z.record(z.string(), z.enum(['drop', 'hash', 'mask'], { error: 'expected drop, hash or mask' })).optional().describe('Column policies.'),
  transactionEvents: z.boolean().default(false).describe('op "begin" / "commit" events around each transaction.'),
  schemaEvents: z.boolean({ error: 'expected true or false' }).default(false).describe("Receive op \"schema\" events when a table's shape changes."),
};

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

export const redisSinkSchema = z.strictObject({
  type: z.literal('redis'),
  ...sinkCommon,
  url: z.string({ error: 'expected a redis:// URL' }).regex(/^rediss?:\/\//, { error: 'expected a redis:// or rediss:// URL' }).default('redis://127.0.0.1:6379').describe("redis:// (rediss:// for TLS), with user:password@ for ACLs and /db for a database"),
  password: z.string().min(1).optional().describe("Redis password (AUTH), instead of the URL's; passwordFile reads it from a file"),
  stream: z.string().optional().describe('Default walrelay:{schema}.{table}; with format: debezium, <topicPrefix>.{schema}.{table}.'),
  messageStream: z.string().optional().describe('Stream for pg_logical_emit_message events, which belong to no table (default walrelay:messages; debezium: <topicPrefix>.message).'),
  maxLen: positiveInt.optional().describe("XADD MAXLEN ~: trim each stream to about this many entries; omitted = no trim"),
  timeoutSeconds: serverTimeoutSeconds.describe('Redis must answer a write (or the idle PING) within this many seconds.'),
  exactlyOnce: z.boolean({ error: 'expected true or false' }).default(false).describe('Each batch and the checkpoint in one atomic script: every event id once per stream, whatever crashes.'),
  checkpointKey: z.string().min(1).optional().describe('Key of the exactly-once checkpoint (the last event id written); default walrelay:checkpoint:<slot>:<sink name>.'),
  cluster: z.boolean({ error: 'expected true or false' }).default(false)
    .describe('Redis Cluster: url names any seed node; walrelay learns the slot map and sends each stream to the master of its slot (docs/redis-cluster.md)'),
  sentinel: z.strictObject({
    masterName: z.string({ error: 'expected the master name the sentinels monitor' }).min(1)
      .describe('name of the monitored master (the name in "sentinel monitor <name> …")'),
    nodes: z.array(hostPort, { error: 'expected an array of host:port strings' }).min(1, { error: 'expected an array of host:port strings' })
      .describe('the sentinels, host:port; walrelay asks them which server is the master and follows it through failovers'),
    username: z.string().min(1).optional().describe('ACL user for the sentinels (the master\'s user and password come from url)'),
    password: z.string().min(1).optional().describe('password of the sentinels themselves (their requirepass)'),
  }).optional().describe('Redis Sentinel: follow the master the sentinels name; url supplies TLS (rediss://), the master\'s user:password and /db (docs/redis-cluster.md)'),
  waitReplicas: z.number({ error: 'expected a number of replicas' }).int({ error: 'expected a whole number of replicas' }).positive({ error: 'expected at least 1 replica' }).optional()
    .describe('After each batch, Redis WAIT: the batch counts as delivered (and its LSN may be confirmed) only once at least this many replicas acknowledged it; fewer within waitTimeoutMs and the batch is retried. Default: no WAIT (an ack means in the master\'s memory). See docs/redis.md.'),
  waitAof: z.strictObject({
    local: z.boolean({ error: 'expected true or false' }).default(true).describe('WAITAOF numlocal: the master has fsynced the batch to its append-only file (needs appendonly yes on the server).'),
    replicas: z.number({ error: 'expected a number of replicas' }).int().min(0, { error: 'expected 0 or more replicas' }).default(0).describe('WAITAOF numreplicas: this many replicas have fsynced the batch to their append-only file.'),
  }).optional()
    .describe('After each batch, Redis WAITAOF (Redis 7.2 or later): the batch counts as delivered only once it is fsynced to the append-only file locally and/or on replicas; a server without WAITAOF is refused at start (REDIS_WAITAOF_UNSUPPORTED). See docs/redis.md.'),
  waitTimeoutMs: z.number({ error: 'expected milliseconds' }).int().positive().default(1000)
    .describe('How long one WAIT / WAITAOF may block before walrelay counts the batch as not yet durable and retries; must be below timeoutSeconds.'),
});

export const kafkaSinkSchema = z.strictObject({
  type: z.literal('kafka'),
  ...sinkCommon,
  brokers: z.array(hostPort, { error: 'expected an array of host:port strings' })
    .min(1, { error: 'expected an array of host:port strings' }).describe('Bootstrap brokers, host:port'),
  topic: z.string().optional().describe('Default walrelay.{schema}.{table}; with format: debezium, <topicPrefix>.{schema}.{table}.'),
  messageTopic: z.string().optional().describe('Default walrelay.messages; with format: debezium, <topicPrefix>.message.'),
  clientId: z.string().default('walrelay').describe("Kafka client id"),
  timeoutSeconds: serverTimeoutSeconds.describe("Every request to a broker must be answered within this many seconds (the producer's request timeout)."),
  compression: z.enum(['none', 'gzip', 'lz4'], { error: 'expected none, gzip or lz4' }).default('none').describe("Record batch compression"),
  batch: z.strictObject({
    size: positiveInt.default(10000).describe("Records per produce request at most"),
    lingerMs: z.number().int().min(0).default(0).describe("How long to wait for more records before a produce request"),
  }).default({ size: 10000, lingerMs: 0 }),
  ssl: z.strictObject({
    ca: z.string().optional().describe("CA certificate (PEM) the brokers' certificates are checked against"),
    cert: z.string().optional().describe("Client certificate (PEM), when the brokers require one"),
    key: z.string().optional().describe("Private key (PEM) of the client certificate"),
    rejectUnauthorized: z.boolean().default(true).describe("Refuse brokers whose certificate does not verify"),
  }).optional(),
  sasl: z.strictObject({
    mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512'], { error: 'expected plain, scram-sha-256 or scram-sha-512' }),
    username: z.string().describe("SASL user"),
    password: z.string().describe("SASL password (or passwordFile)"),
  }).optional(),
  createTopics: z.union([
    z.literal(false),
    z.strictObject({ partitions: positiveInt.default(3), replicationFactor: positiveInt.default(1) }),
  ]).default(false).describe('false: topics must exist; or { partitions, replicationFactor } to create missing ones'),
  exactlyOnce: z.boolean({ error: 'expected true or false' }).default(false).describe("Each batch and walrelay's checkpoint in one Kafka transaction: read_committed consumers see every change once."),
  transactionalId: z.string().min(1).optional().describe('Transactional id of the exactly-once producer; default walrelay-<slot>-<sink name>.'),
  checkpointTopic: z.string().min(1).default('walrelay.checkpoints').describe("Compacted topic holding each exactly-once sink's last committed event id (created when missing)."),
  producer: z.enum(['own', 'platformatic'], { error: 'expected own or platformatic' }).default('own').describe("Experimental (benchmark): send through @platformatic/kafka instead of walrelay's own producer."),
});

export const stdoutSinkSchema = z.strictObject({
  type: z.literal('stdout'),
  ...sinkCommon,
});

/** Token rules shared by every kind of key (docs/websocket-security.md). */
const tokenRules = {
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional()
    .describe('When set, a token whose aud claim names none of these audiences is refused (401).'),
  issuer: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional()
    .describe('When set, a token whose iss claim is not one of these issuers is refused (401).'),
  clockToleranceSeconds: z.number().int().min(0).max(300).default(5)
    .describe('Clock skew tolerated when checking exp and nbf, in seconds.'),
  requireExp: z.boolean().default(true)
    .describe('Refuse tokens without an exp claim (false: such a token never expires; walrelay warns at start).'),
  requireTables: z.boolean().default(true)
    .describe('Refuse tokens without a tables claim (false: such a token reads every table and every message; walrelay warns at start).'),
};

const websocketAuth = z.union([
  z.literal('none'),
  // HS256 wants a key at least as long as its 256-bit hash (RFC 7518 3.2); a short one is guessable offline.
  z.strictObject({ jwtSecret: z.string().refine((secret) => Buffer.byteLength(secret) >= 32, { error: 'expected at least 32 bytes for HS256 (e.g. openssl rand -base64 32)' }), ...tokenRules }),
  z.strictObject({
    jwksUrl: z.string().url(),
    jwksCacheSeconds: z.number().positive().default(600).describe('How long fetched JWKS keys are used before the set is fetched again.'),
    jwksCooldownSeconds: z.number().min(0).default(30)
      .describe('A token naming an unknown kid refetches the JWKS at most once per this many seconds (a flood of made-up kids cannot flood the key server).'),
    ...tokenRules,
  }),
  z.strictObject({ publicKey: z.string().min(1), algorithm: z.enum(['RS256', 'ES256']).default('RS256'), ...tokenRules }),
], { error: 'expected auth: none, or an object with jwtSecret, jwksUrl or publicKey' });

export const websocketSinkSchema = z.strictObject({
  type: z.literal('websocket'),
  ...sinkCommon,
  host: z.string().default('127.0.0.1').describe("Address the websocket server listens on; 0.0.0.0 to accept other hosts"),
  port: port.default(8080).describe("TCP port of the websocket server (0: any free port)"),
  path: z.string().startsWith('/').default('/').describe("Path of walrelay's own protocol"),
  auth: websocketAuth.describe("Token verification: none (must be explicit), or { jwtSecret } (HS256), { jwksUrl } or { publicKey, algorithm }"),
  tls: z.strictObject({ cert: z.string(), key: z.string() }).optional().describe("Certificate and key files (PEM) for wss://"),
  ringSize: z.number().int().min(0).default(10000).describe('Recent events kept for clients that reconnect with "since".'),
  maxClientQueue: positiveInt.default(1000).describe('Frames queued for one client before it counts as unable to keep up.'),
  maxFrameBytes: positiveInt.default(65536)
    .describe('Largest frame a client may send; a larger one closes the connection with 1009 before it is buffered whole.'),
  maxConnections: positiveInt.default(10000)
    .describe('Connections (upgrading or open) the sink accepts at once; more are refused with HTTP 503.'),
  maxConnectionsPerIp: positiveInt.default(256)
    .describe('Connections from one client address at once; more are refused with HTTP 429. Behind a proxy, list it in trustedProxies.'),
  trustedProxies: z.array(z.string().refine(isAddressOrSubnet, { error: 'expected an IP address or a subnet such as 10.0.0.0/8' })).default([])
    .describe('Proxies (addresses or CIDR subnets) whose X-Forwarded-For header names the client address; from any other peer the header is ignored.'),
  allowedOrigins: z.array(z.string().min(1)).optional()
    .describe('Browser origins (e.g. https://app.example.com) allowed to connect; an upgrade with another Origin header gets HTTP 403. Omitted = any origin (warned at start when auth is none).'),
  handshakeTimeoutSeconds: z.number().positive().default(10)
    .describe('A connection that has not completed its HTTP request and websocket upgrade within this many seconds is closed (slowloris).'),
  maxClientFramesPerSecond: positiveInt.default(100)
    .describe('Frames per second one client may send (bursts up to one second\'s worth); a client above it is closed with 1008.'),
  maxSubscriptionsPerConnection: positiveInt.default(100)
    .describe('Subscriptions (walrelay protocol) or joined channels (Realtime) one connection may hold; more are refused with an error.'),
  staticDir: z.string().optional().describe('Static files served next to the socket (the demo page); omitted = none.'),
  supabase: z.boolean().default(false).describe('Also speak Supabase Realtime (postgres_changes) on every path ending in /websocket.'),
  resumeWindowSeconds: z.number().positive().default(120).describe('How long a Realtime client that names itself (walrelay_client) may rejoin and still get what it missed.'),
  authorization: z.enum(['claims', 'rls'], { error: 'expected claims or rls' }).default('claims')
    .describe('What a Realtime (supabase: true) subscriber may see. claims: the token\'s tables and rowFilter claims. rls: also only the rows PostgreSQL\'s row-level security lets the token\'s role claim SELECT, with the token as request.jwt.claims (docs/supabase.md, "Row-level security").'),
  rls: z.strictObject({
    poolSize: positiveInt.default(4)
      .describe('Connections that run the row-level security checks, on the primary walrelay streams from (the current primary of a multi-host source.url, followed across a failover); at most this many check round trips run at once.'),
    maxKeysPerQuery: positiveInt.default(500)
      .describe('Most rows one check query (one per distinct claims set and table) looks up; a larger batch of changes of one table is split.'),
  }).default({ poolSize: 4, maxKeysPerQuery: 500 })
    .describe('Row-level security checks (authorization: rls).'),
}).superRefine((sink, context) => {
  if (sink.authorization !== 'rls') return;
  if (!sink.supabase) context.addIssue({ code: 'custom', path: ['authorization'], message: 'authorization: rls applies to Supabase Realtime subscribers: set supabase: true' });
  if (sink.auth === 'none') context.addIssue({ code: 'custom', path: ['authorization'], message: 'authorization: rls needs tokens (their role claim and claims are what PostgreSQL checks): configure auth' });
});

/** Where the edge feed lives: one Redis stream or one Kafka topic (docs/edges.md). */
const feedTransport = {
  redis: z.strictObject({
    url: z.string({ error: 'expected a redis:// URL' }).regex(/^rediss?:\/\//, { error: 'expected a redis:// or rediss:// URL' }).default('redis://127.0.0.1:6379')
      .describe('Redis holding the feed stream (user:password and TLS in the URL as for the redis sink)'),
    cluster: z.boolean({ error: 'expected true or false' }).default(false)
      .describe('Redis Cluster: url names any seed node; the feed is one stream, so it lives on one shard'),
    password: z.string().min(1).optional().describe("Redis password (AUTH), instead of the URL's; passwordFile reads it from a file"),
  }).optional().describe('Carry the feed in one Redis stream (XADD / XREAD)'),
  kafka: z.strictObject({
    brokers: z.array(hostPort, { error: 'expected an array of host:port strings' }).min(1, { error: 'expected an array of host:port strings' })
      .describe('Kafka bootstrap brokers, host:port'),
    clientId: z.string().min(1).default('walrelay-feed').describe('Kafka client id'),
    replicationFactor: positiveInt.optional()
      .describe('Replication factor of the one-partition topics walrelay creates when missing (the feed, by the relay; <name>.clients, the walrelay_client resume points, by edges); default: the number of brokers, at most 3'),
  }).optional().describe('Carry the feed in one Kafka topic of one partition (idempotent producer, acks=all); its retention is how far back a client can resume'),
};

export const feedSinkSchema = z.strictObject({
  type: z.literal('feed'),
  ...sinkCommon,
  name: z.string().min(1).default('walrelay.feed')
    .describe('The stream (Redis) or topic (Kafka) edges read; also the sink\'s name in logs and metrics'),
  ...feedTransport,
  maxLen: positiveInt.default(100_000)
    .describe('Redis: entries the feed stream keeps (XADD MAXLEN ~): how far back a client can resume on an edge (Kafka: the topic\'s retention decides)'),
  timeoutSeconds: serverTimeoutSeconds,
});

/** `walrelay edge -c FILE`: websocket sinks served from a feed, no PostgreSQL (docs/edges.md). */
export const edgeConfigSchema = z.strictObject({
  feed: z.strictObject({
    ...feedTransport,
    name: z.string().min(1).default('walrelay.feed').describe('The stream or topic the relay\'s feed sink writes'),
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

/** Standard Webhooks signing secret: "whsec_" and the key in base64. */
const webhookSecret = z.string({ error: 'expected a secret of the form whsec_<base64>' })
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, { error: 'expected a secret of the form whsec_<base64> (Standard Webhooks)' })
  .refine((secret) => Buffer.from(secret.slice('whsec_'.length), 'base64').length >= 16, { error: 'expected a key of at least 16 bytes after whsec_ (e.g. whsec_$(openssl rand -base64 32))' });

export const webhookSinkSchema = z.strictObject({
  type: z.literal('webhook'),
  ...sinkCommon,
  url: z.string({ error: 'expected an http:// or https:// URL' }).regex(/^https?:\/\/[^\s]+$/, { error: 'expected an http:// or https:// URL' })
    .describe('Endpoint that receives each event (or batch) as an HTTP POST; a 2xx answer acknowledges it.'),
  secret: webhookSecret.optional()
    .describe('Standard Webhooks signing secret (whsec_<base64>): each request carries webhook-id, webhook-timestamp and webhook-signature.'),
  headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected an HTTP header name' }), z.string()).optional()
    .describe('Extra request headers, e.g. Authorization.'),
  batchSize: positiveInt.default(1)
    .describe('Events per request; above 1 the body is a JSON array of events.'),
  concurrency: positiveInt.default(16)
    .describe('Requests in flight at once; never two holding events of the same row key, so each row\'s events arrive in commit order.'),
  timeoutSeconds: serverTimeoutSeconds
    .describe('A request not answered within this many seconds is abandoned and retried.'),
  maxAttempts: z.number({ error: 'expected a whole number of attempts' }).int().min(0).default(0)
    .describe('Attempts before an event goes to the deadLetter sink; 0 = retry a retriable failure forever (a permanent 4xx then goes to deadLetter at once).'),
  deadLetter: z.string({ error: 'expected the name of another sink' }).min(1).optional()
    .describe('Name of another (durable) sink that receives events this sink gave up on, with the failure beside each event.'),
});

/** A file holding a secret (Kubernetes/Docker secrets); its content, without a trailing newline, is used. */
const secretFile = (what: string) => z.string({ error: 'expected a file path' }).min(1).describe(`file holding ${what} (instead of writing it in the configuration)`);

/** Client TLS for a broker: files in PEM. */
const brokerTls = z.strictObject({
  ca: z.string().optional().describe('CA certificate file (PEM) the server certificate is checked against; default: the system CAs'),
  cert: z.string().optional().describe('client certificate file (PEM), when the server requires client certificates'),
  key: z.string().optional().describe('private key file (PEM) of the client certificate'),
});

export const natsSinkSchema = z.strictObject({
  type: z.literal('nats'),
  ...sinkCommon,
  servers: z.array(z.string().regex(/^(nats|tls):\/\/\S+$/, { error: 'expected a nats:// or tls:// URL' }), { error: 'expected an array of nats:// URLs' })
    .min(1, { error: 'expected an array of nats:// URLs' })
    .describe('NATS servers (nats://host:port or tls://host:port); the client reconnects to any of them, forever'),
  subject: z.string().min(1).optional()
    .describe('subject of a table\'s events, with {schema} and {table}; default walrelay.{schema}.{table} (format debezium: <topicPrefix>.{schema}.{table}). A JetStream stream must capture it'),
  messageSubject: z.string().min(1).optional()
    .describe('subject of events that belong to no table (logical messages, gap, begin/commit); default walrelay.messages (format debezium: <topicPrefix>.message)'),
  user: z.string().min(1).optional().describe('user name (with password)'),
  password: z.string().optional().describe('password of user'),
  token: z.string().min(1).optional().describe('authentication token'),
  nkeySeedFile: secretFile('an NKey seed (SU...)').optional(),
  credsFile: secretFile('user credentials: a JWT and NKey seed (.creds, as nsc and NGS write it)').optional(),
  tls: brokerTls.optional().describe('TLS to the servers (a tls:// URL or a server that requires TLS uses it too)'),
  timeoutSeconds: serverTimeoutSeconds.describe('JetStream must acknowledge a publish (PubAck) within this many seconds; otherwise it is sent again'),
}).superRefine((sink, context) => {
  if (sink.password !== undefined && sink.user === undefined) context.addIssue({ code: 'custom', path: ['user'], message: 'a password needs a user' });
  const methods = [sink.user !== undefined && 'user', sink.token !== undefined && 'token', sink.nkeySeedFile !== undefined && 'nkeySeedFile', sink.credsFile !== undefined && 'credsFile'].filter(Boolean);
  if (methods.length > 1) context.addIssue({ code: 'custom', path: [], message: `choose one way to authenticate, not ${methods.join(' and ')}` });
});

export const rabbitmqSinkSchema = z.strictObject({
  type: z.literal('rabbitmq'),
  ...sinkCommon,
  url: z.string({ error: 'expected an amqp:// URL (or urlFile)' }).regex(/^amqps?:\/\//, { error: 'expected an amqp:// or amqps:// URL' })
    .describe('broker URL, amqp://user:password@host:5672/vhost or amqps://… (it carries the password: urlFile reads it from a file)'),
  exchange: z.string().default('walrelay')
    .describe('exchange the events are published to; declared (topic, durable) when missing, used as it is when it exists'),
  routingKey: z.string().min(1).default('{schema}.{table}')
    .describe('routing key of a table\'s events, with {schema} and {table}'),
  messageRoutingKey: z.string().min(1).default('messages')
    .describe('routing key of events that belong to no table (logical messages, gap, begin/commit)'),
  tls: brokerTls.optional().describe('TLS for an amqps:// URL'),
  timeoutSeconds: serverTimeoutSeconds.describe('RabbitMQ must confirm a publish within this many seconds (and send heartbeats); otherwise walrelay reconnects and publishes again'),
});

const sinkSchemas = [redisSinkSchema, kafkaSinkSchema, stdoutSinkSchema, websocketSinkSchema, webhookSinkSchema, natsSinkSchema, rabbitmqSinkSchema, feedSinkSchema] as const;
export const SINK_TYPES: readonly string[] = sinkSchemas.map((schema) => schema.shape.type.value);

export const sinkSchema = z.discriminatedUnion('type', sinkSchemas, {
  error: `expected a sink with type ${SINK_TYPES.slice(0, -1).join(', ')} or ${SINK_TYPES.at(-1)}`,
});

export const configSchema = z.strictObject({
  source: z.strictObject({
    url: z.string({ error: 'expected a postgres:// URL (or set DATABASE_URL)' }).regex(/^postgres(ql)?:\/\//, { error: 'expected a postgres:// URL' })
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
    drainTimeoutSeconds: z.number().positive().default(30).describe("On SIGTERM, how long to wait for the sinks to acknowledge what is in flight"),
  }).default({ batchEvents: 500, batchBytes: 131_072, inFlightBatches: 8, drainTimeoutSeconds: 30 }),
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
    parseSourceUrl(config.source.url);
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
 * sink's position in the list (docs/redis.md, "Checkpoint identity").
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
        message: `an exactly-once sink needs a name: its checkpoint is named after it, and a position such as ${sink.type}#${index} moves when sinks are added or reordered (or set ${explicitKey}); docs/redis.md`,
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
