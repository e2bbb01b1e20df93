// The websocket sink (contract section 5): a live feed for browsers.
// Best-effort by design: write() fans a batch out and returns at once, so
// the LSN checkpoint never waits for a browser; clients that reconnect catch
// up from the replay ring. One port speaks two protocols side by side
// (protocols/): walrelay's own on `path`, and with `supabase: true` Supabase
// Realtime on every path ending in /websocket. Both share the fan-out, the
// ring, the per-client queues and authentication.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Logger } from 'pino';
import type { Sink, ClientStats, SinkContext } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { WebsocketSinkConfig } from '../../config/schema.js';
import { WalrelayError } from '../../relay/errors.js';
import { createVerifier, authWarnings, AuthError, type Claims, type Verifier } from './auth.js';
import { Client } from './client.js';
import { ReplayRing } from './ring.js';
import { serveStatic } from './static-files.js';
import { Admission, type RefusalReason } from './admission.js';
import { FrameRate } from './frame-rate.js';
import type { Session, SessionContext } from './protocols/session.js';
import { NativeSession } from './protocols/native.js';
import { RealtimeSession, type RealtimeShared } from './protocols/realtime/session.js';
import { isVsn } from './protocols/realtime/serializer.js';
import { ResumePoints } from './protocols/realtime/resume.js';
import { FrameCache } from './frame-cache.js';
import { WireJoiner } from './wire-frame.js';
import { RlsChecker } from './protocols/realtime/rls.js';
import { RowChange, type ColumnType } from '../../relay/route/event.js';

const HEARTBEAT_MS = 30_000;
const FLUSH_MS = 20;

export class WebsocketSink implements Sink {
  readonly name: string;
  readonly durable = false;
  private server: Server | null = null;
  /** ws closes a connection whose frame exceeds maxPayload with 1009, before buffering it whole. */
  private readonly sockets: WebSocketServer;
  private readonly admission: Admission;
  private readonly refusedByReason = new Map<string, number>();
  private readonly sessions = new Set<Session>();
  private readonly sessionOf = new Map<Client, Session>();
  /** Sockets handed to ws: their handshake completed in time. */
  private readonly upgraded = new WeakSet<Duplex>();
  private readonly closedByCode = new Map<number, number>();
  private readonly sent = { frames: 0 };
  private readonly ring: ReplayRing;
  private readonly realtime: RealtimeShared;
  private verify: Verifier | null = null;
  /** What the protocol sessions use of the sink (set by start). */
  private context!: SessionContext;
  private timers: NodeJS.Timeout[] = [];
  /** The pending end of the current batch (beginBatch), or null. */
  private batch: NodeJS.Immediate | null = null;

  constructor(private readonly config: WebsocketSinkConfig, index: number, private readonly logger: Logger, private readonly sinkContext: SinkContext = { slot: 'walrelay' }) {
    this.name = config.name ?? `websocket#${index}`;
    this.sockets = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes });
    this.admission = new Admission(config);
    this.ring = new ReplayRing(config.ringSize);
    // On an edge, walrelay_client resume points are shared through the feed's store (resume.ts).
    const store = sinkContext.resumeStore ? { store: sinkContext.resumeStore, logger: this.logger.child({ sink: this.name }) } : undefined;
    this.realtime = { resume: new ResumePoints(config.resumeWindowSeconds * 1000, store), columns: new Map<string, readonly ColumnType[]>(), frames: new FrameCache(), rls: null };
  }

  /** The port actually listened on (config port 0 picks a free one). */
  get port(): number {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : this.config.port;
  }

  async start(): Promise<void> {
    this.verify = await createVerifier(this.config.auth);
    if (this.config.authorization === 'rls') {
      if (!this.sinkContext.sourceUrl) throw new WalrelayError('WEBSOCKET_RLS', 'authorization: rls needs the source database to check rows against', { hint: 'run the websocket sink from walrelay run with source.url set' });
      this.realtime.rls = new RlsChecker(this.sinkContext.sourceUrl, this.config.rls, this.logger.child({ sink: this.name }));
    }
    for (const warning of authWarnings(this.config.auth)) this.logger.warn({ sink: this.name }, warning);
    if (this.config.auth === 'none' && !this.config.allowedOrigins) {
      this.logger.warn({ sink: this.name }, 'auth is none and allowedOrigins is not set: any web page a browser opens can read this feed');
    }
    this.context = {
      config: this.config, ring: this.ring, verify: this.verify, logger: this.logger,
      frames: this.realtime.frames,
      history: this.sinkContext.feedHistory,
      database: this.sinkContext.database,
      drop: (client, code, reason) => this.drop(client, code, reason),
      refused: (reason) => this.count(reason),
    };
    const handler = (request: IncomingMessage, response: ServerResponse) => {
      if (this.config.staticDir) {
        serveStatic(this.config.staticDir, request, response).catch((error: Error) => {
          this.logger.warn({ sink: this.name, err: error.message }, 'static file request failed');
          if (!response.headersSent) response.writeHead(500);
          response.end();
        });
      } else response.writeHead(426, { 'content-type': 'text/plain' }).end('websocket endpoint: connect with a WebSocket client\n');
    };
    const tls = this.config.tls;
    // Node checks headersTimeout only every connectionsCheckingInterval (30 s by default): checked often, a request
    // trickled in byte by byte (slowloris) ends within handshakeTimeoutSeconds plus at most a second.
    const handshakeMs = this.config.handshakeTimeoutSeconds * 1000;
    const timeouts = { headersTimeout: handshakeMs, requestTimeout: handshakeMs, connectionsCheckingInterval: Math.min(1000, handshakeMs / 2) };
    this.server = tls ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), ...timeouts }, handler) : createHttpServer(timeouts, handler);
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => this.clientError(error, socket));
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Node removes its own error listener from an upgrading socket: without this one a reset while the token is verified would be an uncaught error.
      socket.on('error', () => socket.destroy());
      // One client's request, however malformed, must not take the process down: whatever throws refuses that request alone.
      this.admit(request, socket, head).catch((error: Error) => {
        this.logger.warn({ sink: this.name, err: error.message }, 'websocket upgrade failed');
        refuse(socket, '400 Bad Request', 'text/plain', 'bad request\n');
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', (error: NodeJS.ErrnoException) => reject(new WalrelayError('WEBSOCKET_LISTEN', `cannot listen on ${this.config.host}:${this.config.port}: ${error.message}`, {
        hint: error.code === 'EADDRINUSE' ? 'another process uses the port: choose another sinks[].port' : undefined,
      })));
      this.server!.listen(this.config.port, this.config.host, () => resolve());
    });
    this.timers.push(setInterval(() => this.flushAll(), FLUSH_MS), setInterval(() => this.heartbeat(), HEARTBEAT_MS));
    this.timers.forEach((timer) => timer.unref());
    this.logger.info({ sink: this.name, url: `${tls ? 'wss' : 'ws'}://${this.config.host}:${this.port}${this.config.path}` }, 'websocket sink listening');
  }

  isReady(): boolean {
    return this.server?.listening ?? false;
  }

  async write(events: readonly ChangeEvent[]): Promise<void> {
    if (this.batch === null && this.sessions.size > 0) this.beginBatch();
    for (const event of events) {
      const position = this.ring.position;
      this.ring.push(event);
      if (this.config.supabase && event instanceof RowChange && event.columnTypes) this.realtime.columns.set(`${event.schema}.${event.table}`, event.columnTypes);
      if (this.sessions.size > 0) this.fanOut(event, position);
    }
    this.realtime.resume.written();
  }

  /**
   * Every client gathers its frames until the event loop has handled what it
   * read (setImmediate): the batches of one read of the replication stream
   * reach each client as one socket write. A busy relay reads more per turn
   * and so writes less often per frame; an idle one writes at once.
   */
  private beginBatch(): void {
    const clients = [...this.sessions].map((session) => session.client);
    const joiner = new WireJoiner();
    for (const client of clients) client.beginBatch(joiner);
    this.batch = setImmediate(() => {
      this.batch = null;
      for (const client of clients) client.endBatch();
    });
  }

  private fanOut(event: ChangeEvent, position: number): void {
    const name = event.table === undefined ? null : `${event.schema}.${event.table}`;
    for (const session of this.sessions) {
      session.deliver(event, name, position);
      if (session.client.overloaded()) this.drop(session.client, 1013, 'client cannot keep up: too many undelivered changes');
    }
  }

  /** Node's own refusals (a malformed request, a request not complete in time): counted, answered, closed. */
  private clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      this.count('handshake_timeout');
      refuse(socket, '408 Request Timeout', 'text/plain', `request not complete within handshakeTimeoutSeconds ${this.config.handshakeTimeoutSeconds}\n`);
    } else if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
    } else {
      this.count('bad_request');
      refuse(socket, error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request', 'text/plain', 'bad request\n');
    }
  }

  private count(reason: RefusalReason): void {
    this.refusedByReason.set(reason, (this.refusedByReason.get(reason) ?? 0) + 1);
  }

  /** Limits first (cheap), then the protocol's own upgrade; the connection counts against the limits until its socket closes. */
  private async admit(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const address = this.admission.clientAddress(request);
    const refusal = this.admission.admit(request, address);
    if (refusal) {
      this.count(refusal.reason);
      refuse(socket, refusal.status, 'text/plain', `${refusal.message}\n`, refusal.reason === 'origin' ? '' : 'retry-after: 5\r\n');
      return;
    }
    socket.once('close', () => this.admission.release(address));
    // Covers the time after the headers (a slow JWKS fetch, a client that never reads the 101): not upgraded in time = closed.
    const timer = setTimeout(() => {
      if (this.upgraded.has(socket)) return;
      this.count('handshake_timeout');
      socket.destroy();
    }, this.config.handshakeTimeoutSeconds * 1000);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    await this.upgrade(request, socket, head);
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://localhost');
    } catch {
      refuse(socket, '400 Bad Request', 'text/plain', 'bad request: malformed request target\n');
      return;
    }
    const realtime = url.pathname !== this.config.path && this.config.supabase && url.pathname.endsWith('/websocket');
    if (url.pathname !== this.config.path && !realtime) {
      this.count('bad_request');
      refuse(socket, '404 Not Found', 'text/plain', 'not found\n');
      return;
    }
    if (realtime) {
      await this.upgradeRealtime(request, socket, head, url);
      return;
    }
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7) : url.searchParams.get('token');
    let claims: Claims;
    try {
      claims = await this.verify!(token);
    } catch (error) {
      const reason = error instanceof AuthError ? error.message : 'authentication failed';
      this.count('unauthorized');
      refuse(socket, '401 Unauthorized', 'text/plain', `${reason}\n`);
      return;
    }
    this.handleUpgrade(request, socket, head, claims, (client) => new NativeSession(client, this.context));
  }

  /** Supabase Realtime (README "Moving from Supabase Realtime"): the apikey is the credential, vsn picks the frame format. */
  private async upgradeRealtime(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const refuseJson = (status: string, message: string) => refuse(socket, status, 'application/json', JSON.stringify({ error: message }));
    const vsn = url.searchParams.get('vsn') ?? '1.0.0';
    if (!isVsn(vsn)) {
      this.count('bad_request');
      refuseJson('400 Bad Request', `unsupported vsn ${vsn}: expected 1.0.0 or 2.0.0`);
      return;
    }
    const header = request.headers['x-api-key'];
    const apikey = url.searchParams.get('apikey') ?? (typeof header === 'string' ? header : null);
    let claims: Claims;
    try {
      claims = await this.verify!(apikey, { tablesOptional: this.config.authorization === 'rls' });
    } catch (error) {
      this.count('unauthorized');
      refuseJson('401 Unauthorized', error instanceof AuthError ? error.message : 'authentication failed');
      return;
    }
    const clientName = url.searchParams.get('walrelay_client');
    if (clientName !== null && this.config.auth !== 'none' && claims.subject === null) {
      this.count('bad_request');
      refuseJson('400 Bad Request', 'walrelay_client needs a token with a sub claim: a resume point belongs to the token\'s subject');
      return;
    }
    // A resume point belongs to the token's subject: another user naming the same client neither replaces nor resumes it.
    const resumeName = clientName === null ? null : `${claims.subject ?? ''}\u0000${clientName}`;
    this.handleUpgrade(request, socket, head, claims, (client) => new RealtimeSession(client, this.context, vsn, resumeName, this.realtime));
  }

  private handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, claims: Claims, open: (client: Client) => Session): void {
    if (socket.destroyed) return; // gone (or timed out) while the token was verified
    this.upgraded.add(socket);
    this.sockets.handleUpgrade(request, socket, head, (ws) => this.accept(ws, socket, claims, open));
  }

  private accept(ws: WebSocket, transport: Duplex, claims: Claims, open: (client: Client) => Session): void {
    const client = new Client(ws, transport, claims, this.config.maxClientQueue, this.sent);
    const rate = new FrameRate(this.config.maxClientFramesPerSecond);
    const session = open(client);
    this.sessions.add(session);
    this.sessionOf.set(client, session);
    ws.on('pong', () => { client.alive = true; });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!this.sessionOf.has(client)) return; // already dropped: its remaining frames are not handled
      if (!rate.take()) {
        this.count('frame_rate');
        this.drop(client, 1008, `more than maxClientFramesPerSecond ${this.config.maxClientFramesPerSecond} frames per second`);
        return;
      }
      // A defect in one client's frame handling closes that client, never the process.
      Promise.resolve().then(() => session.receive(data, isBinary)).catch((error: Error) => {
        this.logger.warn({ sink: this.name, err: error.message }, 'websocket frame handling failed');
        this.drop(client, 1011, 'internal error');
      });
    });
    ws.on('close', () => this.forget(client));
    ws.on('error', (error: Error & { code?: string }) => {
      // ws has already closed the connection with 1009 (maxFrameBytes), 1002 or 1007.
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.count('frame_too_large');
      this.forget(client);
    });
  }

  private flushAll(): void {
    for (const { client } of this.sessions) {
      if (client.queued === 0) continue;
      client.flush();
      if (client.overloaded()) this.drop(client, 1013, 'client cannot keep up: too many undelivered changes');
    }
  }

  private heartbeat(): void {
    for (const { client } of this.sessions) {
      if (!client.alive) {
        client.socket.terminate();
        this.forget(client);
        continue;
      }
      client.alive = false;
      client.socket.ping();
    }
  }

  clientStats(): ClientStats {
    return { connected: this.sessions.size, closedByCode: this.closedByCode, refusedByReason: this.refusedByReason, framesSent: this.sent.frames };
  }

  private drop(client: Client, code: number, reason: string): void {
    this.logger.info({ sink: this.name, code, reason, queued: client.queued }, 'closing websocket client');
    this.closedByCode.set(code, (this.closedByCode.get(code) ?? 0) + 1);
    this.forget(client);
    client.socket.close(code, reason);
    // A client that stopped reading never completes the close handshake.
    setTimeout(() => client.socket.terminate(), 2000).unref();
  }

  private forget(client: Client): void {
    const session = this.sessionOf.get(client);
    if (!session) return;
    this.sessionOf.delete(client);
    this.sessions.delete(session);
    session.end();
  }

  async close(): Promise<void> {
    this.timers.forEach((timer) => clearInterval(timer));
    if (this.batch) clearImmediate(this.batch);
    this.batch = null;
    for (const { client } of [...this.sessions]) {
      this.forget(client);
      client.socket.close(1001, 'walrelay is stopping');
      client.socket.terminate();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
    this.realtime.resume.close();
    await this.realtime.rls?.close();
  }
}

/** Answers a request that is not upgraded, and closes its socket. */
function refuse(socket: Duplex, status: string, contentType: string, body: string, extraHeaders = ''): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status}\r\ncontent-type: ${contentType}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}connection: close\r\n\r\n${body}`);
  // A client that never reads must not keep the socket (and its memory) open.
  setTimeout(() => socket.destroy(), 1000).unref();
}
