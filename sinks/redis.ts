// Redis Streams: one XADD per event (field `event`), a batch sent as one
// pipelined payload over redis-connection.ts.
// At-least-once: a batch that fails part-way is sent again whole, so a
// re-delivered event appears twice with the same `id`.
// A hung Redis is noticed by the connection's reply timeout during writes,
// and by a PING when the sink has had nothing to write for a while.
import type { Logger } from 'pino';
import type { Sink } from './sink.js';
import type { ChangeEvent } from '../relay/route/event.js';
import type { RedisSinkConfig } from '../config/schema.js';
import { WalrelayError, describeError } from '../relay/errors.js';
import { deliverWithRetry } from './retry.js';
import { NameTemplate } from './stream-name.js';
import { debeziumRecords, debeziumTemplates, encodeEvent, type FormatContext } from './formats.js';
import { RedisConnection, encodeCommand } from './redis-connection.js';

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

  private readonly formatContext: FormatContext;

  constructor(private readonly config: RedisSinkConfig, index: number, private readonly logger: Logger, context: { database?: string } = {}) {
    this.name = config.name ?? `redis#${index}`;
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

  async write(events: readonly ChangeEvent[]): Promise<void> {
    // Encoded before the first await: while Redis answers (and across
    // retries) only the payload is held, not the decoded events, which can
    // then die young instead of being promoted into the old generation.
    const { payload, count } = this.encode(events);
    this.writing = true;
    try {
      await deliverWithRetry(() => this.connection.exec(payload, count), {
        sink: this.name,
        logger: this.logger,
        isClosed: () => this.closed,
        permanent: permanentRedisError,
        onFailure: (error) => this.noteFailure(error),
        onSuccess: () => this.noteSuccess(),
      });
    } finally {
      this.writing = false;
    }
  }

  /** One XADD per event, as a single pipelined RESP payload. */
  private encode(events: readonly ChangeEvent[]): { payload: string; count: number } {
    const trim = this.config.maxLen === undefined ? '' : `$6\r\nMAXLEN\r\n$1\r\n~\r\n$${String(this.config.maxLen).length}\r\n${this.config.maxLen}\r\n`;
    const head = `*${this.config.maxLen === undefined ? 5 : 8}\r\n$4\r\nXADD\r\n`;
    let payload = '';
    if (this.config.format === 'debezium') return this.encodeDebezium(events, head, trim);
    for (const event of events) {
      const stream = this.streams.nameFor(event);
      const json = encodeEvent(event, this.config.format);
      payload += `${head}$${Buffer.byteLength(stream)}\r\n${stream}\r\n${trim}$1\r\n*\r\n$5\r\nevent\r\n$${Buffer.byteLength(json)}\r\n${json}\r\n`;
    }
    return { payload, count: events.length };
  }

  /**
   * Debezium Server's Redis layout: XADD <stream> * <key JSON> <value JSON>,
   * with "default" standing for a missing key or value (a tombstone), as its
   * redis.null.key / redis.null.value defaults.
   */
  private encodeDebezium(events: readonly ChangeEvent[], head: string, trim: string): { payload: string; count: number } {
    let payload = '';
    let count = 0;
    for (const event of events) {
      const stream = this.streams.nameFor(event);
      for (const record of debeziumRecords(event, this.formatContext)) {
        const key = record.key ?? DEBEZIUM_NULL;
        const value = record.value ?? DEBEZIUM_NULL;
        payload += `${head}$${Buffer.byteLength(stream)}\r\n${stream}\r\n${trim}$1\r\n*\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n$${Buffer.byteLength(value)}\r\n${value}\r\n`;
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
