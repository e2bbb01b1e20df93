// Prometheus metrics (names prefixed walrelay_), one registry per daemon.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import type { ClientStats, SinkMetrics } from '../../sinks/sink.js';

/** pg_replication_slots.wal_status values (PostgreSQL 13+), and "missing" for a slot that does not exist. */
export const SLOT_WAL_STATUSES: readonly string[] = ['reserved', 'extended', 'unreserved', 'lost', 'missing'];

export class Metrics implements SinkMetrics {
  readonly registry = new Registry();
  private readonly eventsDelivered = new Counter({ name: 'walrelay_events_delivered_total', help: 'Change events acknowledged by each sink', labelNames: ['sink'], registers: [this.registry] });
  readonly lagBytes = new Gauge({ name: 'walrelay_replication_lag_bytes', help: 'Bytes of WAL between the server\'s current position and the last confirmed LSN', registers: [this.registry] });
  readonly confirmedLsn = new Gauge({ name: 'walrelay_confirmed_lsn', help: 'Last LSN confirmed to PostgreSQL, as a number', registers: [this.registry] });
  readonly sinkReady = new Gauge({ name: 'walrelay_sink_ready', help: '1 when the sink is connected and delivering', labelNames: ['sink'], registers: [this.registry] });
  readonly streaming = new Gauge({ name: 'walrelay_replication_streaming', help: '1 while the replication connection is streaming', registers: [this.registry] });
  readonly websocketClients = new Gauge({ name: 'walrelay_websocket_clients', help: 'Clients connected to a websocket sink', labelNames: ['sink'], registers: [this.registry] });
  private readonly websocketClosed = new Counter({ name: 'walrelay_websocket_clients_closed_total', help: 'Clients a websocket sink closed, by close code (1013: could not keep up, 4001: token expired)', labelNames: ['sink', 'code'], registers: [this.registry] });
  private readonly closedSeen = new Map<string, number>();
  readonly forgedControlMessages = new Counter({ name: 'walrelay_control_messages_forged_total', help: 'Messages with a walrelay control prefix (walrelay.backfill, walrelay.gap) whose signature did not verify: dropped', labelNames: ['prefix'], registers: [this.registry] });
  private readonly websocketRefused = new Counter({ name: 'walrelay_websocket_refused_total', help: 'Connections, requests and frames a websocket sink refused, by reason (max_connections, max_connections_per_ip, origin, handshake_timeout, bad_request, unauthorized, frame_too_large, frame_rate, too_many_subscriptions)', labelNames: ['sink', 'reason'], registers: [this.registry] });
  private readonly refusedSeen = new Map<string, number>();
  private readonly retriesSeen = new Map<string, number>();
  private readonly websocketFrames = new Counter({ name: 'walrelay_websocket_frames_sent_total', help: 'Frames a websocket sink handed to client sockets (rate() = frames/s)', labelNames: ['sink'], registers: [this.registry] });
  private readonly framesSeen = new Map<string, number>();
  readonly slotRetainedWalBytes = new Gauge({ name: 'walrelay_slot_retained_wal_bytes', help: 'Bytes of WAL the replication slot keeps on the server (current WAL position minus restart_lsn)', registers: [this.registry] });
  readonly sourceSwitches = new Counter({ name: 'walrelay_source_switches_total', help: 'Times walrelay resumed streaming on another host of source.url (a failover)', registers: [this.registry] });
  readonly slotWalStatus = new Gauge({ name: 'walrelay_slot_wal_status', help: 'The slot\'s wal_status: 1 for the current value, 0 for the others (missing: the slot does not exist)', labelNames: ['status'], registers: [this.registry] });

  private readonly sinkRetries = new Counter({ name: 'walrelay_sink_retries_total', help: 'Failed delivery attempts a sink is retrying (5xx, timeouts, refused connections…)', labelNames: ['sink'], registers: [this.registry] });
  private readonly sinkDeadLettered = new Counter({ name: 'walrelay_sink_dead_lettered_total', help: 'Events a sink gave up on and handed to its deadLetter sink', labelNames: ['sink'], registers: [this.registry] });
  private readonly webhookRequestSeconds = new Histogram({
    name: 'walrelay_webhook_request_duration_seconds',
    help: 'Duration of a webhook sink\'s HTTP requests, by outcome (status code, timeout, error)',
    labelNames: ['sink', 'outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'walrelay_' });
  }

  /** One series per wal_status value, so that `walrelay_slot_wal_status{status="lost"} == 1` is an alert. */
  observeSlotHealth(walStatus: string | null, retainedBytes: number | null): void {
    const current = walStatus ?? 'missing';
    for (const status of SLOT_WAL_STATUSES) this.slotWalStatus.set({ status }, status === current ? 1 : 0);
    if (!SLOT_WAL_STATUSES.includes(current)) this.slotWalStatus.set({ status: current }, 1);
    this.slotRetainedWalBytes.set(retainedBytes ?? 0); // a lost or missing slot holds no WAL
  }

  delivered(sink: string, count: number): void {
    this.eventsDelivered.inc({ sink }, count);
  }

  retried(sink: string, count: number): void {
    this.sinkRetries.inc({ sink }, count);
  }

  deadLettered(sink: string, count: number): void {
    this.sinkDeadLettered.inc({ sink }, count);
  }

  webhookRequest(sink: string, seconds: number, outcome: string): void {
    this.webhookRequestSeconds.observe({ sink, outcome }, seconds);
  }

  /** Copies a sink's running count of retried deliveries into the counter. */
  observeRetries(sink: string, total: number): void {
    if (!this.retriesSeen.has(sink)) this.sinkRetries.inc({ sink }, 0); // the series exists from the start, at 0
    const increase = total - (this.retriesSeen.get(sink) ?? 0);
    if (increase > 0) this.sinkRetries.inc({ sink }, increase);
    this.retriesSeen.set(sink, total);
  }

  /** Copies a client-serving sink's figures into the gauges and counters. */
  observeClients(sink: string, stats: ClientStats): void {
    this.websocketClients.set({ sink }, stats.connected);
    if (stats.framesSent !== undefined) {
      const increase = stats.framesSent - (this.framesSeen.get(sink) ?? 0);
      if (increase > 0) this.websocketFrames.inc({ sink }, increase);
      this.framesSeen.set(sink, stats.framesSent);
    }
    for (const [code, total] of stats.closedByCode) {
      const key = `${sink}\u0000${code}`;
      const increase = total - (this.closedSeen.get(key) ?? 0);
      if (increase > 0) this.websocketClosed.inc({ sink, code: String(code) }, increase);
      this.closedSeen.set(key, total);
    }
    for (const [reason, total] of stats.refusedByReason ?? []) {
      const key = `${sink}\u0000${reason}`;
      const increase = total - (this.refusedSeen.get(key) ?? 0);
      if (increase > 0) this.websocketRefused.inc({ sink, reason }, increase);
      this.refusedSeen.set(key, total);
    }
  }
}
