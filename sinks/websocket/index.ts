// The websocket sink (contract section 5): a live feed for browsers.
// Best-effort by design: write() fans a batch out and returns at once, so
// the LSN checkpoint never waits for a browser; clients that reconnect catch
// up from the replay ring with "since".
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { Logger } from 'pino';
import type { Sink, ClientStats } from '../sink.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import type { WebsocketSinkConfig } from '../../config/schema.js';
import { encodeEvent } from '../formats.js';
import { WalrelayError } from '../../relay/errors.js';
import { createVerifier, AuthError, type Claims, type Verifier } from './auth.js';
import { Client } from './client.js';
import { Subscription } from './subscription.js';
import { parseClientFrame, errorFrame, FrameError, type SubscribeFrame } from './protocol.js';
import { ReplayRing } from './ring.js';
import { FilterSyntaxError } from './filter.js';
import { serveStatic } from './static-files.js';

const HEARTBEAT_MS = 30_000;
const FLUSH_MS = 20;

export class WebsocketSink implements Sink {
  readonly name: string;
  readonly durable = false;
  private server: Server | null = null;
  private readonly sockets = new WebSocketServer({ noServer: true, maxPayload: 16 << 20 });
  private readonly clients = new Set<Client>();
  private readonly closedByCode = new Map<number, number>();
  private readonly ring: ReplayRing;
  private verify: Verifier | null = null;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly config: WebsocketSinkConfig, index: number, private readonly logger: Logger) {
    this.name = config.name ?? `websocket#${index}`;
    this.ring = new ReplayRing(config.ringSize);
  }

  /** The port actually listened on (config port 0 picks a free one). */
  get port(): number {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : this.config.port;
  }

  async start(): Promise<void> {
    this.verify = await createVerifier(this.config.auth);
    const handler = (request: IncomingMessage, response: ServerResponse) => {
      if (this.config.staticDir) void serveStatic(this.config.staticDir, request, response);
      else response.writeHead(426, { 'content-type': 'text/plain' }).end('websocket endpoint: connect with a WebSocket client\n');
    };
    const tls = this.config.tls;
    this.server = tls ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler) : createHttpServer(handler);
    this.server.on('upgrade', (request, socket, head) => { void this.upgrade(request, socket, head); });
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
    const batch = [...this.clients];
    for (const client of batch) client.beginBatch();
    try {
      for (const event of events) {
        this.ring.push(event);
        if (this.clients.size > 0) this.fanOut(event);
      }
    } finally {
      for (const client of batch) client.endBatch();
    }
  }

  private fanOut(event: ChangeEvent): void {
    const name = event.table === undefined ? null : `${event.schema}.${event.table}`;
    let json: string | null = null;
    for (const client of this.clients) {
      if (!visible(client.claims, event, name)) continue;
      for (const subscription of client.subscriptions.values()) {
        if (!subscription.matches(event, name)) continue;
        json ??= encodeEvent(event, this.config.format, { debezium: this.config.debezium });
        client.sendChange(subscription, event, json);
      }
      if (client.overloaded()) this.drop(client, 1013, 'client cannot keep up: too many undelivered changes');
    }
  }

  private async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== this.config.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
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
    this.sockets.handleUpgrade(request, socket, head, (ws) => this.accept(ws, socket, claims));
  }

  private accept(ws: WebSocket, transport: Duplex, claims: Claims): void {
    const client = new Client(ws, transport, claims, this.config.maxClientQueue);
    this.clients.add(client);
    this.scheduleExpiry(client);
    ws.on('pong', () => { client.alive = true; });
    ws.on('message', (data: RawData, isBinary: boolean) => { void this.onFrame(client, data, isBinary); });
    ws.on('close', () => this.forget(client));
    ws.on('error', () => this.forget(client));
  }

  private async onFrame(client: Client, data: RawData, isBinary: boolean): Promise<void> {
    const size = Array.isArray(data) ? data.reduce((total, part) => total + part.length, 0) : (data as Buffer).byteLength;
    if (size > this.config.maxFrameBytes) {
      client.sendControl(errorFrame('too_large', `frame of ${size} bytes exceeds maxFrameBytes ${this.config.maxFrameBytes}`));
      return;
    }
    if (isBinary) {
      client.sendControl(errorFrame('bad_request', 'binary frames are not understood; send JSON text frames'));
      return;
    }
    try {
      const frame = parseClientFrame(data.toString());
      if (frame.type === 'subscribe') this.subscribe(client, frame);
      else if (frame.type === 'unsubscribe') {
        if (!client.subscriptions.delete(frame.id)) throw new FrameError('unknown_subscription', `no subscription ${frame.id}`, frame.id);
        client.sendControl(JSON.stringify({ type: 'unsubscribed', id: frame.id }));
      } else {
        await this.reauthenticate(client, frame.token);
      }
    } catch (error) {
      if (error instanceof FrameError) client.sendControl(errorFrame(error.code, error.message, error.id));
      else client.sendControl(errorFrame('internal', (error as Error).message));
    }
  }

  private subscribe(client: Client, frame: SubscribeFrame): void {
    if (!frame.table.includes('*') && !client.claims.mayRead(frame.table)) {
      throw new FrameError('forbidden', `your token does not allow reading ${frame.table}`, frame.id);
    }
    if (client.subscriptions.has(frame.id)) throw new FrameError('bad_request', `subscription ${frame.id} exists; unsubscribe first`, frame.id);
    let subscription: Subscription;
    try {
      subscription = new Subscription(frame);
    } catch (error) {
      if (error instanceof FilterSyntaxError) throw new FrameError('bad_request', error.message, frame.id);
      throw error;
    }
    let replay: ChangeEvent[] = [];
    if (frame.since !== undefined) {
      const missed = this.ring.after(frame.since);
      if (missed === null) throw new FrameError('resume_gap', `event ${frame.since} is no longer held (ring of ${this.config.ringSize}); reload the current state, then subscribe without since`, frame.id);
      replay = missed;
    }
    // Registered, replayed and acknowledged in one turn of the event loop: nothing written after "subscribed" is missed, nothing is sent twice.
    client.subscriptions.set(frame.id, subscription);
    client.sendControl(JSON.stringify({ type: 'subscribed', id: frame.id }));
    for (const event of replay) {
      const name = event.table === undefined ? null : `${event.schema}.${event.table}`;
      if (visible(client.claims, event, name) && subscription.matches(event, name)) client.sendChange(subscription, event, encodeEvent(event, this.config.format, { debezium: this.config.debezium }));
    }
  }

  private async reauthenticate(client: Client, token: string): Promise<void> {
    try {
      client.claims = await this.verify!(token);
    } catch (error) {
      throw new FrameError('unauthorized', (error as Error).message);
    }
    this.scheduleExpiry(client);
    for (const [id, subscription] of client.subscriptions) {
      // Subscriptions the new token no longer allows end here (patterns stay: events are filtered one by one).
      if (!subscription.tablePattern.includes('*') && !client.claims.mayRead(subscription.tablePattern)) {
        client.subscriptions.delete(id);
        client.sendControl(errorFrame('forbidden', `your new token does not allow reading ${subscription.tablePattern}; subscription ended`, id));
      }
    }
    client.sendControl(JSON.stringify({ type: 'authenticated', expiresAt: client.claims.expiresAt === null ? null : new Date(client.claims.expiresAt).toISOString() }));
  }

  private scheduleExpiry(client: Client): void {
    if (client.expiryTimer) clearTimeout(client.expiryTimer);
    client.expiryTimer = null;
    const expiresAt = client.claims.expiresAt;
    if (expiresAt === null) return;
    client.expiryTimer = setTimeout(() => this.drop(client, 4001, 'token expired: reconnect or send {"type":"auth","token":…} before expiry'), Math.max(0, expiresAt - Date.now()));
  }

  private flushAll(): void {
    for (const client of this.clients) {
      if (client.queued === 0) continue;
      client.flush();
      if (client.overloaded()) this.drop(client, 1013, 'client cannot keep up: too many undelivered changes');
    }
  }

  private heartbeat(): void {
    for (const client of this.clients) {
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
    return { connected: this.clients.size, closedByCode: this.closedByCode };
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
    this.clients.delete(client);
    if (client.expiryTimer) clearTimeout(client.expiryTimer);
  }

  async close(): Promise<void> {
    this.timers.forEach((timer) => clearInterval(timer));
    for (const client of [...this.clients]) {
      this.forget(client);
      client.socket.close(1001, 'walrelay is stopping');
      client.socket.terminate();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections?.();
  }
}

/** The token's tables and row filters, enforced on every event. */
function visible(claims: Claims, event: ChangeEvent, name: string | null): boolean {
  if (name === null) return true;
  if (!claims.mayRead(name)) return false;
  for (const rule of claims.rowFilters) {
    if (rule.matches(name) && !rule.predicate(event)) return false;
  }
  return true;
}
