// A minimal Redis connection for the write path: pipelined commands as one
// pre-encoded RESP payload, replies counted and checked. It replaces ioredis
// here because ioredis builds an object, argument array and promise per
// command; at 100k XADDs a second that garbage cost more CPU than decoding
// the WAL (see README, "Why not ioredis for XADD").
//
// A server that hangs (SIGSTOP, a partition) keeps the socket open and never
// answers: while a request waits, silence longer than `timeoutMs` since the
// last byte received fails the connection, so the caller reconnects and
// retries instead of waiting forever.
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { WalrelayError } from '../../relay/errors.js';

export class RedisReplyError extends Error {}

export interface RedisConnectionOptions {
  /** Silence allowed while a reply is awaited (and for connecting). */
  timeoutMs: number;
  /** The config key that sets it, named in the timeout error (e.g. "sinks[0].timeoutSeconds"). */
  timeoutKey: string;
}

/** What a caller may want of a reply: an integer, an array of them (WAITAOF), nothing else (a status or an XADD's id). */
export type ReplyValue = number | ReplyValue[] | null;

interface PendingRequest {
  expected: number;
  seen: number;
  firstError: string | null;
  /** The value of the newest reply of this request. */
  last: ReplyValue;
  resolve(value: ReplyValue): void;
  reject(error: Error): void;
}

export class RedisConnection {
  private socket: Socket | null = null;
  private connecting: Promise<Socket> | null = null;
  private buffer = '';
  /** Requests in the order they were written; Redis answers in that order. */
  private pending: PendingRequest[] = [];
  private lastHeardAt = 0;
  /** Counts successful dials: a write and a later WAIT prove something only on the same connection. */
  generation = 0;
  private watchdog: NodeJS.Timeout | null = null;
  readonly address: string;

  constructor(private readonly url: string, private readonly options: RedisConnectionOptions) {
    const parsed = new URL(url);
    this.address = `${parsed.hostname || '127.0.0.1'}:${parsed.port || 6379}`;
  }

  get connected(): boolean {
    return this.socket !== null;
  }

  /** Milliseconds since Redis last sent anything (or since connecting); Infinity when not connected. */
  get silentForMs(): number {
    return this.socket ? Date.now() - this.lastHeardAt : Infinity;
  }

  /**
   * Sends `count` pipelined commands (already RESP-encoded; pieces are
   * written back to back, without joining them) and resolves when every
   * reply is in, with the value of the last reply; rejects with the first
   * error reply.
   */
  async exec(payload: string | Buffer | readonly Buffer[], count: number): Promise<ReplyValue> {
    const socket = await this.open();
    return this.send(socket, payload, count);
  }

  /** Sends one command whose reply is an integer (EVAL of the exactly-once script, WAIT) and resolves with it. */
  async execInteger(payload: string): Promise<number> {
    const value = await this.exec(payload, 1);
    if (typeof value !== 'number') throw new Error(`redis at ${this.address} answered ${JSON.stringify(value)} where an integer was expected`);
    return value;
  }

  private send(socket: Socket, payload: string | Buffer | readonly Buffer[], count: number): Promise<ReplyValue> {
    return new Promise<ReplyValue>((resolve, reject) => {
      this.pending.push({ expected: count, seen: 0, firstError: null, last: null, resolve, reject });
      if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
        socket.write(payload);
        return;
      }
      socket.cork();
      for (const piece of payload) socket.write(piece);
      socket.uncork();
    });
  }

  private open(): Promise<Socket> {
    if (this.socket) return Promise.resolve(this.socket);
    this.connecting ??= this.dial().finally(() => { this.connecting = null; });
    return this.connecting;
  }

  private async dial(): Promise<Socket> {
    const url = new URL(this.url);
    const port = Number(url.port || 6379);
    const host = url.hostname || '127.0.0.1';
    const socket = await new Promise<Socket>((resolve, reject) => {
      const options = { host, port, servername: host };
      const created: Socket = url.protocol === 'rediss:' ? connectTls(options, () => resolve(created)) : connectTcp(options, () => resolve(created));
      created.once('error', reject);
      created.setTimeout(this.options.timeoutMs, () => created.destroy(this.timeoutError('connecting')));
    });
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    // A socket given up on (timed out) still reports its close later: it must not fail its successor.
    socket.on('error', (error) => { if (this.socket === socket) this.fail(error); });
    socket.on('close', () => { if (this.socket === socket) this.fail(new Error(`redis at ${this.address} closed the connection`)); });
    this.socket = socket;
    this.buffer = '';
    this.lastHeardAt = Date.now();
    this.watchdog = setInterval(() => this.checkSilence(), Math.max(50, Math.min(1000, this.options.timeoutMs / 4)));
    this.watchdog.unref();
    // A connection is usable only once logged in and on its database: a
    // socket kept after a failed AUTH or SELECT would take the next write to
    // database 0 (or to a user it was not meant for) and have it confirmed.
    if (url.password) await this.setUp(socket, url.username ? ['AUTH', decodeURIComponent(url.username), decodeURIComponent(url.password)] : ['AUTH', decodeURIComponent(url.password)]);
    const db = url.pathname.slice(1);
    if (db) await this.setUp(socket, ['SELECT', decodeURIComponent(db)]);
    this.generation++;
    return socket;
  }

  /** One AUTH or SELECT of dial(); its refusal closes the socket and names the setting to fix. */
  private async setUp(socket: Socket, command: string[]): Promise<void> {
    try {
      await this.send(socket, encodeCommand(command), 1);
    } catch (error) {
      if (this.socket === socket) this.fail(error as Error);
      socket.destroy();
      if (!(error instanceof RedisReplyError)) throw error;
      if (command[0] === 'AUTH') {
        throw new WalrelayError('REDIS_AUTH', `redis at ${this.address} refused the login: ${error.message}`, {
          hint: 'check the user and password in the sink\'s redis url (redis://user:password@host:port) against the server\'s requirepass or ACL',
        });
      }
      throw new WalrelayError('REDIS_SELECT', `redis at ${this.address} refused database ${command[1]}: ${error.message}`, {
        hint: 'the path of the sink\'s redis url names the database (redis://host:port/<n>); it must be below the server\'s "databases" setting (16 by default)',
      });
    }
  }

  /** Silence is only a fault while an answer is owed; an idle connection may be quiet (the sink pings it). */
  private checkSilence(): void {
    if (this.pending.length > 0 && Date.now() - this.lastHeardAt > this.options.timeoutMs) this.fail(this.timeoutError('answering'));
  }

  private timeoutError(what: 'connecting' | 'answering'): WalrelayError {
    const seconds = this.options.timeoutMs / 1000;
    const message = what === 'connecting'
      ? `connecting to redis at ${this.address} did not succeed within ${seconds} s`
      : `redis at ${this.address} did not answer within ${seconds} s (hung or unreachable)`;
    return new WalrelayError('REDIS_TIMEOUT', message, {
      retriable: true,
      hint: `walrelay reconnects and sends the batch again; raise ${this.options.timeoutKey} if this Redis is only slow`,
    });
  }

  private onData(chunk: string): void {
    this.lastHeardAt = Date.now();
    this.buffer += chunk;
    let position = 0;
    while (position < this.buffer.length) {
      const request = this.pending[0];
      if (!request) {
        this.fail(new Error(`unexpected reply from redis at ${this.address}: nothing was asked`));
        return;
      }
      let reply: ParsedReply | null;
      try {
        reply = parseReply(this.buffer, position);
      } catch (error) {
        this.fail(error as Error);
        return;
      }
      if (reply === null) break;
      position = reply.next;
      if (reply.error !== undefined) request.firstError ??= reply.error;
      request.last = reply.value;
      if (++request.seen === request.expected) {
        this.pending.shift();
        if (request.firstError !== null) request.reject(new RedisReplyError(request.firstError));
        else request.resolve(request.last);
      }
    }
    this.buffer = this.buffer.slice(position);
  }

  private fail(error: Error): void {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    for (const request of this.pending.splice(0)) request.reject(error);
  }

  close(): void {
    this.fail(new Error('closed'));
  }
}

/** RESP array of bulk strings. */
export function encodeCommand(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return out;
}

interface ParsedReply {
  value: ReplyValue;
  /** The error reply's text (a "-" reply, or the first one inside an array). */
  error?: string;
  /** Where the next reply starts. */
  next: number;
}

/** One complete RESP2 reply at `position`, or null when the buffer does not hold all of it yet. */
function parseReply(buffer: string, position: number): ParsedReply | null {
  const lineEnd = buffer.indexOf('\r\n', position);
  if (lineEnd < 0) return null;
  const type = buffer[position];
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: null, next };
    case '-':
      return { value: null, error: buffer.slice(position + 1, lineEnd), next };
    case ':':
      return { value: Number(buffer.slice(position + 1, lineEnd)), next };
    case '$': {
      const length = Number(buffer.slice(position + 1, lineEnd));
      if (length < 0) return { value: null, next };
      // Reply ids are ASCII, so characters equal bytes here; the content itself is not needed.
      if (buffer.length < next + length + 2) return null;
      return { value: null, next: next + length + 2 };
    }
    case '*': {
      const count = Number(buffer.slice(position + 1, lineEnd));
      const values: ReplyValue[] = [];
      let error: string | undefined;
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, at);
        if (item === null) return null;
        values.push(item.value);
        error ??= item.error;
        at = item.next;
      }
      return { value: count < 0 ? null : values, error, next: at };
    }
    default:
      throw new Error(`unexpected reply from redis: ${JSON.stringify(buffer.slice(position, lineEnd))}`);
  }
}
