// Records of Kafka Connect's JsonConverter with schemas ({"schema": …,
// "payload": …}) made comparable: the payload loses exactly what the
// Debezium Server comparison removes (processing time, source.version; for
// golden files, positions become symbols, see ../debezium/compare.ts), the
// schema stays byte for byte. Records are StreamEntry values in Debezium
// Server's Redis layout: "default" for a null key or a tombstone.
import { consumeToEnd } from '../harness/kafka-consume.js';
import { symbolizePositions, withoutProcessingTime } from '../debezium/compare.js';
import type { StreamEntry } from '../debezium/capture.js';
import { Kafka, logLevel } from 'kafkajs';
import type { Redis } from 'ioredis';
import { readDebeziumStreams } from '../debezium/capture.js';
import { SCENARIO_LAST_KEY, SCENARIO_LAST_STREAM_SUFFIX } from '../harness/debezium-scenario.js';
import { waitFor } from '../harness/wait.js';

/** Splits `{"schema":S,"payload":P}` into S and P (texts); null when the value has no such shape. */
export function splitEnvelope(value: string): { schema: string; payload: string } | null {
  if (!value.startsWith('{"schema":') || !value.endsWith('}')) return null;
  // Schemas hold no row values (defaults aside), so the first ,"payload": after a balanced schema object is its end.
  let depth = 0;
  let inString = false;
  for (let i = '{"schema":'.length; i < value.length; i++) {
    const c = value[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    if (depth === 0 && !inString) {
      const schema = value.slice('{"schema":'.length, i + 1);
      const rest = value.slice(i + 1);
      if (!rest.startsWith(',"payload":')) return null;
      return { schema, payload: rest.slice(',"payload":'.length, -1) };
    }
  }
  return null;
}

function mapPayload(value: string, map: (payload: string) => string): string {
  if (value === 'default') return value;
  const parts = splitEnvelope(value);
  if (!parts) return value;
  return `{"schema":${parts.schema},"payload":${map(parts.payload)}}`;
}

/** Every record of the topics under `prefix.` in one Kafka, by topic then offset, as entries named without the prefix. */
export async function readTopics(brokers: string[], prefix: string): Promise<StreamEntry[]> {
  const kafka = new Kafka({ brokers, clientId: 'walrelay-test-topics', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  let topics: string[];
  try {
    topics = (await admin.listTopics()).filter((topic) => topic.startsWith(prefix + '.')).sort();
  } finally {
    await admin.disconnect();
  }
  const records = await consumeToEnd(brokers, topics);
  records.sort((a, b) => (a.topic === b.topic ? (a.offset < b.offset ? -1 : 1) : a.topic < b.topic ? -1 : 1));
  return records.map((record) => ({ stream: record.topic.slice(prefix.length), key: record.key ?? 'default', value: record.tombstone ? 'default' : record.value }));
}

/** Processing time and source.version out of every payload (the schema stays). */
export function normalizeConnect(entries: StreamEntry[]): StreamEntry[] {
  return entries.map((entry) => ({ ...entry, value: mapPayload(entry.value, withoutProcessingTime) }));
}

/** Positions as symbols in every payload, as ../debezium/compare.ts does for the golden files. */
export function symbolizeConnect(entries: StreamEntry[]): StreamEntry[] {
  // source.sequence's previous commit end depends on what else wrote WAL in between (a Connect worker, other
  // databases of the cluster), so the golden files leave it out; the live comparison checks it, as the
  // Debezium Server golden files do.
  const payloads = entries.map((entry) => ({ ...entry, value: (splitEnvelope(entry.value)?.payload ?? entry.value).replace(/"sequence":"\[(null|\\"\d+\\"),/, '"sequence":"[\\"<previous>\\",') }));
  const symbolized = symbolizePositions(payloads);
  return entries.map((entry, i) => ({ ...entry, value: entry.value === 'default' ? entry.value : mapPayload(entry.value, () => symbolized[i].value) }));
}

/** Waits for the scenario's last event in walrelay's Redis streams under `prefix` (Debezium's layout), then reads them all. */
export async function collectRedis(redis: Redis, prefix: string, what: string): Promise<StreamEntry[]> {
  const last = prefix + SCENARIO_LAST_STREAM_SUFFIX;
  await waitFor(async () => {
    const tail = (await redis.xrevrange(last, '+', '-', 'COUNT', 1)) as [string, string[]][];
    return tail.length === 1 && tail[0][1][0].endsWith(`"payload":${SCENARIO_LAST_KEY}}`);
  }, { what: `${what}: the scenario's last event in ${last}`, timeoutMs: 120_000 });
  const streams = (await redis.keys(`${prefix}.*`)).sort();
  return (await readDebeziumStreams(redis, streams)).map((entry) => ({ ...entry, stream: entry.stream.slice(prefix.length) }));
}
