// node dist/bench/core-cpu.js [small|wide|toast] [stdout|redis|kafka] [events] [rows/s]   (toast: use ~600 events)
//
// CPU per event of the relay's core path alone, without PostgreSQL: pgoutput
// messages shaped like `npm run bench`'s backlogs (Begin, 10 inserts,
// Commit) are fed through the real Pipeline into a real sink (stdout into
// /dev/null, or the Redis or Kafka sink into a Redis or a Kafka broker the
// script starts; Kafka needs the jars in .cache/kafka), in bursts as
// the socket would deliver them. Prints the process's CPU seconds per
// million events: on a shared machine CPU time moves far less than wall time,
// so this is what bench/OPTIMISATIONS.md's before/after figures compare.
// CORE_ROWS_AS_TEXT=1: the same build on the text path (pipeline option
// rowsAsText). CORE_WINDOW_MS: pipeline.dispatchWindowMs (default 5). CORE_FEED_ONLY=1 (with a rate): only the feeder's own wake-ups,
// nothing handed to the pipeline, to see what the schedule alone costs.
import { createWriteStream } from 'node:fs';
import pino from 'pino';
import { Pipeline } from '../relay/route/pipeline.js';
import { Checkpoint } from '../relay/route/checkpoint.js';
import { SinkRoute } from '../relay/route/sink-route.js';
import { TypeCatalog } from '../relay/source/type-catalog.js';
import { Metrics } from '../relay/ops/metrics.js';
import { StdoutSink } from '../sinks/stdout/index.js';
import { RedisSink } from '../sinks/redis/index.js';
import { KafkaSink } from '../sinks/kafka/index.js';
import { startRedis } from '../test/harness/redis.js';
import { startKafka } from '../test/harness/kafka.js';
import type { Sink } from '../sinks/sink.js';
import type { Lsn } from '../relay/lsn.js';
import type { StdoutSinkConfig, RedisSinkConfig, KafkaSinkConfig } from '../config/schema.js';
import { kafkaSinkSchema } from '../config/sink-schemas.js';
import { toastValueBytes } from './scenarios.js';

const [scenario = 'small', sinkName = 'stdout', countText = '200000', rateText] = process.argv.slice(2);
const total = Number(countText);
/** A live feed: one transaction per socket read, at this many rows/s (none: a backlog, in ~64 kB bursts). */
const rate = rateText === undefined ? null : Number(rateText);

/** A column and its value in row i (null: NULL). */
interface Column { name: string; oid: number; value(i: number): string | null }

const PG_EPOCH_MS = 946_684_800_000;
function timestamptz(): string {
  const now = new Date().toISOString(); // 2026-12-05T22:43:25.123Z
  return `${now.slice(0, 10)} ${now.slice(11, 23)}456+00`;
}

const columnsOf: Record<string, Column[]> = {
  small: [
    { name: 'id', oid: 20, value: (i) => String(i) },
    { name: 'account', oid: 23, value: (i) => String(i % 1000) },
    { name: 'note', oid: 25, value: (i) => `payment ${i}` },
    { name: 'amount', oid: 1700, value: (i) => (i * 1.5).toFixed(1) },
    { name: 'at', oid: 1184, value: () => timestamptz() },
  ],
  wide: [
    { name: 'id', oid: 20, value: (i) => String(i) },
    { name: 'at', oid: 1184, value: () => timestamptz() },
    ...Array.from({ length: 48 }, (_, c): Column => (c % 3 === 0 ? { name: `c${c}`, oid: 23, value: (i) => String(i + c) }
      : c % 3 === 1 ? { name: `c${c}`, oid: 25, value: (i) => `value ${i}` }
        : { name: `c${c}`, oid: 1700, value: (i) => ((i * c) / 7).toFixed(20) })),
  ],
  // As bench/scenarios.ts's TOAST backlog: one value of 100 KiB–1 MiB per row, text, jsonb and bytea in turn.
  toast: [
    { name: 'id', oid: 20, value: (i) => String(i) },
    { name: 'body', oid: 25, value: (i) => (i % 3 === 0 ? toastText(i) : null) },
    { name: 'doc', oid: 3802, value: (i) => (i % 3 === 1 ? toastJsonb(i) : null) },
    { name: 'blob', oid: 17, value: (i) => (i % 3 === 2 ? toastBytea(i) : null) },
  ],
};

/** A 32-digit hex word standing in for an md5. */
function hexWord(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0').repeat(4);
}

/** Lines of hex words with a quoted one, cut to the row's size (PostgreSQL's text output). */
function toastText(i: number): string {
  let block = '';
  for (let j = 1; j <= 60; j++) block += `${hexWord(i * 64 + j)} ${hexWord(i * 64 + j + 1)} "${hexWord(j)}" ${hexWord(i - j)}\n`;
  const size = toastValueBytes(i);
  return block.repeat(Math.floor(size / block.length) + 1).slice(0, size);
}

/** An array of small objects, in jsonb's output form (keys by length, ", " and ": " between tokens). */
function toastJsonb(i: number): string {
  const elements: string[] = [];
  for (let j = 1; j <= 64; j++) elements.push(`{"id": ${i * 64 + j}, "hash": "${hexWord(i + j)}", "note": "a \\"quoted\\" word\\nand a second line", "tags": ["${hexWord(j).slice(0, 8)}", "bench"], "score": ${j}.5}`);
  const block = elements.join(', ');
  return `[${`${block}, `.repeat(Math.floor(toastValueBytes(i) / (block.length + 2)))}${block}]`;
}

/** bytea in hex output: twice the row's size in hex digits after "\\x". */
function toastBytea(i: number): string {
  let block = '';
  for (let j = 1; j <= 256; j++) block += hexWord(i * 256 + j);
  const digits = 2 * toastValueBytes(i);
  return `\\x${block.repeat(Math.floor(digits / block.length) + 1).slice(0, digits)}`;
}

function u32(value: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(value); return b; }
function u64(value: bigint): Buffer { const b = Buffer.alloc(8); b.writeBigUInt64BE(value); return b; }
function i64(value: bigint): Buffer { const b = Buffer.alloc(8); b.writeBigInt64BE(value); return b; }
function u16(value: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(value); return b; }

const columns = columnsOf[scenario];
const relation = Buffer.concat([Buffer.from('R'), u32(16384), Buffer.from('public\0bench\0'), Buffer.from('d'), u16(columns.length),
  ...columns.map((column, i) => Buffer.concat([Buffer.from([i === 0 ? 1 : 0]), Buffer.from(`${column.name}\0`), u32(column.oid), u32(0xffffffff)]))]);

function insert(i: number): Buffer {
  return Buffer.concat([Buffer.from('I'), u32(16384), Buffer.from('N'), u16(columns.length),
    ...columns.map((column) => {
      const value = column.value(i);
      if (value === null) return Buffer.from('n');
      const text = Buffer.from(value);
      return Buffer.concat([Buffer.from('t'), u32(text.length), text]);
    })]);
}

/** TOAST rows repeat after this many (held in memory once each). */
const TOAST_DISTINCT_ROWS = 60;
const toastMessages = new Map<number, Buffer>();

function insertMessage(i: number): Buffer {
  if (scenario !== 'toast') return insert(i);
  const key = i % TOAST_DISTINCT_ROWS;
  let message = toastMessages.get(key);
  if (message === undefined) {
    message = insert(i);
    toastMessages.set(key, message);
  }
  return message;
}

/** One burst of socket data: these messages, delivered synchronously as pg's parser would. */
function transaction(tx: number, firstRow: number): { walStart: bigint; payload: Buffer }[] {
  const lsn = BigInt(0x1000000 + tx * 4096);
  const commitTime = BigInt(Date.now() - PG_EPOCH_MS) * 1000n;
  const messages: { walStart: bigint; payload: Buffer }[] = [{ walStart: lsn, payload: Buffer.concat([Buffer.from('B'), u64(lsn + 4000n), i64(commitTime), u32(1000 + tx)]) }];
  for (let r = 0; r < 10; r++) messages.push({ walStart: lsn + BigInt(r * 100), payload: insertMessage(firstRow + r) });
  messages.push({ walStart: lsn + 4000n, payload: Buffer.concat([Buffer.from('C'), Buffer.from([0]), u64(lsn + 4000n), u64(lsn + 4096n), i64(commitTime)]) });
  return messages;
}

/** Stops the Redis or Kafka the script started (also when the run fails: a broker left behind keeps loading the cores). */
let stop = async (): Promise<void> => {};

async function main(): Promise<void> {
  const logger = pino({ level: 'warn' }, process.stderr);
  let sink: Sink;
  if (sinkName === 'redis') {
    const redis = await startRedis();
    sink = new RedisSink({ type: 'redis', url: redis.url, stream: 'core', timeoutSeconds: 30, format: 'walrelay' } as RedisSinkConfig, 0, logger);
    stop = () => redis.stop();
  } else if (sinkName === 'kafka') {
    // As `npm run bench`'s Kafka sink: a topic of three partitions.
    const kafka = await startKafka();
    const config = kafkaSinkSchema.parse({ type: 'kafka', brokers: kafka.brokers, topic: 'core', createTopics: { partitions: 3, replicationFactor: 1 } }) as KafkaSinkConfig;
    sink = new KafkaSink(config, 0, logger);
    stop = () => kafka.stop();
  } else {
    sink = new StdoutSink({ type: 'stdout', format: 'walrelay' } as StdoutSinkConfig, 0, createWriteStream('/dev/null'));
  }
  await sink.start();
  let confirmed = 0n;
  const checkpoint = new Checkpoint(0n as Lsn, (lsn) => { confirmed = lsn; });
  let paused = false;
  let resume: (() => void) | null = null;
  const flow = { pause: () => { paused = true; }, resume: () => { paused = false; resume?.(); }, sendStatus: () => undefined };
  const route = new SinkRoute(sink, undefined, new Metrics());
  const pipeline = new Pipeline([route], checkpoint, new TypeCatalog({ query: async () => ({ rows: [] }) }), flow,
    { batchEvents: 500, batchBytes: 131_072, inFlightBatches: Number(process.env.CORE_IN_FLIGHT ?? 2), dispatchWindowMs: Number(process.env.CORE_WINDOW_MS ?? 5), rowsAsText: process.env.CORE_ROWS_AS_TEXT === '1' }, (error) => { throw error; });
  pipeline.onData({ kind: 'data', walStart: 1n as Lsn, walEnd: 1n as Lsn, payload: relation } as never);
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Messages built beforehand: only the relay's work is measured.
  const bursts: { walStart: bigint; payload: Buffer }[][] = [];
  for (let tx = 0, row = 1; row <= total; tx++, row += 10) bursts.push(transaction(tx, row));
  const lastEnd = BigInt(0x1000000 + (bursts.length - 1) * 4096) + 4096n;
  const cpu = process.cpuUsage();
  const started = performance.now();
  if (rate !== null) {
    // One transaction per read, on schedule (as a live walsender sends them).
    for (let b = 0; b < bursts.length; b++) {
      const due = started + (b * 10 * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (process.env.CORE_FEED_ONLY !== '1') for (const message of bursts[b]) pipeline.onData({ kind: 'data', walStart: message.walStart as Lsn, walEnd: message.walStart as Lsn, payload: message.payload } as never);
    }
  }
  for (let b = rate === null ? 0 : bursts.length; b < bursts.length;) {
    // A socket read carries ~64 kB: several transactions per burst.
    for (let bytes = 0; b < bursts.length && bytes < 65_536 && !paused; b++) {
      for (const message of bursts[b]) {
        pipeline.onData({ kind: 'data', walStart: message.walStart as Lsn, walEnd: message.walStart as Lsn, payload: message.payload } as never);
        bytes += message.payload.length;
      }
    }
    if (paused) await new Promise<void>((resolve) => { resume = resolve; });
    else await new Promise((resolve) => setImmediate(resolve));
  }
  while (confirmed < lastEnd && process.env.CORE_FEED_ONLY !== '1') await new Promise((resolve) => setTimeout(resolve, 1));
  const used = process.cpuUsage(cpu);
  const seconds = (used.user + used.system) / 1e6;
  const wall = (performance.now() - started) / 1000;
  process.stdout.write(`${scenario} → ${sinkName}${rate === null ? '' : ` at ${rate} rows/s`}: ${total} events, CPU ${seconds.toFixed(2)} s (user ${(used.user / 1e6).toFixed(2)}, system ${(used.system / 1e6).toFixed(2)}; ${(seconds / total * 1e6).toFixed(2)} s / M events), wall ${wall.toFixed(2)} s\n`);
  await sink.close();
  await stop();
  process.exit(0);
}

main().catch(async (error: unknown) => {
  console.error(error);
  await stop();
  process.exit(1);
});
