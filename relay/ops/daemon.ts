// The running relay: sinks, HTTP, and a replication session that is
// restarted with backoff after retriable failures (network, a slot held by
// another instance), from the slot's confirmed position or from what the
// sinks acknowledged if that is later and on the server's history
// (resume-point.ts).
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Sink, SinkContext } from '../../sinks/sink.js';
import { createSink } from '../../sinks/index.js';
import { DeadLetterTargets } from '../../sinks/dead-letter.js';
import { sinkLabel } from '../../config/dead-letter-check.js';
import { SinkRoute } from '../route/sink-route.js';
import { DomainRouter, sinkStage } from '../stages/sink-stages.js';
import { checkColumnPolicyKeys } from '../setup/column-policy-check.js';
import { Metrics } from './metrics.js';
import { startHttp } from './http.js';
import { watchSlotHealth } from './slot-health.js';
import { RESNAPSHOT_COMMAND, endRecreation, isSlotGone, recreateSlot, recreationUnderWay, resnapshot, slotGoneError, slotNotCarriedOver } from './slot-recovery.js';
import { announceDrainWait } from './drain-notice.js';
import { ReplicationStream, type ServerIdentity } from '../source/replication-stream.js';
import { type OwnPosition, refusedWarning, resumePoint } from './resume-point.js';
import { Pipeline } from '../route/pipeline.js';
import type { ControlMessages } from '../route/assembler.js';
import { loadControlKey } from '../route/control-message.js';
import { AnnouncedShapes } from '../route/schema-event.js';
import { Checkpoint } from '../route/checkpoint.js';
import { TypeCatalog } from '../source/type-catalog.js';
import { checkServer, checkSlot, withSourceClient } from '../setup/setup.js';
import { redact } from '../setup/sql.js';
import { fromPgError } from '../setup/pg-errors.js';
import { serverVersion } from '../setup/preflight.js';
import { readFailoverState, unsynchronizedWarning, wantsFailover } from '../setup/failover-slot.js';
import { closeClient, connectPrimary, hostUrl, noteSilent, noteTimeline, sourceState } from '../source/primary.js';
import { SourcePool } from '../source/source-pool.js';
import { hostLabel, parseSourceUrl, unverifiedTls, type SourceHost } from '../source/hosts.js';
import { coverageWarnings } from '../setup/coverage.js';
import { findSlotHolder, describeSlotHolder } from './slot-holder.js';
import { withTimeout } from '../with-timeout.js';
import { Backoff } from '../backoff.js';
import { WalrelayError, describeError } from '../errors.js';
import { type Lsn, ZERO_LSN, formatLsn, maxLsn, parseLsn } from '../lsn.js';

export interface RunningRelay {
  /** Drains in-flight events, confirms, closes everything. */
  stop(): Promise<void>;
  /** Settles when the relay has stopped: resolves after stop(), rejects on a fatal error. */
  done: Promise<void>;
  metrics: Metrics;
  readonly httpPort: number | null;
}

const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;
/** With several hosts in source.url, every host is tried again at least this often (a failover must be noticed soon). */
const MAX_BACKOFF_MULTI_HOST_MS = 5_000;
/** How long stop() waits for the re-snapshot's chunk under way. */
const RESNAPSHOT_STOP_MS = 10_000;

export async function startRelay(config: Config, logger: Logger): Promise<RunningRelay> {
  const metrics = new Metrics();
  const deadLetters = new DeadLetterTargets();
  const sinks: Sink[] = await Promise.all(config.sinks.map((sinkConfig, index) => createSink(sinkConfig, index, logger, { ...sinkContext(config), deadLetters, metrics, sourceUrl: config.source.url })));
  const router = new DomainRouter(config);
  const routes = sinks.map((sink, index) => new SinkRoute(sink, config.sinks[index].tables, metrics, sinkStage(config, config.sinks[index], index, router)).withSchemaEvents(config.sinks[index].schemaEvents));
  // A sink's dead letters join its target's queue (sinks/dead-letter.ts); targets are named by their labels.
  routes.forEach((route, index) => deadLetters.register(sinkLabel(config.sinks[index], index), (events) => route.deliverAsIs(events)));
  const timeoutMs = config.source.timeoutSeconds * 1000;
  // Timeouts, so that a hung server or a partition fails a lookup instead of stalling the session.
  // On the host the stream uses (source-pool.ts): after a failover, lookups follow it.
  const pool = new SourcePool(config.source.url, { max: 2, application_name: 'walrelay-catalog', connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  const sourceUrl = parseSourceUrl(config.source.url);
  const multiHost = sourceUrl.hosts.length > 1;
  const unverified = unverifiedTls(sourceUrl);
  if (unverified) {
    logger.warn({ code: 'TLS_UNVERIFIED', sslmode: unverified },
      `source.url: sslmode=${unverified} encrypts without checking PostgreSQL's certificate; use sslmode=verify-full (or verify-ca with sslrootcert=) where a man in the middle is possible (docs/security.md)`);
  }
  const exactlyOnceSinks = config.sinks.flatMap((sink, index) => ('exactlyOnce' in sink && sink.exactlyOnce ? [sinks[index].name] : []));
  // One catalog for the life of the process: what it learned of a type survives reconnects and later DROP TYPE.
  const catalog = new TypeCatalog(pool, (message, details) => logger.warn(details, message));
  // Schema events are made only when a sink takes them (schema-event.ts).
  const shapes = config.sinks.some((sink) => sink.schemaEvents) ? new AnnouncedShapes() : undefined;

  /** A slot recreation that a crash or an error interrupted: finished before streaming (slot-recovery.ts). */
  let interruptedRecreation = false;
  let controlKey!: Buffer;
  await withSourceClient(config, async (client) => {
    await checkServer(client);
    const version = await serverVersion(client);
    wantsFailover(config, version); // failoverSlot: true before PostgreSQL 17 stops here, with the fix
    controlKey = await loadControlKey(client);
    await checkColumnPolicyKeys(client, config);
    interruptedRecreation = await recreationUnderWay(client, config.source.slot);
    await checkSlot(client, config.source.slot).catch((error: unknown) => {
      if (interruptedRecreation && isSlotGone(error)) return;
      // A slot lost while walrelay was stopped: recreated by the first session in recreate mode.
      if (isSlotGone(error) && (error as WalrelayError).code === 'SLOT_LOST') {
        if (config.source.onSlotLost === 'recreate') return;
        throw slotGoneError(error as WalrelayError, config.source.slot, false);
      }
      throw error;
    });
    for (const warning of await coverageWarnings(client, config)) logger.warn(warning);
    const failoverWarning = unsynchronizedWarning(await readFailoverState(client, config.source.slot, version));
    if (failoverWarning) logger.warn({ code: 'UNSYNCHRONIZED_STANDBYS' }, failoverWarning);
  }, { queryTimeoutMs: timeoutMs });
  for (const sink of sinks) await sink.start();
  const control: ControlMessages = {
    key: controlKey,
    rejected: (prefix, xid, lsn) => {
      metrics.forgedControlMessages.inc({ prefix });
      logger.warn({ code: 'CONTROL_MESSAGE_FORGED', prefix, xid, lsn, hint: 'a role other than walrelay\'s wrote it with pg_logical_emit_message; find the transaction\'s author (xid) in the server log; docs/security.md' },
        'dropped a control message whose signature does not verify');
    },
  };

  let _stream: ReplicationStream | null = null;
  let pipeline: Pipeline | null = null;
  /** The last session's checkpoint: how far delivery got, should the slot be lost (slot-recovery.ts). */
  let lastCheckpoint: Checkpoint | null = null;
  /** The system and timeline lastCheckpoint's positions belong to. */
  let streamedFromServer: ServerIdentity | null = null;
  /** The slot was recreated since lastCheckpoint: its position, not walrelay's, is where to resume. */
  let slotRecreated = false;
  /** The re-snapshot after a slot recreation, running in the background; stop() ends it between chunks. */
  let resnapshotting: { abort: AbortController; done: Promise<void> } | null = null;
  let streaming = false;
  let streamedOnce = false;
  /** Another instance holds the slot: this one is a hot standby. */
  let waitingForSlot = false;
  /** The host the last session streamed from ("host:port"); another one next time is a switch. */
  let streamedFrom: string | null = null;
  /** The host the current (or last) session chose. */
  let sessionHost: string | null = null;
  /** Why the last replication session ended, for /readyz while not streaming. */
  let replicationProblem: string | null = null;
  let stopping = false;
  /** Between replication sessions (at most 5 s between rounds over several hosts); a stop cuts the wait short. */
  const backoff = new Backoff(INITIAL_BACKOFF_MS, multiHost ? MAX_BACKOFF_MULTI_HOST_MS : MAX_BACKOFF_MS);
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
        if (!streaming) {
          if (waitingForSlot) reasons.push('hot standby: waiting for the slot, which another walrelay holds');
          else reasons.push(replicationProblem ? `replication is not streaming: ${replicationProblem}` : 'replication is not streaming');
        }
        for (const sink of sinks) {
          if (sink.isReady()) continue;
          const why = sink.notReadyReason?.();
          reasons.push(why ? `sink ${sink.name} is not delivering: ${why}` : `sink ${sink.name} is not connected`);
        }
        return { ready: reasons.length === 0, standby: !streaming && waitingForSlot, reasons };
      },
    });
  }

  const stopSlotHealth = watchSlotHealth(pool, config.source.slot, config.source.slotHealthIntervalSeconds, metrics, logger);
  const updateGauges = () => {
    metrics.streaming.set(streaming ? 1 : 0);
    for (const sink of sinks) {
      metrics.sinkReady.set({ sink: sink.name }, sink.isReady() ? 1 : 0);
      if (sink.clientStats) metrics.observeClients(sink.name, sink.clientStats());
      if (sink.retries) metrics.observeRetries(sink.name, sink.retries());
    }
    if (pipeline) {
      const confirmed = pipeline.checkpoint.confirmed;
      metrics.confirmedLsn.set(Number(confirmed));
      const server = pipeline.serverPosition;
      if (server !== null) metrics.lagBytes.set(Math.max(0, Number(server - confirmed)));
    }
  };
  // Once now, so that a scrape in the first second already has every sink's series (at 0).
  updateGauges();
  const gauges = setInterval(updateGauges, 1000);
  gauges.unref();

  /** One replication session: resolves when it ends (with the error that ended it, if any). */
  async function runSession(): Promise<Error | undefined> {
    const slot = await readSlot();
    // A stop that came while the slot was read (a slow server) had no session to end yet: it must not be lost.
    if (stopping) return undefined;
    const label = hostLabel(slot.host);
    const switching = streamedFrom !== null && streamedFrom !== label;
    const slotConfirmed: Lsn = slot.confirmedFlushLsn ? parseLsn(slot.confirmedFlushLsn) : ZERO_LSN;
    // Resume from the later of the slot's position and walrelay's own, if that is provably on this server's history
    // (resume-point.ts); decided once the server said which system and timeline it is.
    const own: OwnPosition | null = lastCheckpoint && streamedFromServer ? { confirmed: lastCheckpoint.confirmed, server: streamedFromServer } : null;
    let start = maxLsn(own && !slotRecreated ? own.confirmed : ZERO_LSN, slotConfirmed);
    const current = new ReplicationStream(slot.url, timeoutMs);
    _stream = current;
    let ended!: (error?: Error) => void;
    const sessionEnd = new Promise<Error | undefined>((resolve) => { ended = resolve; });
    endSession = () => ended();
    const checkpoint = new Checkpoint(start, (confirmed) => {
      current.confirm(confirmed);
      if (logger.isLevelEnabled('debug')) logger.debug({ confirmed: formatLsn(confirmed) }, 'confirmed');
    });
    lastCheckpoint = checkpoint;
    await catalog.learnPublished(config.source.publication);
    const session = new Pipeline(routes, checkpoint, catalog, current, { ...config.pipeline, commitMarkers: config.sinks.some((sink) => sink.transactionEvents), keepOrigins: config.sinks.some((sink) => sink.format === 'debezium' || (sink.type === 'feed' && sink.debeziumOrigins)) }, (error) => {
      ended(error);
    }, shapes, control);
    pipeline = session;
    const statusTimer = setInterval(() => current.sendStatus(checkpoint.confirmed), config.source.statusIntervalSeconds * 1000);
    try {
      // 0/0: the server starts at confirmed_flush_lsn. A later start makes it skip the transactions committed before it.
      await current.start({
        slot: config.source.slot, publication: config.source.publication,
        startLsn: async (server, timelineHistory) => {
          const point = await resumePoint({ slotConfirmed, own, slotRecreated, server, timelineHistory });
          // A session that died meanwhile (its watchdog, a stop) must not rewind what the next one uses.
          if (_stream !== current) return ZERO_LSN;
          if (point.start < start) {
            checkpoint.rewindTo(point.start);
            shapes?.forgetUnconfirmed(point.start);
          }
          start = point.start;
          const warning = refusedWarning(point, own, server, label, exactlyOnceSinks);
          if (warning) logger.warn({ code: warning.code, ...warning.fields }, warning.message);
          return start > slotConfirmed ? start : ZERO_LSN;
        },
        minTimeline: sourceState(config.source.url).highestTimeline, enableFailover: slot.enableFailover, hostLabel: label,
      }, {
        onData: (message) => session.onData(message),
        onKeepalive: (message) => session.onKeepalive(message),
        onClose: (error) => ended(error),
      });
      current.sendStatus(checkpoint.confirmed); // also what a keepalive request repeats
      noteTimeline(config.source.url, slot.host, current.timeline);
      streamedFromServer = current.identity;
      slotRecreated = false;
      if (slot.enableFailover) logger.info({ slot: config.source.slot, host: label }, 'turned on FAILOVER for the replication slot (source.failoverSlot)');
      if (switching) {
        metrics.sourceSwitches.inc();
        logger.warn({ code: 'SOURCE_SWITCHED', from: streamedFrom, to: label, timeline: current.timeline, resumeFrom: formatLsn(start) },
          `source switched from ${streamedFrom} to ${label} (timeline ${current.timeline}); resuming from ${formatLsn(start)}`);
      }
      streamedFrom = label;
      backoff.reset();
      streaming = true;
      streamedOnce = true;
      waitingForSlot = false;
      replicationProblem = null;
      logger.info({ slot: config.source.slot, from: formatLsn(start), serverVersion: current.serverVersion, host: label }, 'streaming');
      const error = await sessionEnd;
      return error;
    } catch (error) {
      return error as Error;
    } finally {
      streaming = false;
      clearInterval(statusTimer);
      if (stopping) {
        session.closeIntake();
        // Deliver what was already received, confirm it, then close. Say at once what a down sink makes us wait for.
        const sinkDown = routes.some((route) => route.unacknowledged > 0 && !route.sink.isReady());
        const notice = setTimeout(() => announceDrainWait(routes, config.pipeline.drainTimeoutSeconds, logger), sinkDown ? 0 : 1000);
        const drained = await session.drain(Date.now() + config.pipeline.drainTimeoutSeconds * 1000);
        clearTimeout(notice);
        if (!drained) logger.warn('shutdown: sinks did not acknowledge everything in time; unconfirmed changes will be re-sent on restart');
        current.sendStatus(checkpoint.confirmed);
        logger.info({ confirmed: formatLsn(checkpoint.confirmed) }, 'stopped streaming');
      }
      endSession = null;
      if (!stopping) session.close();
      await current.stop();
      // The next session receives again what this one had not confirmed: what it queued for the sinks is dropped.
      if (!stopping) {
        const dropped = await Promise.all(routes.map((route) => route.abandon()));
        const waiting = routes.flatMap((route, i) => (dropped[i] > 0 ? [{ sink: route.sink.name, events: dropped[i] }] : []));
        if (waiting.length > 0) logger.info({ dropped: waiting }, 'replication session ended: events queued for sinks and not yet acknowledged are dropped; the next session receives them again');
      }
    }
  }

  /** The primary to stream from and its slot; connect and query timeouts keep a hung server from stalling the supervisor. */
  async function readSlot(): Promise<{ confirmedFlushLsn: string | null; host: SourceHost; url: string; enableFailover: boolean }> {
    const { client, host } = await connectPrimary(config.source.url, {
      clientConfig: { application_name: 'walrelay-catalog', connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs },
      onSkip: (skipped, reason) => {
        if (reason.code === 'STALE_PRIMARY') logger.warn({ code: reason.code, host: hostLabel(skipped), err: describeError(reason) }, reason.message);
        else logger.debug({ host: hostLabel(skipped), err: describeError(reason) }, 'passed over a host of source.url');
      },
    });
    sessionHost = hostLabel(host);
    try {
      const slot = await checkSlot(client, config.source.slot);
      const version = await serverVersion(client);
      const enableFailover = wantsFailover(config, version) && !(await readFailoverState(client, config.source.slot, version)).failover;
      return { ...slot, host, url: hostUrl(config.source.url, host), enableFailover };
    } catch (error) {
      throw fromPgError(error, `reading replication slot ${config.source.slot} on ${sessionHost}`);
    } finally {
      await closeClient(client, timeoutMs);
    }
  }

  async function supervise(): Promise<void> {
    if (interruptedRecreation) await recoverSlot(null);
    backoff.reset();
    let waitingLogged = false;
    while (!stopping) {
      const error = await runSession().catch((e: Error) => e);
      if (stopping) break;
      const failure = error instanceof WalrelayError ? error : error ? new WalrelayError('REPLICATION_FAILED', error.message, { retriable: true, cause: error }) : undefined;
      // A silent (hung) host: the next searches ask the other hosts first and do not wait for it (primary.ts).
      if (failure?.code === 'REPLICATION_TIMEOUT' && sessionHost !== null) noteSilent(config.source.url, sessionHost);
      if (failure && isSlotGone(failure)) {
        if (config.source.onSlotLost === 'fail') {
          if (streamedFrom !== null && sessionHost !== null && sessionHost !== streamedFrom) throw slotNotCarriedOver(failure, config.source.slot, streamedFrom, sessionHost);
          throw slotGoneError(failure, config.source.slot, lastCheckpoint !== null);
        }
        const recoveryError = await recoverSlot(failure).then(() => undefined, (e: Error) => e);
        if (recoveryError === undefined) {
          backoff.reset();
          continue;
        }
        if (!(recoveryError instanceof WalrelayError && recoveryError.retriable)) throw recoveryError;
        replicationProblem = describeError(recoveryError);
        logger.warn({ err: describeError(recoveryError), retryInMs: backoff.nextMs }, 'recreating the replication slot failed; trying again');
      } else {
        if (failure && !failure.retriable) throw failure;
        waitingForSlot = failure?.code === 'SLOT_IN_USE';
        replicationProblem = failure ? describeError(failure) : 'the connection ended';
        if (waitingForSlot) {
          // A hot standby: nothing was interrupted, this instance waits its turn. Said once, then quietly.
          const holder = await findSlotHolder(config, timeoutMs).catch(() => null);
          logger[waitingLogged ? 'debug' : 'info']({ err: describeError(failure), holder: holder ? describeSlotHolder(holder) : undefined, retryInMs: backoff.nextMs },
            'waiting for the slot; another walrelay holds it');
          waitingLogged = true;
        } else {
          waitingLogged = false;
          logger.warn({ err: failure ? describeError(failure) : 'connection ended', retryInMs: backoff.nextMs }, streamedOnce
            ? 'replication interrupted; resuming from the confirmed LSN'
            : 'replication could not start; trying again');
        }
      }
      if (!stopping) await backoff.wait(); // a stop during the lookups above must not sit out the pause
    }
  }

  /** onSlotLost: recreate: a new slot, a gap event (through the WAL) and a re-snapshot in the background. */
  /** `failure` null: at start, an interrupted recreation is left to finish. */
  async function recoverSlot(failure: WalrelayError | null): Promise<void> {
    const { slot } = config.source;
    if (failure) logger.error({ err: describeError(failure) }, 'the replication slot is gone; recreating it (source.onSlotLost: recreate)');
    else logger.warn({ slot }, 'an earlier recreation of the replication slot was interrupted; finishing it');
    const recreated = await recreateSlot(config, lastCheckpoint?.confirmed ?? null);
    slotRecreated = true;
    if (!recreated.byUs) {
      logger.warn({ slot }, 'another instance recreated the replication slot first; streaming from it');
      return;
    }
    if (recreated.resnapshotOnly) {
      logger.warn({ slot, toLsn: formatLsn(recreated.toLsn) },
        'the gap event of the earlier recreation was already sent; the published tables are re-snapshotted again as read events, from the start');
    } else {
      logger.warn({ slot, fromLsn: formatLsn(recreated.fromLsn), toLsn: formatLsn(recreated.toLsn) },
        'recreated the replication slot; a gap event tells the sinks which changes were lost, and the published tables are re-snapshotted as read events');
    }
    const abort = new AbortController();
    const done = resnapshot(config, logger, abort.signal).then(
      async (tables) => {
        await endRecreation(config); // only now: a crash before this runs the re-snapshot again at the next start
        logger.info({ tables }, 're-snapshot done');
      },
    ).catch((error: unknown) => {
      if (!abort.signal.aborted) {
        logger.error({ err: describeError(error) },
          `re-snapshot failed: it runs again from the start when walrelay restarts (or run ${RESNAPSHOT_COMMAND} for the published tables)`);
      }
    }).finally(() => { resnapshotting = null; });
    resnapshotting = { abort, done };
  }

  async function shutdown(): Promise<void> {
    if (resnapshotting) {
      logger.warn('stopped during the re-snapshot after a slot recreation: it runs again from the start when walrelay starts again');
      resnapshotting.abort.abort();
      await withTimeout(resnapshotting.done, RESNAPSHOT_STOP_MS); // the chunk under way ends; a hung server must not hold the stop
    }
    clearInterval(gauges);
    stopSlotHealth();
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
        backoff.interrupt();
        // Ending the session makes runSession drain, confirm, then close the connection.
        endSession?.();
      }
      await supervisor;
      await done.catch(() => undefined);
    },
    done,
  };
}

/** What sinks learn of the relay: the slot, the database, and the tables and domain destinations known from the configuration. */
function sinkContext(config: Config): SinkContext {
  const outboxTables = new Set((config.outbox ?? []).map((outbox) => outbox.table));
  return {
    slot: config.source.slot,
    database: parseSourceUrl(config.source.url).database,
    tables: config.source.tables?.filter((table) => !outboxTables.has(table)),
    destinations: [...(config.outbox ?? []).map(({ table, destination }) => ({ table, destination })), ...(config.messages ?? []).map(({ destination }) => ({ destination }))],
  };
}
