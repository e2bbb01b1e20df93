// Each sink's configuration (contract section 2, docs/configuration.md),
// strict like the rest of the file: an unknown key is an error naming its path.
import { z } from 'zod';
import { hostPort, isAddressOrSubnet, port, positiveInt, redisUrl, serverTimeoutSeconds, sinkCommon } from './schema-parts.js';

export const redisSinkSchema = z.strictObject({
  type: z.literal('redis'),
  ...sinkCommon,
  url: redisUrl.default('redis://127.0.0.1:6379').describe("redis:// (rediss:// for TLS), with user:password@ for ACLs and /db for a database"),
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
    .describe('After each batch, Redis WAIT: the batch counts as delivered (and its LSN may be confirmed) only once at least this many replicas acknowledged it; fewer within waitTimeoutMs and the batch is retried. Default: no WAIT (an ack means in the master\'s memory). See docs/sinks/redis.md.'),
  waitAof: z.strictObject({
    local: z.boolean({ error: 'expected true or false' }).default(true).describe('WAITAOF numlocal: the master has fsynced the batch to its append-only file (needs appendonly yes on the server).'),
    replicas: z.number({ error: 'expected a number of replicas' }).int().min(0, { error: 'expected 0 or more replicas' }).default(0).describe('WAITAOF numreplicas: this many replicas have fsynced the batch to their append-only file.'),
  }).optional()
    .describe('After each batch, Redis WAITAOF (Redis 7.2 or later): the batch counts as delivered only once it is fsynced to the append-only file locally and/or on replicas; a server without WAITAOF is refused at start (REDIS_WAITAOF_UNSUPPORTED). See docs/sinks/redis.md.'),
  waitTimeoutMs: z.number({ error: 'expected milliseconds' }).int().positive().default(1000)
    .describe('How long one WAIT / WAITAOF may block before walrelay counts the batch as not yet durable and retries; must be below timeoutSeconds.'),
});

/** TLS to Kafka brokers: the kafka sink's, the feed sink's and an edge's Kafka feed's `ssl` key. */
const kafkaSsl = z.strictObject({
  ca: z.string().optional().describe("CA certificate (PEM) the brokers' certificates are checked against"),
  cert: z.string().optional().describe("Client certificate (PEM), when the brokers require one"),
  key: z.string().optional().describe("Private key (PEM) of the client certificate"),
  rejectUnauthorized: z.boolean().default(true).describe("Refuse brokers whose certificate does not verify"),
}).optional();

/** SASL to Kafka brokers, likewise shared. */
const kafkaSasl = z.strictObject({
  mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512'], { error: 'expected plain, scram-sha-256 or scram-sha-512' }),
  username: z.string().describe("SASL user"),
  password: z.string().describe("SASL password (or passwordFile)"),
}).optional();

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
  ssl: kafkaSsl,
  sasl: kafkaSasl,
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
export const feedTransport = {
  redis: z.strictObject({
    url: redisUrl.default('redis://127.0.0.1:6379')
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
    ssl: kafkaSsl.describe('TLS to the brokers, as the kafka sink\'s ssl'),
    sasl: kafkaSasl.describe('SASL to the brokers (plain, scram-sha-256, scram-sha-512), as the kafka sink\'s sasl'),
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
  debeziumOrigins: z.boolean({ error: 'expected true or false' }).default(false)
    .describe('Carry what an edge\'s websocket sink with format: debezium needs to send the relay\'s frames byte for byte (PostgreSQL\'s text values, column types, the previous commit): entries about twice as large'),
  timeoutSeconds: serverTimeoutSeconds,
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
