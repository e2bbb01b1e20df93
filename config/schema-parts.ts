// The pieces the configuration's schemas share (config/schema.ts,
// config/sink-schemas.ts): names, numbers, the sink keys every sink has.
import { z } from 'zod';
import { isIP } from 'node:net';

export const tablePattern = z.string({ error: 'expected a table pattern such as "public.orders", "public.*" or "*.audit_log"' })
  .regex(/^[^.\s]+\.[^.\s]+$/, { error: 'expected a table pattern of the form schema.table ("*" allowed on either side)' });

export const tableName = z.string({ error: 'expected a table name such as "public.orders"' })
  .regex(/^[^.\s*]+\.[^.\s*]+$/, { error: 'expected a table name of the form schema.table' });

export const identifier = z.string({ error: 'expected a PostgreSQL identifier' })
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: 'expected a lower-case identifier (letters, digits, _; at most 63 characters)' });

/** "10.0.0.1", "::1", "10.0.0.0/8", "fd00::/8". */
export function isAddressOrSubnet(text: string): boolean {
  const [address, bits, extra] = text.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

export const port = z.number({ error: 'expected a TCP port number' }).int().min(0).max(65535);

/** A redis:// or rediss:// URL with a usable port, that Node's URL parser accepts (else the sinks fail only at run). */
export const redisUrl = z.string({ error: 'expected a redis:// URL' })
  .regex(/^rediss?:\/\//, { error: 'expected a redis:// or rediss:// URL', abort: true })
  .superRefine((text, context) => {
    const problem = redisUrlProblem(text);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  });

function redisUrlProblem(text: string): string | null {
  const givenPort = /^rediss?:\/\/(?:[^@/]*@)?(?:\[[^\]/]*\]|[^:/?#[]*)(?::([^/?#]*))?/.exec(text)?.[1];
  if (givenPort && !(/^\d+$/.test(givenPort) && Number(givenPort) >= 1 && Number(givenPort) <= 65535)) {
    return `port "${givenPort}" is not a TCP port number (1-65535)`;
  }
  try {
    new URL(text);
  } catch {
    return 'not a valid URL: check the brackets around an IPv6 address, and percent-encode @ : / in the user and password';
  }
  return null;
}
export const positiveInt = z.number({ error: 'expected a positive integer' }).int().positive();
export const hostPort = z.string().regex(/^[^\s:]+:\d+$/);

/** How long a server may stay silent before walrelay counts it as hung (logs, /readyz 503, reconnects, retries). */
export const serverTimeoutSeconds = z.number({ error: 'expected a number of seconds' }).positive({ error: 'expected a positive number of seconds' }).default(30);

export const format = z.enum(['walrelay', 'debezium', 'cloudevents'], { error: 'expected one of walrelay, debezium, cloudevents' });

/** Debezium's knobs for format: debezium (README "Moving from Debezium"), with Debezium's defaults. */
export const debeziumKnobs = z.strictObject({
  decimalHandlingMode: z.enum(['precise', 'string', 'double'], { error: 'expected precise, string or double' }).default('precise').describe("Debezium's decimal.handling.mode: numeric as Connect Decimal bytes (precise), as a string, or as a double"),
  timePrecisionMode: z.enum(['adaptive', 'adaptive_time_microseconds', 'connect'], { error: 'expected adaptive, adaptive_time_microseconds or connect' }).default('adaptive').describe("Debezium's time.precision.mode"),
  tombstonesOnDelete: z.boolean({ error: 'expected true or false' }).default(true).describe("A delete is followed by a record with a null value (Kafka log compaction), as Debezium's tombstones.on.delete"),
  topicPrefix: z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'expected a topic prefix of letters, digits, ".", "_" and "-"' }).default('walrelay').describe("Debezium's topic.prefix: the first part of topic and schema names"),
  schemas: z.boolean({ error: 'expected true or false' }).default(false)
    .describe('Write each key and value as Kafka Connect\'s JsonConverter does with schemas.enable=true: {"schema": …, "payload": …}, the schemas the Debezium PostgreSQL connector declares (docs/debezium.md "From Kafka Connect"). For Kafka Connect sink connectors such as Debezium\'s JDBC sink.'),
});

/** Keys of a sink's `columns` (checked below: a record's key error would not say what was expected). */
export const columnPattern = /^[^.\s]+\.[^.\s]+\.[^.\s]+$/;

export const sinkCommon = {
  name: z.string().min(1).optional().describe('The sink\'s name in logs and metrics (default <type>#<position>). Required for exactlyOnce sinks without checkpointKey / transactionalId: their checkpoint is named after it, never after the position (docs/sinks/redis.md).'),
  tables: z.array(tablePattern, { error: 'expected an array of table patterns' }).optional().describe("Table patterns this sink receives (public.*, *.audit_log); omitted = every table, and messages"),
  format: format.default('walrelay').describe("Event format: walrelay (the change event), debezium (Debezium's JSON envelope, byte for byte) or cloudevents (CloudEvents 1.0 structured JSON)"),
  debezium: debeziumKnobs.optional().describe("Settings of format: debezium (docs/debezium.md)"),
  columns: z.record(z.string(), z.enum(['drop', 'hash', 'mask'], { error: 'expected drop, hash or mask' })).optional().describe('Column policies.'),
  transactionEvents: z.boolean().default(false).describe('op "begin" / "commit" events around each transaction.'),
  schemaEvents: z.boolean({ error: 'expected true or false' }).default(false).describe("Receive op \"schema\" events when a table's shape changes."),
};
