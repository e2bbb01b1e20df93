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
import type { Sink, ClientStats } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { WebsocketSinkConfig } from '../../config/schema.js';
import { WalrelayError } from '../../relay/errors.js';
import { createVerifier, authWarnings, AuthError, type Claims, type Verifier } from './auth.js';
import { Client } from './client.js';
import { ReplayRing } from './ring.js';
import { serveStatic } from './static-files.js';
import type { Session, SessionContext } from './protocols/session.js';
import { NativeSession } from './protocols/native.js';
import { RealtimeSession, type RealtimeShared } from './protocols/realtime/session.js';
import { isVsn } from './protocols/realtime/serializer.js';
import { ResumePoints } from './protocols/realtime/resume.js';
import { FrameCache } from './protocols/realtime/frame-cache.js';
import { RowChange, type ColumnType } from '../../relay/route/event.js';

const HEARTBEAT_MS = 30_000;
const FLUSH_MS = 20;

export class WebsocketSink implements Sink {
  readonly name: string;
  readonly durable = false;
  private server: Server | null = null;
  private readonly sockets = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });
  private readonly sessions = new Set<Session>();
  private readonly sessionOf = new Map<Client, Session>();
  private readonly closedByCode = new Map<number, number>();
  private readonly ring: ReplayRing;
  private readonly realtime: RealtimeShared;
  private verify: Verifier | null = null;
  /** What the protocol sessions use of the sink (set by start). */
  private context!: SessionContext;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly config: WebsocketSinkConfig, index: number, private readonly logger: Logger) {
    this.name = config.name ?? `websocket#${index}`;
    this.ring = new ReplayRing(config.ringSize);
    this.realtime = { resume: new ResumePoints(config.resumeWindowSeconds * 1000), columns: new Map<string, readonly ColumnType[]>(), frames: new FrameCache() };
  }

  /** The port actually listened on (config port 0 picks a free one). */
  get port(): number {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : this.config.port;
  }

  async start(): Promise<void> {
    this.verify = await createVerifier(this.config.auth);
    for (const warning of authWarnings(this.config.auth)) this.logger.warn({ sink: this.name }, warning);
    this.context = { config: this.config, ring: this.ring, verify: this.verify, logger: this.logger, drop: (client, code, reason) => this.drop(client, code, reason) };
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
    this.server = tls ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler) : createHttpServer(handler);
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Node removes its own error listener from an upgrading socket: without this one a reset while the token is verified would be an uncaught error.
      socket.on('error', () => socket.destroy());
      // One client's request, however malformed, must not take the process down: whatever throws refuses that request alone.
      this.upgrade(request, socket, head).catch((error: Error) => {
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
    const batch = [...this.sessions];
    for (const session of batch) session.client.beginBatch();
    try {
      for (const event of events) {
        const position = this.ring.position;
        this.ring.push(event);
        if (this.config.supabase && event instanceof RowChange && event.columnTypes) this.realtime.columns.set(`${event.schema}.${event.table}`, event.columnTypes);
        if (this.sessions.size > 0) this.fanOut(event, position);
      }
    } finally {
      for (const session of batch) session.client.endBatch();
    }
  }

  private fanOut(event: ChangeEvent, position: number): void {
    const name = event.table === undefined ? null : `${event.schema}.${event.table}`;
    for (const session of this.sessions) {
      session.deliver(event, name, position);
      if (session.client.overloaded()) this.drop(session.client, 1013, 'client cannot keep up: too many undelivered changes');
    }
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
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
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
      socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${reason}\n`);
      return;
    }
    this.sockets.handleUpgrade(request, socket, head, (ws) => this.accept(ws, socket, claims, (client) => new NativeSession(client, this.context)));
  }

  /** Supabase Realtime (README "Moving from Supabase Realtime"): the apikey is the credential, vsn picks the frame format. */
  private async upgradeRealtime(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const refuse = (status: string, message: string) => {
      const body = JSON.stringify({ error: message });
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    const vsn = url.searchParams.get('vsn') ?? '1.0.0';
    if (!isVsn(vsn)) {
      refuse('400 Bad Request', `unsupported vsn ${vsn}: expected 1.0.0 or 2.0.0`);
      return;
    }
    const header = request.headers['x-api-key'];
    const apikey = url.searchParams.get('apikey') ?? (typeof header === 'string' ? header : null);
    let claims: Claims;
    try {
      claims = await this.verify!(apikey);
    } catch (error) {
      refuse('401 Unauthorized', error instanceof AuthError ? error.message : 'authentication failed');
      return;
    }
    const clientName = url.searchParams.get('walrelay_client');
    if (clientName !== null && this.config.auth !== 'none' && claims.subject === null) {
      refuse('400 Bad Request', 'walrelay_client needs a token with a sub claim: a resume point belongs to the token\'s subject');
      return;
    }
    // A resume point belongs to the token's subject: another user naming the same client neither replaces nor resumes it.
    const resumeName = clientName === null ? null : `${claims.subject ?? ''}\u0000${clientName}`;
    this.sockets.handleUpgrade(request, socket, head, (ws) => this.accept(ws, socket, claims, (client) => new RealtimeSession(client, this.context, vsn, resumeName, this.realtime)));
  }

  private accept(ws: WebSocket, transport: Duplex, claims: Claims, open: (client: Client) => Session): void {
    const client = new Client(ws, transport, claims, this.config.maxClientQueue);
    const session = open(client);
    this.sessions.add(session);
    this.sessionOf.set(client, session);
    ws.on('pong', () => { client.alive = true; });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      // A defect in one client's frame handling closes that client, never the process.
      Promise.resolve().then(() => session.receive(data, isBinary)).catch((error: Error) => {
        this.logger.warn({ sink: this.name, err: error.message }, 'websocket frame handling failed');
        this.drop(client, 1011, 'internal error');
      });
    });
    ws.on('close', () => this.forget(client));
    ws.on('error', () => this.forget(client));
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
    return { connected: this.sessions.size, closedByCode: this.closedByCode };
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
    for (const { client } of [...this.sessions]) {
      this.forget(client);
      client.socket.close(1001, 'walrelay is stopping');
      client.socket.terminate();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
  }
}

/** Answers a request that is not upgraded, and closes its socket. */
function refuse(socket: Duplex, status: string, contentType: string, body: string, extraHeaders = ''): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status}\r\ncontent-type: ${contentType}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}connection: close\r\n\r\n${body}`);
  // A client that never reads must not keep the socket (and its memory) open.
  setTimeout(() => socket.destroy(), 1000).unref();
}
