// RabbitMQ: one persistent message per event, published to a topic
// exchange with the routing key from the template, on a channel in
// publisher-confirm mode; a batch counts as delivered only when RabbitMQ
// confirmed every message (for a durable queue: written to disk).
//
// Messages are `mandatory`: a message that no queue takes comes back
// (basic.return) before its confirm, and counts as an error, not as
// delivered; RabbitMQ would otherwise confirm it and drop it. Messages not
// yet confirmed when the connection dies are lost with it, so the batch is
// published again from the first unconfirmed message (ordered-publish.ts):
// at-least-once, a re-delivery carries the same message_id.
import { readFileSync } from 'node:fs';
import { connect, type ChannelModel, type ConfirmChannel, type Message } from 'amqplib';
import type { Logger } from 'pino';
import type { Sink, SinkContext } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { RabbitmqSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { deliverWithRetry } from '../retry.js';
import { NameTemplate } from '../stream-name.js';
import { BrokerMessages, type BrokerMessage } from '../broker-message.js';
import { publishFrom } from '../ordered-publish.js';
import { declareExchange } from './exchange.js';

interface Connection {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** Messages RabbitMQ returned as unroutable, by message_id, until their confirm arrives. */
  returned: Map<string, Message>;
}

export class RabbitmqSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly url: string;
  private readonly address: string;
  private readonly messages: BrokerMessages;
  private readonly contentType: string;
  private readonly timeoutMs: number;
  /** A connect, the AMQP handshake included, waits at most this long. */
  private readonly connectTimeoutMs: number;
  private connection: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  /** A connection opened once: a refusal after that (a connection limit, a node going down) is waited out. */
  private connectedOnce = false;
  private blocked: string | null = null;
  private closed = false;
  private failing = false;
  private lastFailure: string | undefined;
  private retriedCount = 0;
  /** While publishing: when RabbitMQ last confirmed something (a watchdog drops a connection that went silent). */
  private waitingSince: number | null = null;
  private readonly watchdog: NodeJS.Timeout;

  constructor(private readonly config: RabbitmqSinkConfig, index: number, private readonly logger: Logger, context: SinkContext = { slot: 'walrelay' }) {
    this.name = config.name ?? `rabbitmq#${index}`;
    this.timeoutMs = config.timeoutSeconds * 1000;
    this.connectTimeoutMs = Math.min(10_000, this.timeoutMs);
    this.url = withHeartbeat(config.url, config.timeoutSeconds);
    this.address = redactUrl(this.url);
    this.messages = new BrokerMessages(config.format, new NameTemplate(config.routingKey, config.messageRoutingKey), { database: context.database, debezium: config.debezium });
    // The CloudEvents AMQP binding's structured mode names its own media type.
    this.contentType = config.format === 'cloudevents' ? 'application/cloudevents+json' : 'application/json';
    this.watchdog = setInterval(() => this.checkProgress(), Math.max(50, Math.min(1000, this.timeoutMs / 4)));
    this.watchdog.unref();
  }

  async start(): Promise<void> {
    try {
      await this.open();
    } catch (error) {
      if (error instanceof WalrelayError && !error.retriable) throw error;
      // A broker that is down at start is waited for like one that goes down later.
      this.noteFailure(error);
      this.logger.warn({ sink: this.name, err: this.lastFailure }, 'rabbitmq not reachable yet; events wait until it is');
    }
  }

  isReady(): boolean {
    return this.connection !== null && this.blocked === null && !this.failing;
  }

  notReadyReason(): string | undefined {
    if (this.blocked !== null) return `rabbitmq at ${this.address} blocks publishers: ${this.blocked}`;
    return this.lastFailure ?? (this.connection ? undefined : `no connection to rabbitmq at ${this.address}`);
  }

  retries(): number {
    return this.retriedCount;
  }

  async write(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    // Encoded before the first await (see RedisSink.write).
    const messages = events.flatMap((event) => this.messages.of(event));
    let next = 0;
    await deliverWithRetry(async () => {
      const connection = await this.open();
      this.waitingSince = Date.now();
      try {
        const outcome = await publishFrom(messages, next, (message) => this.publish(connection, message));
        next = outcome.next;
        if (outcome.error !== undefined) throw outcome.error;
      } finally {
        this.waitingSince = null;
      }
    }, {
      sink: this.name,
      logger: this.logger,
      isClosed: () => this.closed,
      signal,
      permanent: (error) => (error instanceof WalrelayError && !error.retriable ? error : null),
      onFailure: (error) => { this.retriedCount++; this.noteFailure(error); },
      onSuccess: () => { this.failing = false; this.lastFailure = undefined; },
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    const connection = this.connection ?? (await this.connecting?.catch(() => null));
    this.connection = null;
    await connection?.model.close().catch(() => undefined);
  }

  /** Hands one message to the channel (waiting while its buffer is full); its confirm settles `acknowledged`. */
  private async publish(connection: Connection, message: BrokerMessage): Promise<{ acknowledged: Promise<void> }> {
    let settle!: (error: unknown) => void;
    const acknowledged = new Promise<void>((resolve, reject) => { settle = (error) => (error ? reject(error) : resolve()); });
    const room = connection.channel.publish(this.config.exchange, message.destination, Buffer.from(message.body), {
      persistent: true,
      mandatory: true,
      messageId: message.id,
      contentType: this.contentType,
      appId: 'walrelay',
      headers: Object.fromEntries(message.headers),
    }, (error: unknown) => {
      if (error) return settle(this.connectionError(error));
      this.waitingSince = Date.now();
      // A returned message's basic.return arrives before its confirm.
      const returned = connection.returned.get(message.id);
      if (returned === undefined) return settle(null);
      connection.returned.delete(message.id);
      settle(new WalrelayError('RABBITMQ_UNROUTABLE', `rabbitmq returned message ${message.id} as unroutable (${(returned.fields as { replyText?: string }).replyText ?? "NO_ROUTE"}): no queue is bound to exchange "${this.config.exchange}" for routing key "${message.destination}" (sink ${this.name})`, {
        retriable: true,
        hint: 'bind a queue to the exchange with a pattern that matches the routing key (or give the exchange an alternate-exchange); walrelay publishes the message again until a queue takes it',
      }));
    });
    if (!room) await drained(connection);
    return { acknowledged };
  }

  /** The connection and confirm channel, opened (and the exchange declared) when there is none. */
  private open(): Promise<Connection> {
    if (this.connection) return Promise.resolve(this.connection);
    this.connecting ??= this.connect().finally(() => { this.connecting = null; });
    return this.connecting;
  }

  private async connect(): Promise<Connection> {
    let model: ChannelModel;
    try {
      model = await connect(this.url, {
        timeout: this.connectTimeoutMs,
        // Without it, Nagle's algorithm holds a small batch's last frames until the broker's delayed ACK (40 ms).
        noDelay: true,
        clientProperties: { connection_name: `walrelay ${this.name}` },
        ...this.tlsOptions(),
      });
    } catch (error) {
      throw this.connectError(error);
    }
    try {
      model.on('error', (error: Error) => this.noteFailure(this.connectionError(error)));
      model.on('blocked', (reason: string) => {
        this.blocked = reason;
        this.logger.warn({ sink: this.name, reason }, 'rabbitmq blocks publishers (resource alarm); events wait');
      });
      model.on('unblocked', () => { this.blocked = null; this.logger.info({ sink: this.name }, 'rabbitmq accepts publishers again'); });
      await declareExchange(model, this.config.exchange, this.name, (exchange) => this.logger.info({ sink: this.name, exchange }, 'declared rabbitmq exchange (topic, durable)'));
      const channel = await model.createConfirmChannel();
      const connection: Connection = { model, channel, returned: new Map() };
      channel.on('error', (error: Error) => this.noteFailure(this.connectionError(error)));
      channel.on('return', (message: Message) => {
        if (message.properties.messageId !== undefined) connection.returned.set(String(message.properties.messageId), message);
      });
      // A channel closed alone (a channel error) is as good as a lost connection: start over with a new one.
      const lost = () => {
        if (this.connection !== connection) return;
        this.connection = null;
        this.blocked = null;
        if (!this.failing) this.noteFailure(new Error(`lost the connection to rabbitmq at ${this.address}`));
        if (!this.closed) this.logger.warn({ sink: this.name, err: this.lastFailure }, 'rabbitmq connection lost; reconnecting (unconfirmed messages are published again)');
        model.close().catch(() => undefined);
      };
      model.on('close', lost);
      channel.on('close', lost);
      if (this.closed) {
        await model.close().catch(() => undefined);
        throw new WalrelayError('SINK_CLOSED', `${this.name} closed`, { retriable: true });
      }
      this.connection = connection;
      this.connectedOnce = true;
      this.failing = false;
      this.lastFailure = undefined;
      return connection;
    } catch (error) {
      await model.close().catch(() => undefined);
      throw error;
    }
  }

  /** While messages wait for confirms: a connection that confirmed nothing for timeoutSeconds is dropped (its messages are published again). */
  private checkProgress(): void {
    if (this.connection === null) {
      // Nothing to write, but /readyz should turn ready again when the broker is back.
      if (!this.closed && this.connecting === null && this.waitingSince === null) this.open().catch((error) => this.noteFailure(error));
      return;
    }
    if (this.waitingSince === null || this.blocked !== null || Date.now() - this.waitingSince < this.timeoutMs) return;
    const connection = this.connection;
    this.noteFailure(new WalrelayError('RABBITMQ_TIMEOUT', `rabbitmq at ${this.address} confirmed nothing for ${this.config.timeoutSeconds} s`, { retriable: true }));
    this.logger.warn({ sink: this.name, err: this.lastFailure }, 'rabbitmq is not confirming; reconnecting and publishing again');
    this.connection = null;
    this.waitingSince = Date.now();
    // Closing the socket fails every confirm still awaited, which ends the attempt.
    (connection.model as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  }

  private tlsOptions(): Record<string, unknown> {
    const tls = this.config.tls;
    if (!tls) return {};
    const read = (file: string | undefined) => (file ? readFileSync(file) : undefined);
    return { ca: tls.ca ? [read(tls.ca)] : undefined, cert: read(tls.cert), key: read(tls.key) };
  }

  /** A failed connect: wrong credentials or vhost stop the start; anything else is waited out. */
  private connectError(error: unknown): WalrelayError {
    const text = (error as Error)?.message ?? String(error);
    // By reply name only: amqplib writes "403 (ACCESS-REFUSED)", and a bare 403 or 530 also matches the port in a
    // connect error ("ECONNREFUSED 127.0.0.1:40312"), which would stop a start that should wait.
    if (/ACCESS.REFUSED/.test(text)) {
      return new WalrelayError('RABBITMQ_AUTH', `rabbitmq at ${this.address} refused the login: ${text} (sink ${this.name})`, { hint: 'check the user and password in the url (or urlFile) and the user\'s permissions on the vhost' });
    }
    // RabbitMQ answers connection.open with connection.close (amqplib reports it without the reply code) for a vhost
    // that is missing or closed to the user (530), and also for a connection limit reached, a vhost that is down or a
    // node shutting down: a stop only while no connection ever opened (a start with a wrong vhost), later a wait.
    if (/NOT.ALLOWED|Expected ConnectionOpenOk; got <ConnectionClose/.test(text)) {
      return new WalrelayError('RABBITMQ_VHOST', `rabbitmq at ${this.address} refused vhost "${this.vhost()}" (sink ${this.name}): it does not exist, ` +
        'the user may not use it, or it refuses connections for now (a connection limit, the vhost or node going down)', {
        retriable: this.connectedOnce, hint: 'check the vhost in the url and that the user may access it' });
    }
    // amqplib's timeout covers the handshake too: a port that accepts TCP but does not speak AMQP (amqp:// to the TLS
    // port 5671, another server's port) ends as "connect ETIMEDOUT" after timeoutSeconds.
    const hint = /ETIMEDOUT/.test(text)
      ? `no AMQP handshake within ${this.connectTimeoutMs / 1000} s: check that the url names RabbitMQ's AMQP port (5672; amqps:// for 5671) and that it is reachable`
      : 'walrelay retries until RabbitMQ is reachable; check the url\'s host and port';
    return new WalrelayError('RABBITMQ_UNREACHABLE', `cannot connect to rabbitmq at ${this.address}: ${text}`, { retriable: true, hint });
  }

  /** The vhost the url names, as amqplib reads it ('/' for none). */
  private vhost(): string {
    const path = new URL(this.url).pathname.slice(1);
    try {
      return decodeURIComponent(path) || '/';
    } catch {
      return path;
    }
  }

  private connectionError(error: unknown): WalrelayError {
    if (error instanceof WalrelayError) return error;
    const text = (error as Error)?.message ?? String(error);
    return new WalrelayError('RABBITMQ_DISCONNECTED', `rabbitmq at ${this.address}: ${text}`, { retriable: true, cause: error });
  }

  private noteFailure(error: unknown): void {
    this.failing = true;
    this.lastFailure = describeError(error);
  }
}

/** Resolves when the channel can take more, or when it closed (the confirms then fail). */
function drained(connection: Connection): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      connection.channel.off('drain', done);
      connection.channel.off('close', done);
      resolve();
    };
    connection.channel.once('drain', done);
    connection.channel.once('close', done);
  });
}

/** A heartbeat that notices a silent broker within about timeoutSeconds, unless the URL sets its own. */
function withHeartbeat(url: string, timeoutSeconds: number): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(Math.max(1, Math.floor(timeoutSeconds / 2))));
  return parsed.toString();
}

/** The URL without its password, for logs and /readyz. */
function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  parsed.search = '';
  return parsed.toString();
}
