// The running relay: sinks, HTTP, and a replication session that is
// restarted with backoff after retriable failures (network, a slot held by
// another instance), always from the slot's confirmed position.
import pg from 'pg';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Sink } from '../../sinks/sink.js';
import { createSink } from '../../sinks/index.js';
import { SinkRoute } from '../route/sink-route.js';
import { Metrics } from './metrics.js';
import { startHttp } from './http.js';
import { ReplicationStream } from '../source/replication-stream.js';
import { Pipeline } from '../route/pipeline.js';
import { Checkpoint } from '../route/checkpoint.js';
import { TypeCatalog } from '../source/type-catalog.js';
import { checkServer, checkSlot, withSourceClient } from './setup.js';
import { redact } from './sql.js';
import { coverageWarnings } from './coverage.js';
import { WalrelayError, describeError } from '../errors.js';
import { type Lsn, ZERO_LSN, formatLsn, parseLsn } from '../lsn.js';

export interface RunningRelay {
  /** Drains in-flight events, confirms, closes everything. */
  stop(): Promise<void>;
  /** Settles when the relay has stopped: resolves after stop(), rejects on a fatal error. */
  done: Promise<void>;
  metrics: Metrics;
  readonly httpPort: number | null;
}

const MAX_BACKOFF_MS = 10_000;

export async function startRelay(config: Config, logger: Logger): Promise<RunningRelay> {
  const metrics = new Metrics();
  const sinks: Sink[] = await Promise.all(config.sinks.map((sinkConfig, index) => createSink(sinkConfig, index, logger, { database: databaseName(config.source.url) })));
  const routes = sinks.map((sink, index) => new SinkRoute(sink, config.sinks[index].tables, metrics));
  const pool = new pg.Pool({ connectionString: config.source.url, max: 2, application_name: 'walrelay-catalog' });
  pool.on('error', () => undefined);

  await withSourceClient(config, async (client) => {
    await checkServer(client);
    await checkSlot(client, config.source.slot);
    for (const warning of await coverageWarnings(client, config)) logger.warn(warning);
  });
  for (const sink of sinks) await sink.start();

  let stream: ReplicationStream | null = null;
  let pipeline: Pipeline | null = null;
  let streaming = false;
  let stopping = false;
  let wake: (() => void) | null = null;
  let endSession: (() => void) | null = null;
  let resolveDone!: () => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => { resolveDone = resolve; rejectDone = reject; });
  done.catch(() => undefined);

  let http: Server | null = null;
  if (config.http) {
    http = await startHttp(config.http.host, config.http.port, metrics, {
      ready: () => {
        const reasons: string[] = [];
        if (!streaming) reasons.push('replication is not streaming');
        for (const sink of sinks) if (!sink.isReady()) reasons.push(`sink ${sink.name} is not connected`);
        return { ready: reasons.length === 0, reasons };
      },
    });
  }

  const gauges = setInterval(() => {
    metrics.streaming.set(streaming ? 1 : 0);
    for (const sink of sinks) {
      metrics.sinkReady.set({ sink: sink.name }, sink.isReady() ? 1 : 0);
      if (sink.clientStats) metrics.observeClients(sink.name, sink.clientStats());
    }
    if (pipeline) {
      const confirmed = pipeline.checkpoint.confirmed;
      metrics.confirmedLsn.set(Number(confirmed));
      const server = pipeline.serverPosition;
      if (server !== null) metrics.lagBytes.set(Math.max(0, Number(server - confirmed)));
    }
  }, 1000);
  gauges.unref();

  /** One replication session: resolves when it ends (with the error that ended it, if any). */
  async function runSession(): Promise<Error | undefined> {
    const slot = await withSourceClient(config, (client) => checkSlot(client, config.source.slot));
    const start: Lsn = slot.confirmedFlushLsn ? parseLsn(slot.confirmedFlushLsn) : ZERO_LSN;
    const current = new ReplicationStream(config.source.url);
    stream = current;
    let ended!: (error?: Error) => void;
    const sessionEnd = new Promise<Error | undefined>((resolve) => { ended = resolve; });
    endSession = () => ended();
    const checkpoint = new Checkpoint(start, (confirmed) => {
      current.sendStatus(confirmed);
      logger.debug({ confirmed: formatLsn(confirmed) }, 'confirmed');
    });
    const session = new Pipeline(routes, checkpoint, new TypeCatalog(pool), current, config.pipeline, (error) => {
      ended(error);
    });
    pipeline = session;
    const statusTimer = setInterval(() => current.sendStatus(checkpoint.confirmed), config.source.statusIntervalSeconds * 1000);
    try {
      // 0/0: the server starts at confirmed_flush_lsn; never restart above it (that skips commits).
      await current.start({ slot: config.source.slot, publication: config.source.publication, startLsn: ZERO_LSN }, {
        onData: (message) => session.onData(message),
        onKeepalive: (message) => session.onKeepalive(message),
        onClose: (error) => ended(error),
      });
      streaming = true;
      logger.info({ slot: config.source.slot, from: formatLsn(start), serverVersion: current.serverVersion }, 'streaming');
      const error = await sessionEnd;
      return error;
    } catch (error) {
      return error as Error;
    } finally {
      streaming = false;
      clearInterval(statusTimer);
      if (stopping) {
        session.closeIntake();
        // Deliver what was already received, confirm it, then close.
        const drained = await session.drain(Date.now() + config.pipeline.drainTimeoutSeconds * 1000);
        if (!drained) logger.warn('shutdown: sinks did not acknowledge everything in time; unconfirmed changes will be re-sent on restart');
        current.sendStatus(checkpoint.confirmed);
        logger.info({ confirmed: formatLsn(checkpoint.confirmed) }, 'stopped streaming');
      }
      endSession = null;
      await current.stop();
    }
  }

  async function supervise(): Promise<void> {
    let backoff = 500;
    while (!stopping) {
      const error = await runSession().catch((e: Error) => e);
      if (stopping) break;
      const failure = error instanceof WalrelayError ? error : error ? new WalrelayError('REPLICATION_FAILED', error.message, { retriable: true, cause: error }) : undefined;
      if (failure && !failure.retriable) throw failure;
      logger.warn({ err: failure ? describeError(failure) : 'connection ended', retryInMs: backoff }, 'replication interrupted; resuming from the confirmed LSN');
      await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, backoff); });
      backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
    }
  }

  async function shutdown(): Promise<void> {
    clearInterval(gauges);
    await Promise.all(sinks.map((sink) => sink.close().catch((error) => logger.warn({ sink: sink.name, err: (error as Error).message }, 'closing sink failed'))));
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    http?.closeAllConnections?.();
    await pool.end().catch(() => undefined);
  }

  const supervisor = supervise().then(
    async () => { await shutdown(); resolveDone(); },
    async (error: Error) => { stopping = true; await shutdown(); rejectDone(error); },
  );

  logger.info({ source: redact(config.source.url), slot: config.source.slot, sinks: sinks.map((sink) => sink.name) }, 'walrelay started');

  return {
    metrics,
    get httpPort() {
      const address = http?.address();
      return address && typeof address === 'object' ? address.port : null;
    },
    async stop() {
      if (!stopping) {
        stopping = true;
        wake?.();
        // Ending the session makes runSession drain, confirm, then close the connection.
        endSession?.();
      }
      await supervisor;
      await done.catch(() => undefined);
    },
    done,
  };
}

/** The database of a postgres:// URL (Debezium's source.db); libpq's default is the user's name. */
function databaseName(url: string): string {
  const parsed = new URL(url);
  return decodeURIComponent(parsed.pathname.replace(/^\//, '')) || decodeURIComponent(parsed.username) || 'postgres';
}
