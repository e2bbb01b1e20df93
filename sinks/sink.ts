import type { ChangeEvent } from '../relay/route/event.js';
import type { DeadLetterTargets } from './dead-letter.js';
import type { ResumeStore } from './websocket/protocols/realtime/resume-store.js';
import type { SinkFeedHistory } from './websocket/feed-history.js';

/**
 * A destination for change events. The pipeline calls `write` with batches in
 * commit order, one batch at a time per sink, already filtered to the sink's
 * `tables`. A durable sink resolves `write` only once every event of the batch
 * is acknowledged by its server, and retries retriable failures itself (with
 * backoff, logged) until `close` is called; the LSN checkpoint waits for it.
 * A non-durable sink (websocket) never holds the checkpoint back.
 */
export interface Sink {
  /** Human label used in logs and metrics, e.g. "redis#0". */
  readonly name: string;
  readonly durable: boolean;
  start(): Promise<void>;
  /**
   * `signal` aborts when the replication session that produced the events
   * ended (PostgreSQL sends them again to the next one): a durable sink
   * stops retrying and rejects, instead of delivering a stale copy later.
   */
  write(events: readonly ChangeEvent[], signal?: AbortSignal): Promise<void>;
  /** Connected and able to deliver right now (feeds /readyz). */
  isReady(): boolean;
  /** When not ready: why (the last failure, naming the server), shown by /readyz. */
  notReadyReason?(): string | undefined;
  close(): Promise<void>;
  /** Deliveries that failed and were tried again, since start (metrics). */
  retries?(): number;
  /** Sinks that serve clients (websocket): who is connected, and how many the sink closed, by close code. */
  clientStats?(): ClientStats;
}

export interface ClientStats {
  connected: number;
  /** Cumulative count of clients the sink closed, by WebSocket close code (1013 too slow, 4001 token expired). */
  closedByCode: ReadonlyMap<number, number>;
  /** Cumulative count of connections and requests refused, by reason (max_connections, origin, unauthorized, frame_rate, …). */
  refusedByReason?: ReadonlyMap<string, number>;
  /** Cumulative count of frames handed to client sockets (control frames included). */
  framesSent?: number;
}

/** What a sink may need to know about the relay it serves (exactly-once sinks name their checkpoint after the slot). */
export interface SinkContext {
  slot: string;
  /** The source database's name (Debezium's source.db). */
  database?: string;
  /** `walrelay edge`: where websocket sinks share the resume points of Realtime clients named with walrelay_client. */
  resumeStore?: ResumeStore;
  /** `walrelay edge`: the feed, which websocket sinks read when a client resumes from further back than their ring (feed-history.ts). */
  feedHistory?: SinkFeedHistory;
  /** source.url: the websocket sink's row-level security checks (authorization: rls) connect there. */
  sourceUrl?: string;
  /** The source's `tables` whose changes reach sinks as such (outbox tables left out): brokers check their destinations at start. */
  tables?: readonly string[];
  /** Destination templates ({…} placeholders) of outbox routes (with their table) and message routes (no table). */
  destinations?: readonly { table?: string; destination: string }[];
  /** Where sinks with a `deadLetter` key hand the events they gave up on (dead-letter.ts). */
  deadLetters?: DeadLetterTargets;
  /** Per-sink delivery figures beyond "delivered" (relay/ops/metrics.ts); absent outside a daemon. */
  metrics?: SinkMetrics;
}

/** What a sink reports about its own delivery: retries, dead letters, request latency. */
export interface SinkMetrics {
  retried(sink: string, count: number): void;
  deadLettered(sink: string, count: number): void;
  /** One HTTP request of a webhook sink: its duration and outcome (status code, or "timeout" / "error"). */
  webhookRequest(sink: string, seconds: number, outcome: string): void;
}
