// The replication connection: START_REPLICATION with pgoutput over `pg`'s
// copy-both mode, standby status updates, and flow control.
//
// This replaces pg-logical-replication's service (see README): its
// acknowledge() confirms lsn + 1 (skips an adjacent commit after a crash), its
// timer confirms data that was never processed, and it cannot restart from a
// durable checkpoint. Here nothing is ever confirmed except what the caller
// passes to sendStatus().
//
// A server that goes silent without closing (a network partition, a hung
// host) is noticed here: after a third of `timeoutMs` without a byte, a
// standby status update asks for a reply (the walsender answers with a
// keepalive at once); silence past `timeoutMs` ends the connection, and the
// daemon reconnects from the confirmed LSN. Silence while the relay itself
// paused the socket (backpressure) does not count.
import pg from 'pg';
import { type Lsn, ZERO_LSN, formatLsn, maxLsn, parseLsn, readLsn } from '../lsn.js';
import { WalrelayError } from '../errors.js';
import { DECODE_ERROR_HINT } from './pgoutput.js';
import { withTimeout } from '../with-timeout.js';
import { staleError, standbyError } from './primary.js';
import { CopyDataFramer } from './copy-data-framer.js';
import { startReading, stopReading } from './socket-reads.js';
import { type TimelineSwitch, readTimelineHistory } from './timeline-history.js';

/** Under a live feed, confirmations go out at most this often (confirm()). */
const CONFIRM_INTERVAL_MS = 20;
/** A confirmation held back when no batch completes after it is sent this much after the interval. */
const QUIET_CONFIRM_MS = 80;

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
export const PG_EPOCH_MICROS = 946_684_800_000_000n;

export interface XLogData {
  kind: 'data';
  walStart: Lsn;
  walEnd: Lsn;
  /** Never overwritten afterwards (copy-data-framer.ts): it may be kept without copying. */
  payload: Buffer;
}

export interface Keepalive {
  kind: 'keepalive';
  walEnd: Lsn;
  replyRequested: boolean;
}

export interface StreamHandlers {
  onData(message: XLogData): void;
  onKeepalive(message: Keepalive): void;
  /** The connection failed or ended; `error` is undefined on a clean stop. */
  onClose(error?: Error): void;
}

export interface StartOptions {
  slot: string;
  publication: string;
  /**
   * Where to start; 0/0 lets the server start at the slot's confirmed_flush_lsn. A function is asked once the server
   * said which system and timeline it is (IDENTIFY_SYSTEM), before anything streams; it may read the history of a
   * timeline (TIMELINE_HISTORY) on the same connection.
   */
  startLsn: Lsn | ((server: ServerIdentity, timelineHistory: TimelineHistoryReader) => Lsn | Promise<Lsn>);
  /** Refuse a server on an older timeline (a zombie primary: relay/source/primary.ts); 0 = any. */
  minTimeline?: number;
  /** Turn on the slot's FAILOVER option first (PostgreSQL 17+; the slot is not in use until START_REPLICATION). */
  enableFailover?: boolean;
  /** "host:port", for errors. */
  hostLabel?: string;
}

/** Which server a session streams from: a position is meaningful only on the same system and timeline. */
export interface ServerIdentity {
  systemId: string;
  timeline: number;
  /** Where the server's WAL ended when walrelay connected (IDENTIFY_SYSTEM's xlogpos). */
  walEnd?: Lsn;
}

/** The ancestors of a timeline of the server, with where each ended (timeline-history.ts). */
export type TimelineHistoryReader = (timeline: number) => Promise<TimelineSwitch[]>;

/** Session settings that fix the text form of values (see relay/source/values.ts). */
const SESSION_OPTIONS = '-c datestyle=ISO,YMD -c timezone=UTC -c extra_float_digits=3 -c intervalstyle=iso_8601 -c bytea_output=hex';

export class ReplicationStream {
  private client: pg.Client | null = null;
  private closed = false;
  /** Set once the session ended (error or server's end): later bytes of the same socket chunk are not applied. */
  private finished = false;
  /** True once the server entered COPY (START_REPLICATION answered): only then does CopyDone mean anything. */
  private copying = false;
  /** Settles when START_REPLICATION's query ends (the server left COPY mode). */
  private replicationEnded: Promise<void> = Promise.resolve();
  serverVersion = 0;
  /** The server's timeline (IDENTIFY_SYSTEM), known once started. */
  timeline = 0;
  /** The server's system identifier and timeline, known once started. */
  identity: ServerIdentity | null = null;
  /** The last position given to sendStatus(), repeated when asking for a keepalive. */
  private confirmed: Lsn = ZERO_LSN;
  /** A position given to confirm() and not sent yet, and the timer that sends it. */
  private pendingConfirmed: Lsn | null = null;
  private confirmTimer: NodeJS.Timeout | null = null;
  /** When the last status update went out (performance.now()). */
  private statusSentAt = -Infinity;
  private paused = false;
  private watchdog: NodeJS.Timeout | null = null;

  /** `timeoutMs`: silence from the server (and time to start streaming) allowed before the connection counts as dead. */
  constructor(private readonly url: string, private readonly timeoutMs = 30_000) {}

  async start(options: StartOptions, handlers: StreamHandlers): Promise<void> {
    if (this.closed) throw new WalrelayError('REPLICATION_ENDED', 'the replication stream was stopped before it started', { retriable: true });
    const client = new pg.Client({
      connectionString: this.url,
      replication: 'database',
      application_name: 'walrelay',
      options: SESSION_OPTIONS,
    } as pg.ClientConfig);
    this.client = client;
    this.finished = false;
    const finish = (error?: Error) => {
      if (this.finished) return;
      this.finished = true;
      handlers.onClose(this.closed ? undefined : error ?? new WalrelayError('REPLICATION_ENDED', 'the replication connection ended', { retriable: true }));
    };
    client.on('error', (error) => finish(classifyStreamError(error)));
    client.on('end', () => finish());
    const connection = (client as any).connection;
    let deadBeforeStreaming!: (error: Error) => void;
    const died = new Promise<never>((_, reject) => { deadBeforeStreaming = reject; });
    died.catch(() => undefined);
    this.watch(`${client.host}:${client.port}`, (error) => {
      deadBeforeStreaming(error);
      finish(error);
      connection.stream.destroy();
    });
    try {
      await Promise.race([this.connectAndStart(client, options, handlers, finish), died]);
    } catch (error) {
      this.stopWatching();
      throw error;
    }
  }

  private async connectAndStart(client: pg.Client, options: StartOptions, handlers: StreamHandlers, finish: (error?: Error) => void): Promise<void> {
    await client.connect();
    const [{ server_version_num }] = (await client.query('SHOW server_version_num')).rows;
    this.serverVersion = Number(server_version_num);
    // Checked again on this very connection: the host chosen a moment ago may have been demoted or replaced since.
    const host = options.hostLabel ?? `${client.host}:${client.port}`;
    if ((await client.query('SELECT pg_is_in_recovery() AS standby')).rows[0].standby) throw standbyError(host);
    const system = (await client.query('IDENTIFY_SYSTEM')).rows[0];
    this.timeline = Number(system.timeline);
    this.identity = { systemId: String(system.systemid), timeline: this.timeline, walEnd: system.xlogpos ? parseLsn(String(system.xlogpos)) : undefined };
    if (options.minTimeline && this.timeline < options.minTimeline) throw staleError(host, this.timeline, options.minTimeline);
    const startLsn = typeof options.startLsn === 'function'
      ? await options.startLsn(this.identity, (timeline) => readTimelineHistory(client, timeline))
      : options.startLsn;
    if (options.enableFailover) await client.query(`ALTER_REPLICATION_SLOT "${options.slot}" (FAILOVER true)`);

    const connection = (client as any).connection;
    /** The server sent an ErrorResponse: the session is over (its error reaches finish() once pg has settled the query). */
    let serverFailed = false;
    const onCopyData = (chunk: Buffer) => {
      // Stopping, or the session already ended: what still arrives (a whole socket chunk is framed at once) is sent again
      // by the server after a restart, and must not be applied after the message that ended the session.
      if (this.closed || this.finished || serverFailed) return;
      const tag = chunk[0];
      if (chunk.length < (tag === 0x77 ? 25 : tag === 0x6b ? 18 : 0)) {
        finish(shortHeader(chunk)); // thrown here, it would crash the process
        connection.stream.destroy();
        return;
      }
      if (tag === 0x77) {
        handlers.onData({ kind: 'data', walStart: readLsn(chunk, 1), walEnd: readLsn(chunk, 9), payload: chunk.subarray(25) });
      } else if (tag === 0x6b) {
        handlers.onKeepalive({ kind: 'keepalive', walEnd: readLsn(chunk, 1), replyRequested: chunk[17] === 1 });
      }
    };
    // CopyData framed here from now on, everything else still parsed by pg (the connection is idle: its parser holds nothing).
    const socket = connection.stream;
    const pgListeners = socket.listeners('data') as ((chunk: Buffer) => void)[];
    socket.removeAllListeners('data');
    const framer = new CopyDataFramer(onCopyData, (bytes) => {
      if (bytes[0] === 0x45) serverFailed = true; // 'E'
      for (const listener of pgListeners) listener.call(socket, bytes);
    });
    socket.on('data', (chunk: Buffer) => framer.push(chunk));

    const started = new Promise<void>((resolve, reject) => {
      connection.once('replicationStart', () => { this.copying = true; resolve(); });
      const replication = client.query(startReplicationSql({ ...options, startLsn }, protocolVersionFor(this.serverVersion)));
      this.replicationEnded = replication.then(() => undefined, () => undefined);
      replication.then(() => finish(), (error: Error) => {
          const classified = classifyStreamError(error, options);
          reject(classified);
          finish(classified);
        });
    });
    await started;
  }

  /**
   * Checks every tick whether the server sent anything (the socket's byte
   * count moved); asks for a keepalive after a third of the timeout, and
   * calls `dead` once the whole timeout passed in silence.
   */
  private watch(server: string, dead: (error: WalrelayError) => void): void {
    let heardAt = Date.now();
    let probedAt = 0;
    let bytesRead = -1;
    const tick = Math.max(50, Math.min(1000, this.timeoutMs / 6));
    this.watchdog = setInterval(() => {
      const now = Date.now();
      const read: number = (this.client as any)?.connection?.stream?.bytesRead ?? 0;
      if (read !== bytesRead || this.paused) {
        bytesRead = read;
        heardAt = now;
        return;
      }
      const silentMs = now - heardAt;
      if (silentMs > this.timeoutMs) {
        this.stopWatching();
        dead(silenceError(server, this.timeoutMs, this.copying));
      } else if (this.copying && silentMs >= this.timeoutMs / 3 && now - probedAt >= this.timeoutMs / 3) {
        probedAt = now;
        this.sendStatus(this.confirmed, true);
      }
    }, tick);
    this.watchdog.unref();
  }

  private stopWatching(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  /**
   * A confirmation as batches complete: sent at once after a quiet spell,
   * else at most one per CONFIRM_INTERVAL_MS, carrying the latest position
   * (sent by the first completion after the interval, or by a timer when none
   * comes within QUIET_CONFIRM_MS more). A
   * live feed completes hundreds of batches a second, and a status update
   * each was a socket write each (bench/OPTIMISATIONS.md, round four). One
   * held back and lost with the connection costs nothing: the next session
   * starts after what the sinks acknowledged (daemon.ts).
   */
  confirm(confirmed: Lsn): void {
    if (this.closed) return;
    this.pendingConfirmed = confirmed;
    const wait = this.statusSentAt + CONFIRM_INTERVAL_MS - performance.now();
    if (wait <= 0) {
      this.sendStatus(confirmed);
      return;
    }
    // Under a live feed the next batch to complete after the interval carries it; the timer is for a feed that went
    // quiet, so it is set later than that: a timer due at the interval woke the process up to 50 times a second.
    this.confirmTimer ??= setTimeout(this.sendPendingConfirmation, wait + QUIET_CONFIRM_MS);
  }

  private readonly sendPendingConfirmation = (): void => {
    this.confirmTimer = null;
    if (this.pendingConfirmed !== null) this.sendStatus(this.pendingConfirmed);
  };

  /** Tells PostgreSQL that everything up to `confirmed` is safely delivered (now: a pending confirm() goes with it). */
  sendStatus(confirmed: Lsn, replyRequested = false): void {
    const connection = (this.client as any)?.connection;
    if (!connection || this.closed) return;
    if (this.pendingConfirmed !== null) confirmed = maxLsn(confirmed, this.pendingConfirmed);
    this.pendingConfirmed = null;
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    this.confirmTimer = null;
    this.statusSentAt = performance.now();
    this.confirmed = confirmed;
    const message = Buffer.alloc(34);
    message[0] = 0x72; // 'r'
    message.writeBigUInt64BE(confirmed, 1); // written
    message.writeBigUInt64BE(confirmed, 9); // flushed
    message.writeBigUInt64BE(confirmed, 17); // applied
    message.writeBigUInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_MICROS, 25);
    message[33] = replyRequested ? 1 : 0;
    connection.sendCopyFromChunk(message);
  }

  /** Stops reading from the socket (backpressure, or reads held for a dispatch window): see stopReading. */
  pause(): void {
    this.paused = true;
    stopReading((this.client as any)?.connection?.stream);
  }

  resume(): void {
    this.paused = false;
    startReading((this.client as any)?.connection?.stream);
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    // A confirmation still held back goes first (a session ending on a sink's failure, the connection still fine).
    if (this.pendingConfirmed !== null && (this.client as any)?.connection?.stream?.writable) this.sendStatus(this.pendingConfirmed);
    this.closed = true;
    this.stopWatching();
    if (this.confirmTimer) clearTimeout(this.confirmTimer);
    this.confirmTimer = null;
    const client = this.client;
    this.client = null;
    if (!client) return;
    // End COPY politely before closing. Closing a socket that still holds
    // unread server data sends a TCP reset, and the server may then discard
    // our last status update unread: the slot would stay behind what was
    // delivered and a clean stop would re-send it. The walsender reads our
    // messages in order, so its CopyDone reply proves it took the update.
    const connection = (client as any).connection;
    const serverDone = new Promise<void>((resolve) => {
      connection.once('copyDone', resolve);
      void this.replicationEnded.then(resolve);
    });
    if (this.copying && connection.stream.writable) {
      connection.endCopyFrom();
      startReading(connection.stream);
      await withTimeout(serverDone, 5000);
      await withTimeout(this.replicationEnded, 2000); // then the query ends and end() can say goodbye instead of resetting
    }
    await withTimeout(client.end().catch(() => undefined), 2000);
    connection.stream.destroy();
  }
}

function silenceError(server: string, timeoutMs: number, streaming: boolean): WalrelayError {
  const seconds = timeoutMs / 1000;
  const what = streaming
    ? `PostgreSQL at ${server} sent nothing for ${seconds} s, not even the keepalive walrelay asked for (hung server or network partition)`
    : `PostgreSQL at ${server} did not start streaming within ${seconds} s (hung server or network partition)`;
  return new WalrelayError('REPLICATION_TIMEOUT', what, {
    retriable: true,
    hint: 'walrelay reconnects and resumes from the confirmed LSN; raise source.timeoutSeconds if the server or network is only slow',
  });
}

/** The highest pgoutput protocol version the server speaks; without streaming or two-phase their messages are version 1's. */
export function protocolVersionFor(serverVersion: number): number {
  if (serverVersion >= 160000) return 4;
  if (serverVersion >= 150000) return 3;
  if (serverVersion >= 140000) return 2;
  return 1;
}

function startReplicationSql(options: StartOptions & { startLsn: Lsn }, protoVersion: number): string {
  // slot and publication are validated identifiers (config/schema.ts), so quoting them is enough.
  return `START_REPLICATION SLOT "${options.slot}" LOGICAL ${formatLsn(options.startLsn)} ` +
    `(proto_version '${protoVersion}', publication_names '"${options.publication}"', messages 'true')`;
}

/** Decides what the operator must do about a failed replication connection, and whether waiting helps. */
export function classifyStreamError(error: Error & { code?: string }, options?: StartOptions): WalrelayError {
  if (error instanceof WalrelayError) return error;
  const message = error.message;
  if (error.code === '42704' || /replication slot .* does not exist/.test(message)) {
    return new WalrelayError('SLOT_MISSING', message, { hint: `run "walrelay setup" to create slot ${options?.slot ?? ''}`.trim(), cause: error });
  }
  if (/publication .* does not exist/.test(message)) {
    return new WalrelayError('PUBLICATION_MISSING', message, { hint: 'run "walrelay setup" to create the publication', cause: error });
  }
  if (error.code === '55006' || /is active for PID/.test(message)) {
    return new WalrelayError('SLOT_IN_USE', message, { retriable: true, hint: 'another walrelay (or consumer) holds the slot (the PID is the PostgreSQL walsender serving it, not a walrelay process; pg_stat_replication shows its client); this instance waits as a standby until it is released', cause: error });
  }
  if (/can no longer get changes|has been invalidated|wal_status.*lost|requested WAL segment .* has already been removed/.test(message)) {
    return new WalrelayError('SLOT_LOST', message, { hint: 'the slot lost WAL it needed (max_slot_wal_keep_size); data was lost upstream: drop and recreate the slot with "walrelay teardown" and "walrelay setup", then backfill', cause: error });
  }
  if (error.code === '28P01' || error.code === '28000' || error.code === '42501') {
    return new WalrelayError('AUTH_FAILED', message, { hint: 'check the user, password and REPLICATION privilege in source.url and pg_hba.conf', cause: error });
  }
  return new WalrelayError('REPLICATION_FAILED', message, { retriable: true, hint: 'walrelay reconnects with backoff', cause: error });
}

/** An XLogData ('w', 25-byte header) or keepalive ('k', 18 bytes) message too short to read. */
function shortHeader(chunk: Buffer): WalrelayError {
  const [what, size] = chunk[0] === 0x77 ? ['an XLogData', 25] : ['a keepalive', 18];
  return new WalrelayError('PGOUTPUT_MALFORMED', `${what} message of ${chunk.length} bytes, shorter than its ${size}-byte header`, { hint: DECODE_ERROR_HINT });
}
