// Redis Streams: one XADD per event (field `event`), a batch sent as one
// pipelined payload over connection.ts.
// At-least-once: a batch that fails part-way is sent again whole, so a
// re-delivered event appears twice with the same `id`.
// A hung Redis is noticed by the connection's reply timeout during writes,
// and by a PING when the sink has had nothing to write for a while.
// With `exactlyOnce: true` a batch is one atomic script guarded by a
// checkpoint key instead (exactly-once.ts): every event id once per stream.
import type { Logger } from 'pino';
import type { Sink } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { RedisSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { deliverWithRetry } from '../retry.js';
import { NameTemplate } from '../stream-name.js';
import { debeziumRecords, debeziumTemplates, encodeEvent, type FormatContext } from '../formats.js';
import { domainRecordOf } from '../../relay/stages/domain-event.js';
import { RedisConnection, encodeCommand } from './connection.js';
import { exactlyOnceCommand, type StreamEntry } from './exactly-once.js';
import type { SinkContext } from '../sink.js';

export class RedisSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly connection: RedisConnection;
  private readonly streams: NameTemplate;
  private closed = false;
  private failing = false;
  private lastFailure: string | undefined;
  private writing = false;
  private probing = false;
  private probeTimer: NodeJS.Timeout | null = null;
  /** An idle connection is pinged after this much silence, so a hung Redis is noticed within the timeout. */
  private readonly probeAfterMs: number;
  /** Exactly-once mode only: the key holding the last event id written. */
  private readonly checkpointKey: string | null;

  private readonly formatContext: FormatContext;

  constructor(private readonly config: RedisSinkConfig, index: number, private readonly logger: Logger, context: SinkContext = { slot: 'walrelay' }) {
    this.name = config.name ?? `redis#${index}`;
    this.checkpointKey = config.exactlyOnce ? config.checkpointKey ?? `walrelay:checkpoint:${context.slot}:${this.name}` : null;
    this.formatContext = { database: context.database, debezium: config.debezium };
    const debezium = config.format === 'debezium' ? debeziumTemplates(this.formatContext) : undefined;
    this.streams = new NameTemplate(config.stream ?? debezium?.table ?? 'walrelay:{schema}.{table}', config.messageStream ?? debezium?.message ?? 'walrelay:messages');
    this.connection = new RedisConnection(config.url, { timeoutMs: config.timeoutSeconds * 1000, timeoutKey: `sinks[${index}].timeoutSeconds` });
    this.probeAfterMs = (config.timeoutSeconds * 1000) / 3;
  }

  async start(): Promise<void> {
    try {
      await this.connection.exec(PING, 1);
    } catch (error) {
      // A Redis that is down at start is waited for like one that goes down later.
      this.noteFailure(error);
      this.logger.warn({ sink: this.name, err: describeError(error) }, 'redis not reachable yet; events wait until it is');
    }
    this.probeTimer = setInterval(() => void this.probe(), Math.max(50, Math.min(1000, this.probeAfterMs / 2)));
    this.probeTimer.unref();
  }

  isReady(): boolean {
    return this.connection.connected && !this.failing;
  }

  notReadyReason(): string | undefined {
    return this.lastFailure ?? (this.connection.connected ? undefined : `no connection to redis at ${this.connection.address}`);
  }

  /** While no write is under way: PING a quiet (or lost) connection, to notice a hang and a recovery without traffic. */
  private async probe(): Promise<void> {
    if (this.closed || this.writing || this.probing || this.connection.silentForMs < this.probeAfterMs) return;
    this.probing = true;
    try {
      await this.connection.exec(PING, 1);
      if (this.failing && !this.writing) {
        this.logger.info({ sink: this.name }, 'redis answers again');
        this.noteSuccess();
      }
    } catch (error) {
      if (!this.failing && !this.writing) {
        this.logger.warn({ sink: this.name, err: describeError(error) }, 'redis is not answering; /readyz reports the sink not ready until it does');
      }
      this.noteFailure(error);
    } finally {
      this.probing = false;
    }
  }

  private noteFailure(error: unknown): void {
    this.failing = true;
    this.lastFailure = describeError(error);
  }

  private noteSuccess(): void {
    this.failing = false;
    this.lastFailure = undefined;
  }

  async write(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    // Encoded before the first await: while Redis answers (and across
    // retries) only the payload is held, not the decoded events, which can
    // then die young instead of being promoted into the old generation.
    const checkpointKey = this.checkpointKey;
    if (checkpointKey !== null) return this.writeExactlyOnce(checkpointKey, events, signal);
    const { payload, count } = this.encode(events);
    await this.deliver(() => this.connection.exec(payload, count), signal);
  }

  private async writeExactlyOnce(checkpointKey: string, events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    const entries = events.flatMap((event) => this.streamEntries(event));
    const command = exactlyOnceCommand(checkpointKey, entries, this.config.maxLen);
    const appended = await this.deliver(async () => { await this.connection.exec(command, 1); return this.connection.lastIntegerReply; }, signal);
    if (appended < entries.length) this.logger.info({ sink: this.name, skipped: entries.length - appended, checkpointKey }, 'redis exactly-once: skipped events the streams already have');
  }

  /** One exchange, retried with backoff until it lands; marks the connection as written to (the idle probe waits). */
  private async deliver<T>(attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.writing = true;
    try {
      return await deliverWithRetry(attempt, {
        sink: this.name,
        logger: this.logger,
        isClosed: () => this.closed,
        signal,
        permanent: permanentRedisError,
        onFailure: (error) => this.noteFailure(error),
        onSuccess: () => this.noteSuccess(),
      });
    } finally {
      this.writing = false;
    }
  }

  /**
   * The stream entries one event appends, in either mode: a domain event's
   * fields (event, key, headers); Debezium Server's layout (XADD <stream> *
   * <key JSON> <value JSON>, "default" for a missing key or a tombstone's
   * value, its redis.null.key / redis.null.value defaults), one entry per
   * record; otherwise the field `event`.
   */
  private streamEntries(event: ChangeEvent): StreamEntry[] {
    const domain = domainRecordOf(event);
    if (domain) return [{ stream: domain.destination, id: event.id, fields: domainFields(domain) }];
    const stream = this.streams.nameFor(event);
    if (this.config.format !== 'debezium') return [{ stream, id: event.id, fields: ['event', encodeEvent(event, this.config.format, this.formatContext)] }];
    // A record after the first (a delete's tombstone) gets the id
    // "<event id>+n", which sorts after the event's own id and before every
    // later id (the next position, and a schema event's "<event id>.schema"),
    // as the exactly-once checkpoint needs.
    return debeziumRecords(event, this.formatContext).map((record, index) => ({
      stream,
      id: index === 0 ? event.id : `${event.id}+${index}`,
      fields: [record.key ?? DEBEZIUM_NULL, record.value ?? DEBEZIUM_NULL],
    }));
  }

  /** One XADD per stream entry, as a single pipelined RESP payload. */
  private encode(events: readonly ChangeEvent[]): { payload: string; count: number } {
    const trim = this.config.maxLen === undefined ? '' : `$6\r\nMAXLEN\r\n$1\r\n~\r\n$${String(this.config.maxLen).length}\r\n${this.config.maxLen}\r\n`;
    const head = `*${this.config.maxLen === undefined ? 5 : 8}\r\n$4\r\nXADD\r\n`;
    const plainFormat = this.config.format !== 'debezium';
    let payload = '';
    let count = 0;
    for (const event of events) {
      if (plainFormat && domainRecordOf(event) === undefined) {
        // The hot path: the event's JSON under the field `event`, without building an entry object.
        const stream = this.streams.nameFor(event);
        const json = encodeEvent(event, this.config.format);
        payload += `${head}$${Buffer.byteLength(stream)}\r\n${stream}\r\n${trim}$1\r\n*\r\n$5\r\nevent\r\n$${Buffer.byteLength(json)}\r\n${json}\r\n`;
        count++;
        continue;
      }
      for (const entry of this.streamEntries(event)) {
        payload += encodeEntry(entry, trim);
        count++;
      }
    }
    return { payload, count };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.connection.close();
  }
}

/** Debezium Server's redis.null.key and redis.null.value default. */
const DEBEZIUM_NULL = 'default';

/** A domain event (outbox, routed message): fields event (the value), key when there is one, then its headers. */
function domainFields(domain: NonNullable<ReturnType<typeof domainRecordOf>>): string[] {
  return ['event', domain.value, ...(domain.key === null ? [] : ['key', domain.key]), ...domain.headers.flat()];
}

/** XADD <stream> [MAXLEN ~ n] * <fields…> in RESP. */
function encodeEntry(entry: StreamEntry, trim: string): string {
  let text = `*${3 + entry.fields.length + (trim ? 3 : 0)}\r\n$4\r\nXADD\r\n$${Buffer.byteLength(entry.stream)}\r\n${entry.stream}\r\n${trim}$1\r\n*\r\n`;
  for (const field of entry.fields) text += `$${Buffer.byteLength(field)}\r\n${field}\r\n`;
  return text;
}

const PING = encodeCommand(['PING']);

function permanentRedisError(error: unknown): Error | null {
  const message = (error as Error)?.message ?? '';
  if (/^WRONGTYPE/.test(message)) {
    return new WalrelayError('REDIS_WRONGTYPE', message, { hint: 'a key named by the stream template exists and is not a stream; rename the stream template or delete the key' });
  }
  if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message)) {
    return new WalrelayError('REDIS_AUTH', message, { hint: 'check the user and password in the redis url and the ACL for XADD' });
  }
  return null;
}
