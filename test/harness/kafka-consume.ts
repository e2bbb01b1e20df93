// An independent consumer (kafkajs) that reads topics from the beginning up
// to their current end: every record there, duplicates included, so tests
// can count what Kafka really holds.
import { Kafka, logLevel } from 'kafkajs';

export interface ConsumedRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: string | null;
  /** "" for a tombstone (see `tombstone`). */
  value: string;
  /** The record's value is null. */
  tombstone?: boolean;
  headers: Record<string, string>;
  /** Milliseconds since 1970: the producer's time, or the leader's append time on LogAppendTime topics. */
  timestamp: number;
}

export interface ConsumeOptions {
  /** Only committed transactions (exactly-once sinks); default read_uncommitted. */
  readCommitted?: boolean;
  timeoutMs?: number;
}

/** Reads every record of `topics` from offset 0 up to the end offsets as of the call. */
export async function consumeToEnd(brokers: string[], topics: string[], options: ConsumeOptions = {}): Promise<ConsumedRecord[]> {
  const kafka = new Kafka({ brokers, clientId: 'walrelay-test-reader', logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, bigint>();
  try {
    for (const topic of topics) {
      for (const { partition, high } of await admin.fetchTopicOffsets(topic)) {
        if (BigInt(high) > 0n) ends.set(`${topic}/${partition}`, BigInt(high));
      }
    }
  } finally {
    await admin.disconnect();
  }
  const records: ConsumedRecord[] = [];
  if (ends.size === 0) return records;
  const consumer = kafka.consumer({ groupId: `reader-${process.pid}-${Date.now()}-${Math.random()}`, readUncommitted: !options.readCommitted });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    const remaining = new Set(ends.keys());
    let finish!: () => void;
    const done = new Promise<void>((resolve) => { finish = resolve; });
    // A batch's last offset counts transaction markers and aborted records too, which eachMessage never sees.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const key = `${payload.topic}/${payload.partition}`;
      const end = ends.get(key);
      if (end !== undefined && BigInt(payload.lastOffset) + 1n >= end && remaining.delete(key) && remaining.size === 0) finish();
    });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
        const offset = BigInt(message.offset);
        const end = ends.get(`${topic}/${partition}`);
        if (end === undefined || offset >= end) return;
        records.push({ topic, partition, offset, key: message.key?.toString() ?? null, value: message.value?.toString() ?? '', tombstone: message.value === null, headers, timestamp: Number(message.timestamp) });
      },
    });
    const timeoutMs = options.timeoutMs ?? 120_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((_, reject) => { timer = setTimeout(() => reject(new Error(`consumer did not reach the end of ${[...remaining].join(', ')} within ${timeoutMs} ms (${records.length} records read)`)), timeoutMs); });
    await Promise.race([done, timedOut]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return records;
}
