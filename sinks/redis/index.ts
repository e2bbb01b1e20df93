// Redis Streams: one XADD per event (field `event`), a batch sent as one
// pipelined payload (xadd-payloads.ts) over connection.ts.
// At-least-once: a batch that fails part-way is sent again whole, so a
// re-delivered event appears twice with the same `id`.
// A hung Redis is noticed by the connection's reply timeout during writes,
// and by a PING when the sink has had nothing to write for a while.
// With `exactlyOnce: true` a batch is one atomic script guarded by a
// checkpoint key instead (exactly-once.ts): every event id once per stream.
// With `cluster: true` or `sentinel` the entries go through a topology
// (cluster.ts, sentinel.ts) instead of the single connection.
import type { Logger } from 'pino';
import type { Sink } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import { checkpointIdentity, type RedisSinkConfig } from '../../config/schema.js';
import { WalrelayError, describeError } from '../../relay/errors.js';
import { deliverWithRetry } from '../retry.js';
import { RedisConnection, encodeCommand } from './connection.js';
import { exactlyOnceCommand } from './exactly-once.js';
import { XaddPayloads } from './xadd-payloads.js';
import type { RedisTopology, TopologyOptions } from './topology.js';
import type { SinkContext } from '../sink.js';

export class RedisSink implements Sink {
  readonly name: string;
  readonly durable = true;
  private readonly connection: RedisConnection;
  private readonly payloads: XaddPayloads;
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
  /** Cluster or Sentinel mode: where entries go instead of `connection` (opened by start()). */
  private topology: RedisTopology | null = null;

  constructor(private readonly config: RedisSinkConfig, index: number, private readonly logger: Logger, context: SinkContext = { slot: 'walrelay' }) {
    this.name = config.name ?? `redis#${index}`;
    // Named by the operator, never by position (config/schema.ts refuses an exactly-once sink without a name or checkpointKey).
    this.checkpointKey = config.exactlyOnce ? checkpointIdentity(config, context.slot) ?? `walrelay:checkpoint:${context.slot}:${this.name}` : null;
    this.payloads = new XaddPayloads(config, { database: context.database, debezium: config.debezium });
    this.connection = new RedisConnection(config.url, { timeoutMs: config.timeoutSeconds * 1000, timeoutKey: `sinks[${index}].timeoutSeconds` });
    this.probeAfterMs = (config.timeoutSeconds * 1000) / 3;
  }

  private async ping(): Promise<void> {
    if (this.topology) await this.topology.ping();
    else await this.connection.exec(PING, 1);
  }

  private get address(): string {
    return this.topology?.description ?? `redis at ${this.connection.address}`;
  }

  private get connected(): boolean {
    return this.topology ? this.topology.connected : this.connection.connected;
  }

  async start(): Promise<void> {
    this.topology = await openTopology(this.config, this.logger, this.name, this.checkpointKey);
    try {
      await this.ping();
      if (!this.topology && this.config.waitAof !== undefined) await this.checkWaitAof();
    } catch (error) {
      const fatal = permanentRedisError(error);
      if (fatal) throw fatal;
      // A Redis that is down at start is waited for like one that goes down later.
      this.noteFailure(error);
      this.logger.warn({ sink: this.name, err: describeError(error) }, 'redis not reachable yet; events wait until it is');
    }
    this.probeTimer = setInterval(() => void this.probe(), Math.max(50, Math.min(1000, this.probeAfterMs / 2)));
    this.probeTimer.unref();
  }

  /** WAITAOF on a connection that wrote nothing returns at once: refused here means every batch would be (old server, appendonly no). */
  private async checkWaitAof(): Promise<void> {
    await this.connection.exec(encodeCommand(['WAITAOF', this.config.waitAof!.local ? '1' : '0', '0', '1']), 1);
  }

  isReady(): boolean {
    return this.connected && !this.failing;
  }

  notReadyReason(): string | undefined {
    return this.lastFailure ?? (this.connected ? undefined : `no connection to ${this.address}`);
  }

  /** While no write is under way: PING a quiet (or lost) connection, to notice a hang and a recovery without traffic. */
  private async probe(): Promise<void> {
    if (this.closed || this.writing || this.probing || (!this.topology && this.connection.silentForMs < this.probeAfterMs)) return;
    this.probing = true;
    try {
      await this.ping();
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
    if (this.topology) return this.writeThroughTopology(this.topology, events);
    if (checkpointKey !== null) return this.writeExactlyOnce(checkpointKey, events, signal);
    const { payload, count } = this.payloads.encode(events);
    await this.deliver(this.durably(() => this.connection.exec(payload, count)), signal);
  }

  /**
   * With waitReplicas / waitAof: an attempt is the batch, then WAIT / WAITAOF
   * on the same connection. When the copies fall short, the next attempt
   * only waits again while that connection lives (WAIT counts this
   * connection's writes); on a new connection the batch is sent again
   * (exactly-once: the script appends nothing twice, and its checkpoint SET
   * is the write the WAIT then covers).
   */
  private durably<T>(send: () => Promise<T>): () => Promise<T> {
    if (this.config.waitReplicas === undefined && this.config.waitAof === undefined) return send;
    let sentOn = -1;
    let result: T;
    return async () => {
      if (sentOn !== this.connection.generation || !this.connection.connected) {
        result = await send();
        sentOn = this.connection.generation;
      }
      await this.awaitCopies();
      return result;
    };
  }

  /** WAITAOF, then WAIT, as configured; a shortfall is a retriable error (the batch is not delivered yet). */
  private async awaitCopies(): Promise<void> {
    const timeoutMs = this.config.waitTimeoutMs;
    const waitAof = this.config.waitAof;
    if (waitAof !== undefined) {
      const local = waitAof.local ? 1 : 0;
      const reply = await this.connection.exec(encodeCommand(['WAITAOF', String(local), String(waitAof.replicas), String(timeoutMs)]), 1);
      const [fsyncedLocal, fsyncedReplicas] = Array.isArray(reply) ? reply.map(Number) : [NaN, NaN];
      if (!(fsyncedLocal >= local && fsyncedReplicas >= waitAof.replicas)) {
        throw new WalrelayError('REDIS_WAITAOF_SHORT', `redis at ${this.connection.address}: the batch reached the append-only file locally ${fsyncedLocal ? 'yes' : 'no'}, on ${fsyncedReplicas} of ${waitAof.replicas} replicas within ${timeoutMs} ms`, {
          retriable: true,
          hint: 'the batch counts as delivered (and its LSN is confirmed) only once WAITAOF is satisfied; check the replicas and appendfsync, or lower waitAof',
        });
      }
    }
    const replicas = this.config.waitReplicas;
    if (replicas !== undefined) {
      const acknowledged = await this.connection.execInteger(encodeCommand(['WAIT', String(replicas), String(timeoutMs)]));
      if (acknowledged < replicas) {
        throw new WalrelayError('REDIS_WAIT_REPLICAS', `redis at ${this.connection.address}: ${acknowledged} of ${replicas} replicas acknowledged the batch within ${timeoutMs} ms`, {
          retriable: true,
          hint: 'the batch counts as delivered (and its LSN is confirmed) only once waitReplicas replicas have it; check the replicas (INFO replication) or lower waitReplicas',
        });
      }
    }
  }

  private async writeExactlyOnce(checkpointKey: string, events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void> {
    const entries = events.flatMap((event) => this.payloads.entriesOf(event));
    const command = exactlyOnceCommand(checkpointKey, entries, this.config.maxLen);
    const appended = await this.deliver(this.durably(() => this.connection.execInteger(command)), signal);
    if (appended < entries.length) this.logger.info({ sink: this.name, skipped: entries.length - appended, checkpointKey }, 'redis exactly-once: skipped events the streams already have');
  }

  /** Cluster or Sentinel: a retry sends only the entries not yet acknowledged (the topology keeps track). */
  private async writeThroughTopology(topology: RedisTopology, events: readonly ChangeEvent[]): Promise<void> {
    const batch = { entries: events.flatMap((event) => this.payloads.entriesOf(event)), appended: 0 };
    const total = batch.entries.length;
    await this.deliver(() => topology.write(batch));
    if (this.checkpointKey !== null && batch.appended < total) this.logger.info({ sink: this.name, skipped: total - batch.appended, checkpointKey: this.checkpointKey }, 'redis exactly-once: skipped events the streams already have');
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

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.connection.close();
    this.topology?.close();
  }
}

const PING = encodeCommand(['PING']);

/** Cluster or Sentinel mode, when configured (ioredis is loaded only then). */
async function openTopology(config: RedisSinkConfig, logger: Logger, sink: string, checkpointKey: string | null): Promise<RedisTopology | null> {
  if (!config.cluster && !config.sentinel) return null;
  const options: TopologyOptions = {
    url: config.url,
    timeoutMs: config.timeoutSeconds * 1000,
    maxLen: config.maxLen,
    waitReplicas: config.waitReplicas ?? 0,
    waitTimeoutMs: config.waitTimeoutMs,
    checkpointKey,
  };
  if (config.sentinel) return new (await import('./sentinel.js')).SentinelTopology(options, config.sentinel, logger, sink);
  return new (await import('./cluster.js')).ClusterTopology(options, logger, sink);
}

function permanentRedisError(error: unknown): Error | null {
  // REDIS_AUTH / REDIS_SELECT from the connection's set-up, or a topology's own verdict (a checkpoint key
  // that cannot share its stream's slot): settings to fix, not a server to wait for.
  if (error instanceof WalrelayError && !error.retriable) return error;
  const message = (error as Error)?.message ?? '';
  if (/^WRONGTYPE/.test(message)) {
    return new WalrelayError('REDIS_WRONGTYPE', message, { hint: 'a key named by the stream template exists and is not a stream; rename the stream template or delete the key' });
  }
  if (/unknown command .?WAITAOF/i.test(message)) {
    return new WalrelayError('REDIS_WAITAOF_UNSUPPORTED', `this redis server has no WAITAOF (${message})`, {
      kind: 'config',
      hint: 'waitAof needs Redis 7.2 or later; upgrade the server, or remove waitAof (waitReplicas uses WAIT, which every version has); docs/sinks/redis.md',
    });
  }
  if (/WAITAOF cannot be used when numlocal is set but appendonly is disabled/i.test(message)) {
    return new WalrelayError('REDIS_WAITAOF_UNSUPPORTED', message, { kind: 'config', hint: 'turn on appendonly on the server (CONFIG SET appendonly yes, and in redis.conf), or set waitAof.local: false' });
  }
  if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message)) {
    return new WalrelayError('REDIS_AUTH', message, { hint: 'check the user and password in the redis url and the ACL for XADD' });
  }
  return null;
}
