// Redis Streams: one XADD per event (field `event`), a batch sent as one
// pipelined payload over redis-connection.ts.
// At-least-once: a batch that fails part-way is sent again whole, so a
// re-delivered event appears twice with the same `id`.
import type { Logger } from 'pino';
import type { Sink } from './sink.js';
import type { ChangeEvent } from '../relay/route/event.js';
import type { RedisSinkConfig } from '../config/schema.js';
import { WalrelayError } from '../relay/errors.js';
import { deliverWithRetry } from './retry.js';
import { NameTemplate } from './stream-name.js';
import { encodeEvent } from './formats.js';
import { domainRecordOf } from '../relay/route/domain-event.js';
import { RedisConnection, encodeCommand } from './redis-connection.js';

export class RedisSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly connection: RedisConnection;
  private readonly streams: NameTemplate;
  private closed = false;
  private failing = false;

  constructor(private readonly config: RedisSinkConfig, index: number, private readonly logger: Logger) {
    this.name = config.name ?? `redis#${index}`;
    this.streams = new NameTemplate(config.stream, config.messageStream);
    this.connection = new RedisConnection(config.url);
  }

  async start(): Promise<void> {
    try {
      await this.connection.exec(encodeCommand(['PING']), 1);
    } catch (error) {
      // A Redis that is down at start is waited for like one that goes down later.
      this.failing = true;
      this.logger.warn({ sink: this.name, err: (error as Error).message }, 'redis not reachable yet; events wait until it is');
    }
  }

  isReady(): boolean {
    return this.connection.connected && !this.failing;
  }

  async write(events: readonly ChangeEvent[]): Promise<void> {
    // Encoded before the first await: while Redis answers (and across
    // retries) only the payload is held, not the decoded events, which can
    // then die young instead of being promoted into the old generation.
    const payload = this.encode(events);
    const count = events.length;
    await deliverWithRetry(() => this.connection.exec(payload, count), {
      sink: this.name,
      logger: this.logger,
      isClosed: () => this.closed,
      permanent: permanentRedisError,
      onFailure: () => { this.failing = true; },
      onSuccess: () => { this.failing = false; },
    });
  }

  /** One XADD per event, as a single pipelined RESP payload. */
  private encode(events: readonly ChangeEvent[]): string {
    const trim = this.config.maxLen === undefined ? '' : `$6\r\nMAXLEN\r\n$1\r\n~\r\n$${String(this.config.maxLen).length}\r\n${this.config.maxLen}\r\n`;
    const head = `*${this.config.maxLen === undefined ? 5 : 8}\r\n$4\r\nXADD\r\n`;
    let payload = '';
    for (const event of events) {
      const domain = domainRecordOf(event);
      if (domain) {
        payload += encodeDomainEntry(domain, trim);
        continue;
      }
      const stream = this.streams.nameFor(event);
      const json = encodeEvent(event, this.config.format);
      payload += `${head}$${Buffer.byteLength(stream)}\r\n${stream}\r\n${trim}$1\r\n*\r\n$5\r\nevent\r\n$${Buffer.byteLength(json)}\r\n${json}\r\n`;
    }
    return payload;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connection.close();
  }
}

/** A domain event (outbox, routed message): fields event (the value), key when there is one, then its headers. */
function encodeDomainEntry(domain: NonNullable<ReturnType<typeof domainRecordOf>>, trim: string): string {
  const fields = ['event', domain.value, ...(domain.key === null ? [] : ['key', domain.key]), ...domain.headers.flat()];
  let entry = `*${3 + fields.length + (trim ? 3 : 0)}\r\n$4\r\nXADD\r\n$${Buffer.byteLength(domain.destination)}\r\n${domain.destination}\r\n${trim}$1\r\n*\r\n`;
  for (const field of fields) entry += `$${Buffer.byteLength(field)}\r\n${field}\r\n`;
  return entry;
}

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
