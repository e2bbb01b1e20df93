// NATS JetStream: one JetStream publish per event, subject from the
// template, header Nats-Msg-Id = the event id, and a batch counts as
// delivered only when every publish has its PubAck (the stream stored it).
//
// Duplicates: JetStream drops a message whose Nats-Msg-Id it saw within the
// stream's duplicate window (2 minutes by default), so a batch published
// again (after a lost connection, a timeout, a walrelay kill -9 and restart
// within the window) stores each event once. Order: one connection keeps
// publish order; a retry starts at the first message without a PubAck
// (ordered-publish.ts).
//
// The connection reconnects forever (nats.js's default is 10 attempts), and
// while it is down the sink is not ready (/readyz 503) and publishes wait.
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { Sink, SinkContext } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { NatsSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { deliverWithRetry } from '../retry.js';
import { NameTemplate } from '../stream-name.js';
import { debeziumTemplates, type FormatContext } from '../formats.js';
import { BrokerMessages, type BrokerMessage } from '../broker-message.js';
import { publishFrom } from '../ordered-publish.js';
import { compileTablePatterns } from '../../relay/route/table-pattern.js';
import { connectionOptions } from './options.js';
import { checkSubject, isNoStream } from './stream-check.js';

export class NatsSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly subjects: NameTemplate;
  private readonly messages: BrokerMessages;
  private readonly timeoutMs: number;
  private readonly keyPrefix: string;
  private connection: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private connecting: Promise<void> | null = null;
  private connected = false;
  /** Publishes waiting for their PubAck: failed at once when the connection drops, instead of at their timeout. */
  private readonly waiting = new Set<(error: Error) => void>();
  private closed = false;
  private failing = false;
  private lastFailure: string | undefined;
  private retriedCount = 0;

  constructor(private readonly config: NatsSinkConfig, index: number, private readonly logger: Logger, private readonly context: SinkContext = { slot: 'walrelay' }) {
    this.name = config.name ?? `nats#${index}`;
    this.keyPrefix = `sinks[${index}]`;
    this.timeoutMs = config.timeoutSeconds * 1000;
    const formatContext: FormatContext = { database: context.database, debezium: config.debezium };
    const debezium = config.format === 'debezium' ? debeziumTemplates(formatContext) : undefined;
    this.subjects = new NameTemplate(config.subject ?? debezium?.table ?? 'walrelay.{schema}.{table}', config.messageSubject ?? debezium?.message ?? 'walrelay.messages');
    this.messages = new BrokerMessages(config.format, this.subjects, formatContext);
    // Secret files are read here, so that a missing one stops the start with the key's name.
    connectionOptions(config, this.name, this.keyPrefix);
  }

  async start(): Promise<void> {
    try {
      await this.connect();
    } catch (error) {
      if (error instanceof WalrelayError && !error.retriable) throw error;
      // A server that is down at start is waited for like one that goes down later.
      this.noteFailure(error);
      this.logger.warn({ sink: this.name, err: this.lastFailure }, 'nats not reachable yet; events wait until it is');
      void this.reconnectInBackground();
      return;
    }
    await this.checkSubjects();
  }

  isReady(): boolean {
    return this.connected && !this.failing;
  }

  notReadyReason(): string | undefined {
    return this.lastFailure ?? (this.connected ? undefined : `no connection to nats at ${this.config.servers.join(',')}`);
  }

  retries(): number {
    return this.retriedCount;
  }

  async write(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    // Encoded before the first await (see RedisSink.write).
    const messages = events.flatMap((event) => this.messages.of(event));
    let next = 0;
    let duplicates = 0;
    await deliverWithRetry(async () => {
      const js = this.publisher();
      const outcome = await publishFrom(messages, next, (message) => ({
        acknowledged: this.publish(js, message).then((ack) => { if (ack.duplicate) duplicates++; }),
      }));
      next = outcome.next;
      if (outcome.error !== undefined) throw this.publishError(outcome.error, messages[outcome.next]);
    }, {
      sink: this.name,
      logger: this.logger,
      isClosed: () => this.closed,
      signal,
      permanent: (error) => (error instanceof WalrelayError && !error.retriable ? error : null),
      onFailure: (error) => { this.retriedCount++; this.noteFailure(error); },
      onSuccess: () => { this.failing = false; this.lastFailure = undefined; },
    });
    if (duplicates > 0) this.logger.info({ sink: this.name, duplicates }, 'nats: JetStream already had some events of the batch (same Nats-Msg-Id); stored once');
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = null;
    this.connected = false;
    await connection?.close().catch(() => undefined);
  }

  private publish(js: JetStreamClient, message: BrokerMessage): Promise<PubAck> {
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => { this.waiting.delete(fail); reject(error); };
      this.waiting.add(fail);
      js.publish(message.destination, message.body, { msgID: message.id, headers: this.headersOf(message), timeout: this.timeoutMs })
        .then((ack) => { this.waiting.delete(fail); resolve(ack); }, fail);
    });
  }

  /** Fails every publish still waiting for its PubAck (the connection they were sent on is gone). */
  private failWaiting(error: Error): void {
    for (const fail of [...this.waiting]) fail(error);
  }

  private headersOf(message: BrokerMessage): MsgHdrs {
    const headers = natsHeaders();
    // A header value is one line: a line break in a domain event's header would end it early.
    for (const [name, value] of message.headers) headers.append(name, /[\r\n]/.test(value) ? value.replace(/[\r\n]+/g, ' ') : value);
    return headers;
  }

  private publisher(): JetStreamClient {
    if (!this.js || !this.connected) {
      throw new WalrelayError('NATS_DISCONNECTED', `no connection to nats at ${this.config.servers.join(',')}`, { retriable: true, hint: 'walrelay reconnects and publishes the batch again' });
    }
    return this.js;
  }

  /** What a failed publish means for the operator. */
  private publishError(error: unknown, message: BrokerMessage | undefined): Error {
    if (isNoStream(error) && message) {
      return new WalrelayError('NATS_NO_STREAM', `no JetStream stream captures subject ${message.destination} (sink ${this.name})`, {
        retriable: true,
        hint: 'add the subject to a stream\'s subjects (e.g. nats stream add --subjects "walrelay.>"), or change the sink\'s subject template; walrelay publishes again until it is captured',
      });
    }
    const text = (error as Error)?.message ?? String(error);
    if (/timeout/i.test(text)) {
      return new WalrelayError('NATS_TIMEOUT', `no PubAck within ${this.config.timeoutSeconds} s for subject ${message?.destination}`, {
        retriable: true,
        hint: `the server or its stream is slow or unreachable; walrelay publishes again (raise ${this.keyPrefix}.timeoutSeconds if it is only slow)`,
      });
    }
    if (/permission/i.test(text)) {
      return new WalrelayError('NATS_PERMISSION', `${text} (sink ${this.name})`, { retriable: true, hint: 'allow the user to publish to the sink\'s subjects (and to receive on _INBOX.> for the PubAck)' });
    }
    return error instanceof Error ? error : new Error(text);
  }

  private async connect(): Promise<void> {
    let connection: NatsConnection;
    try {
      connection = await connect(connectionOptions(this.config, this.name, this.keyPrefix));
    } catch (error) {
      const text = (error as Error)?.message ?? String(error);
      if (/authoriz|authenticat/i.test(text)) {
        throw new WalrelayError('NATS_AUTH', `${text} (sink ${this.name})`, { hint: 'check the sink\'s user/password, token, nkeySeedFile or credsFile' });
      }
      throw new WalrelayError('NATS_UNREACHABLE', `cannot connect to nats at ${this.config.servers.join(',')}: ${text}`, { retriable: true });
    }
    if (this.closed) {
      await connection.close();
      return;
    }
    this.connection = connection;
    this.js = jetstream(connection, { timeout: this.timeoutMs });
    this.connected = true;
    this.failing = false;
    this.lastFailure = undefined;
    void this.watch(connection);
  }

  /** Follows the connection's state: /readyz, and publishes waiting on a connection that is gone. */
  private async watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        this.noteFailure(new Error(`lost the connection to nats at ${status.server}`));
        this.logger.warn({ sink: this.name, server: status.server }, 'nats connection lost; reconnecting (nothing is confirmed until the events are stored)');
        this.failWaiting(new WalrelayError('NATS_DISCONNECTED', `lost the connection to nats at ${status.server}`, { retriable: true }));
      } else if (status.type === 'reconnect') {
        this.connected = true;
        this.logger.info({ sink: this.name, server: status.server }, 'nats reconnected');
      } else if (status.type === 'error') {
        this.noteFailure(status.error);
      }
    }
    // The iterator ends when the connection is closed: by close(), or by nats.js giving up (e.g. refused credentials).
    if (this.closed || this.connection !== connection) return;
    const why = await connection.closed();
    this.connection = null;
    this.js = null;
    this.connected = false;
    this.noteFailure(why ?? new Error('nats connection closed'));
    this.failWaiting(new WalrelayError('NATS_DISCONNECTED', 'nats connection closed', { retriable: true }));
    this.logger.warn({ sink: this.name, err: this.lastFailure }, 'nats connection closed; connecting again');
    void this.reconnectInBackground();
  }

  /** Connects again and again (with the retry's backoff) until it works or the sink is closed. */
  private reconnectInBackground(): Promise<void> {
    this.connecting ??= (async () => {
      let delay = 500;
      while (!this.closed && !this.connection) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (this.closed) break;
        try {
          await this.connect();
          this.logger.info({ sink: this.name }, 'nats connected');
          await this.checkSubjects().catch((error) => {
            this.noteFailure(error);
            this.logger.error({ sink: this.name, err: describeError(error) }, 'nats: a subject is captured by no stream; its events wait until one captures it');
          });
        } catch (error) {
          this.noteFailure(error);
          delay = Math.min(5000, delay * 2);
        }
      }
      this.connecting = null;
    })();
    return this.connecting;
  }

  /**
   * The subjects known before anything streams: the message subject, the
   * subjects of the tables named in the sink's or the source's `tables`, and
   * the outbox and message routes' destinations (a pattern or a placeholder
   * is checked as a wildcard subject).
   */
  private async checkSubjects(): Promise<void> {
    const connection = this.connection;
    if (!connection) return;
    const subjects = new Set<string>([this.subjects.nameFor({ id: '', op: 'message', lsn: '', commitLsn: null, xid: null, commitTime: null })]);
    const patterns = this.config.tables;
    const matches = compileTablePatterns(patterns);
    const literal = (patterns ?? []).filter((pattern) => !pattern.includes('*'));
    const sourceTables = (this.context.tables ?? []).filter((table) => patterns === undefined || matches(table));
    for (const table of [...literal, ...sourceTables]) subjects.add(this.subjectOf(table));
    // Domain events reach the sink when its `tables` take the outbox table (messages: when it has no `tables`).
    const routes = (this.context.destinations ?? []).filter((route) => (route.table === undefined ? patterns === undefined : matches(route.table)));
    const wildcards = routes.map((route) => route.destination.replace(/\{[^{}]*\}/g, '*'));
    // Without a list of tables, a pattern is checked as a wildcard subject (all tables: unless routes make domain events of some).
    if (sourceTables.length === 0) {
      const unlisted = patterns === undefined ? (routes.some((route) => route.table !== undefined) ? [] : ['*.*']) : patterns.filter((item) => item.includes('*'));
      wildcards.push(...unlisted.map((pattern) => this.subjectOf(pattern)));
    }
    // Only placeholders that fill whole tokens make a valid wildcard subject; other templates are checked when published to.
    for (const subject of wildcards) if (subject.split('.').every((token) => token === '*' || !token.includes('*'))) subjects.add(subject);
    const missing: string[] = [];
    for (const subject of subjects) {
      const check = await checkSubject(connection, subject, Math.min(this.timeoutMs, 5000));
      if (check.captured === false) missing.push(subject);
      else if (check.captured === 'unknown') this.logger.warn({ sink: this.name, subject, err: check.reason }, 'nats: could not check that a JetStream stream captures the subject');
    }
    if (missing.length > 0) {
      throw new WalrelayError('NATS_NO_STREAM', `no JetStream stream captures subject${missing.length > 1 ? 's' : ''} ${missing.join(', ')} on ${this.config.servers.join(',')} (sink ${this.name}); a plain publish there would be lost`, {
        kind: 'config',
        hint: 'create a stream for them (e.g. nats stream add walrelay --subjects "walrelay.>"), add them to an existing stream\'s subjects, or change the sink\'s subject / messageSubject',
      });
    }
  }

  private subjectOf(table: string): string {
    const dot = table.indexOf('.');
    return this.subjects.nameFor({ id: '', op: 'insert', schema: table.slice(0, dot), table: table.slice(dot + 1), lsn: '', commitLsn: null, xid: null, commitTime: null });
  }

  private noteFailure(error: unknown): void {
    this.failing = true;
    this.lastFailure = describeError(error);
  }
}
