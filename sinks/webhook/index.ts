// Webhooks: each event (or `batchSize` events, as a JSON array) POSTed to
// `url`, signed the Standard Webhooks way, `concurrency` requests in flight
// but never two holding the same row key (ordering.ts), so each row's
// events arrive in commit order. A write resolves when every request got a
// 2xx, or its events were handed to the `deadLetter` sink and acknowledged
// there: only then may the checkpoint pass them.
//
// At-least-once: a request whose answer was lost (timeout, crash) is sent
// again with the same body and webhook-id, so receivers deduplicate by it.
import type { Logger } from 'pino';
import type { Sink, SinkContext, SinkMetrics } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import { keyJson } from '../../relay/route/event.js';
import type { WebhookSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { debeziumValues, encodeEvent, type FormatContext } from '../formats.js';
import { domainRecordOf } from '../../relay/stages/domain-event.js';
import { deadLetterEvent, type DeadLetterWriter, type DeliveryFailure } from '../dead-letter.js';
import { WebhookClient, type HttpAnswer } from './request.js';
import { runOrdered } from './ordering.js';
import { signerFor, type Signer } from './signing.js';
import { backoffMs, isRetriable } from './retry-policy.js';
import { abandoned } from '../retry.js';

/** An event (or one of a Debezium event's records) as it goes out: its id, JSON, the header naming a domain event's destination, its ordering lane. */
interface Item {
  event: ChangeEvent;
  /** webhook-id: the event's id; "<id>+n" for a Debezium event's n-th further record. */
  id: string;
  payload: string;
  destination: string | undefined;
  /** null: orders against everything (ordering.ts). */
  lane: string | null;
}

interface Request {
  items: Item[];
  destination: string | undefined;
}

/** One request's trouble, for /readyz and the logs. */
interface Trouble {
  reason: string;
}

/** How often a sink that keeps failing says so again. */
const LOG_EVERY_MS = 10_000;

export class WebhookSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly client: WebhookClient;
  private readonly sign: Signer | null;
  private readonly baseHeaders: Record<string, string>;
  private readonly contentType: string;
  private readonly formatContext: FormatContext;
  private readonly metrics: SinkMetrics | undefined;
  private deadLetter: DeadLetterWriter | null = null;
  private closed = false;
  /** Requests whose last attempt failed and that are waiting to try again. */
  private readonly troubled = new Set<Trouble>();
  /** Start times of the attempts under way: one older than `stalledAfterMs` makes the sink not ready. */
  private readonly attemptsUnderWay = new Set<{ startedAt: number }>();
  private readonly stalledAfterMs: number;
  private readonly sleepers = new Set<() => void>();
  private lastWarnAt = 0;
  private lastWarnKind = '';

  constructor(private readonly config: WebhookSinkConfig, index: number, private readonly logger: Logger, private readonly context: SinkContext = { slot: 'walrelay' }) {
    this.name = config.name ?? `webhook#${index}`;
    this.sign = config.secret === undefined ? null : signerFor(config.secret);
    this.client = new WebhookClient(config.url, config.concurrency, config.timeoutSeconds * 1000);
    this.formatContext = { database: context.database, debezium: config.debezium };
    this.metrics = context.metrics;
    // CloudEvents HTTP binding, structured content mode (a batch: its batched mode).
    this.contentType = config.format === 'cloudevents' ? (config.batchSize > 1 ? 'application/cloudevents-batch+json' : 'application/cloudevents+json') : 'application/json';
    this.baseHeaders = { 'user-agent': 'walrelay', ...(config.headers ?? {}) };
    this.stalledAfterMs = Math.max(1000, (config.timeoutSeconds * 1000) / 3);
  }

  async start(): Promise<void> {
    if (this.config.deadLetter !== undefined) {
      if (!this.context.deadLetters) throw new WalrelayError('CONFIG_INVALID', `sink ${this.name}: deadLetter needs a running relay to name sinks in`, { kind: 'config' });
      this.deadLetter = this.context.deadLetters.writerFor(this.config.deadLetter, this.name);
    }
  }

  isReady(): boolean {
    return this.troubled.size === 0 && this.oldestAttemptMs() < this.stalledAfterMs;
  }

  notReadyReason(): string | undefined {
    // The latest failure says most about the receiver now; the count, how much is held up.
    let latest: Trouble | undefined;
    for (const trouble of this.troubled) latest = trouble;
    if (latest) return this.troubled.size === 1 ? latest.reason : `${latest.reason}; ${this.troubled.size} requests failing`;
    const waited = this.oldestAttemptMs();
    if (waited >= this.stalledAfterMs) return `${this.client.address} has not answered a request for ${(waited / 1000).toFixed(1)} s`;
    return undefined;
  }

  private oldestAttemptMs(): number {
    let oldest = 0;
    const now = Date.now();
    for (const attempt of this.attemptsUnderWay) oldest = Math.max(oldest, now - attempt.startedAt);
    return oldest;
  }

  async write(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    const requests = this.group(events.flatMap((event) => this.items(event)));
    await runOrdered(requests.map((request) => ({
      lanes: lanesOf(request),
      run: () => this.deliver(request, signal),
    })), this.config.concurrency);
  }

  /**
   * The event's JSON in the sink's format (a domain event: its value) with the lane that orders it. With format
   * debezium an event can be several records: a key change is the delete of the old key and the create of the
   * new one (a delete's tombstone, which only compacted Kafka topics need, is not sent).
   */
  private items(event: ChangeEvent): Item[] {
    const domain = domainRecordOf(event);
    if (domain) return [{ event, id: event.id, payload: domain.value, destination: domain.destination, lane: `d\u0000${domain.destination}\u0000${domain.key ?? ''}` }];
    const lane = laneOf(event);
    if (this.config.format !== 'debezium') return [{ event, id: event.id, payload: encodeEvent(event, this.config.format, this.formatContext), destination: undefined, lane }];
    return debeziumValues(event, this.formatContext)
      .map((payload, index) => ({ event, id: index === 0 ? event.id : `${event.id}+${index}`, payload, destination: undefined, lane }));
  }

  /** Consecutive events into requests of up to batchSize; a domain event shares a request only with its destination's. */
  private group(items: Item[]): Request[] {
    const requests: Request[] = [];
    let current: Request | null = null;
    for (const item of items) {
      if (current === null || current.items.length >= this.config.batchSize || current.destination !== item.destination) {
        current = { items: [], destination: item.destination };
        requests.push(current);
      }
      current.items.push(item);
    }
    return requests;
  }

  private body(request: Request): string {
    if (this.config.batchSize === 1) return request.items[0].payload;
    let body = '[';
    request.items.forEach((item, index) => { body += (index === 0 ? '' : ',') + item.payload; });
    return body + ']';
  }

  private headers(request: Request, body: string): Record<string, string> {
    const id = request.items[0].id;
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': request.destination === undefined ? this.contentType : 'application/json',
      ...this.baseHeaders,
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
    };
    if (this.sign) headers['webhook-signature'] = this.sign(id, timestamp, body);
    if (request.destination !== undefined) headers['walrelay-destination'] = request.destination;
    return headers;
  }

  /** Sends one request until a 2xx, or until its events are dead-lettered; throws only when the sink closes or the session that produced the events ended. */
  private async deliver(request: Request, signal: AbortSignal | undefined): Promise<void> {
    const body = this.body(request);
    const trouble: Trouble = { reason: '' };
    const firstAttemptAt = new Date().toISOString();
    try {
      for (let attempts = 1; ; attempts++) {
        if (this.closed) throw new WalrelayError('SINK_CLOSED', `${this.name} closed before the batch was acknowledged`, { retriable: true });
        if (signal?.aborted) throw abandoned(this.name);
        const attempt = { startedAt: Date.now() };
        this.attemptsUnderWay.add(attempt);
        let answer: HttpAnswer | undefined;
        let error: unknown;
        try {
          answer = await this.client.post(body, this.headers(request, body));
        } catch (caught) {
          error = caught;
        } finally {
          this.attemptsUnderWay.delete(attempt);
        }
        this.metrics?.webhookRequest(this.name, (Date.now() - attempt.startedAt) / 1000, answer ? String(answer.status) : error instanceof Error && error.name === 'RequestTimeout' ? 'timeout' : 'error');
        if (answer && answer.status >= 200 && answer.status < 300) {
          if (this.troubled.delete(trouble) && this.troubled.size === 0) this.logger.info({ sink: this.name, attempts }, 'webhook delivering again');
          return;
        }
        if (this.closed) continue; // the error is the close itself
        const failure: DeliveryFailure = {
          ...(answer ? { status: answer.status, body: answer.body } : { error: describeError(error) }),
          attempts,
          firstAttemptAt,
          lastAttemptAt: new Date().toISOString(),
        };
        const retriable = answer === undefined || isRetriable(answer.status);
        // A permanent refusal will not change by itself: with maxAttempts 0 it goes to the dead-letter sink at once.
        const exhausted = this.config.maxAttempts > 0 ? attempts >= this.config.maxAttempts : !retriable;
        if (exhausted && this.deadLetter) {
          await this.sendToDeadLetter(request, failure);
          this.troubled.delete(trouble);
          return;
        }
        trouble.reason = `${this.client.address} ${answer ? `answered ${answer.status}` : `failed: ${describeError(error)}`}` +
          (exhausted ? ` (attempt ${attempts}; no deadLetter sink, so walrelay keeps retrying)` : ` (attempt ${attempts}, retrying)`);
        this.troubled.delete(trouble); // re-added last: the latest failure is the one /readyz shows
        this.troubled.add(trouble);
        this.metrics?.retried(this.name, 1);
        const delay = backoffMs(attempts, answer?.retryAfterMs);
        this.warn(exhausted, request, failure, delay);
        await this.sleep(delay, signal);
      }
    } finally {
      this.troubled.delete(trouble);
    }
  }

  private async sendToDeadLetter(request: Request, failure: DeliveryFailure): Promise<void> {
    const letters = request.items.map((item) => deadLetterEvent(item.event, this.name, item.payload, failure));
    await this.deadLetter!(letters);
    this.metrics?.deadLettered(this.name, letters.length);
    this.logger.warn({ sink: this.name, deadLetter: this.config.deadLetter, events: letters.length, firstId: letters[0].id, status: failure.status, error: failure.error, attempts: failure.attempts },
      'webhook gave up on events; they went to the dead-letter sink');
  }

  /** At most one warning per LOG_EVERY_MS per sink and kind of failure: 16 requests retrying are one problem. */
  private warn(exhausted: boolean, request: Request, failure: DeliveryFailure, retryInMs: number): void {
    const now = Date.now();
    // A new kind of trouble (a refusal after timeouts) is said at once.
    const kind = `${exhausted}:${failure.status ?? failure.error}`;
    if (now - this.lastWarnAt < LOG_EVERY_MS && kind === this.lastWarnKind) return;
    this.lastWarnAt = now;
    this.lastWarnKind = kind;
    const details = { sink: this.name, url: this.client.address, firstId: request.items[0].id, status: failure.status, body: failure.body, err: failure.error, attempts: failure.attempts, retryInMs: Math.round(retryInMs) };
    if (exhausted) {
      this.logger.error(details, this.config.maxAttempts > 0
        ? 'webhook: maxAttempts reached but no deadLetter sink is configured; retrying (nothing after these events is confirmed until they are delivered)'
        : 'webhook refuses events permanently and no deadLetter sink is configured; retrying (nothing after these events is confirmed until they are delivered)');
    } else {
      this.logger.warn(details, 'webhook delivery failed; retrying (nothing is confirmed until it succeeds)');
    }
  }

  /** Waits ms, or less when the sink closes or `signal` aborts. */
  private sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => { clearTimeout(timer); this.sleepers.delete(wake); signal?.removeEventListener('abort', wake); resolve(); };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.sleepers]) wake();
    this.client.close();
  }
}

/** Events of one row share a lane; a change of the row's key orders against everything (it concerns two keys). */
function laneOf(event: ChangeEvent): string | null {
  switch (event.op) {
    case 'insert': case 'delete': case 'read':
      // A table without a key orders all its rows on one lane.
      return `r\u0000${event.schema}.${event.table}\u0000${keyJson(event) ?? ''}`;
    case 'update':
      return changesKey(event) ? null : `r\u0000${event.schema}.${event.table}\u0000${keyJson(event) ?? ''}`;
    case 'message':
      return `m\u0000${event.prefix ?? ''}`;
    default:
      // truncate, gap, schema, begin, commit concern more than one row.
      return null;
  }
}

/**
 * An update whose old row (sent for a key change, or always with REPLICA IDENTITY FULL) has other key values.
 * Compared as parsed JSON: two integers beyond 2^53 that differ only in their last digits look equal, and such a
 * key change is then ordered on the new key's lane only.
 */
function changesKey(event: ChangeEvent): boolean {
  const { key, old } = event;
  if (!key || !old) return false;
  return Object.keys(key).some((column) => column in old && old[column] !== key[column]);
}

function lanesOf(request: Request): string[] | null {
  const lanes: string[] = [];
  for (const item of request.items) {
    if (item.lane === null) return null;
    lanes.push(item.lane);
  }
  return lanes;
}
