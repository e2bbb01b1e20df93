// A minimal Redis connection for the write path: pipelined commands as one
// pre-encoded RESP payload, replies counted and checked. It replaces ioredis
// here because ioredis builds an object, argument array and promise per
// command; at 100k XADDs a second that garbage cost more CPU than decoding
// the WAL (see README, "Why not ioredis for XADD").
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';

export class RedisReplyError extends Error {}

export class RedisConnection {
  private socket: Socket | null = null;
  private connecting: Promise<Socket> | null = null;
  private buffer = '';
  private pending: { expected: number; seen: number; firstError: string | null; resolve(): void; reject(error: Error): void } | null = null;

  /** The value of the newest integer reply (the exactly-once script reports how many events it appended). */
  lastIntegerReply = 0;

  constructor(private readonly url: string) {}

  get connected(): boolean {
    return this.socket !== null;
  }

  /** Sends `count` pipelined commands (already RESP-encoded) and resolves when every reply is in; rejects with the first error reply. */
  async exec(payload: string, count: number): Promise<void> {
    const socket = await this.open();
    await new Promise<void>((resolve, reject) => {
      this.pending = { expected: count, seen: 0, firstError: null, resolve, reject };
      socket.write(payload);
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
      created.setTimeout(5000, () => created.destroy(new Error(`connecting to redis at ${host}:${port} timed out`)));
    });
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error(`redis at ${host}:${port} closed the connection`)));
    this.socket = socket;
    this.buffer = '';
    const setup: string[][] = [];
    if (url.password) setup.push(url.username ? ['AUTH', decodeURIComponent(url.username), decodeURIComponent(url.password)] : ['AUTH', decodeURIComponent(url.password)]);
    const db = url.pathname.slice(1);
    if (db) setup.push(['SELECT', db]);
    if (setup.length > 0) {
      await new Promise<void>((resolve, reject) => {
        this.pending = { expected: setup.length, seen: 0, firstError: null, resolve, reject };
        socket.write(setup.map(encodeCommand).join(''));
      });
    }
    return socket;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    const pending = this.pending;
    let position = 0;
    while (position < this.buffer.length) {
      const lineEnd = this.buffer.indexOf('\r\n', position);
      if (lineEnd < 0) break;
      const type = this.buffer[position];
      let next = lineEnd + 2;
      if (type === '$') {
        const length = Number(this.buffer.slice(position + 1, lineEnd));
        if (length >= 0) {
          // Reply ids are ASCII, so characters equal bytes here.
          if (this.buffer.length < next + length + 2) break;
          next += length + 2;
        }
      } else if (type === '-' && pending && pending.firstError === null) {
        pending.firstError = this.buffer.slice(position + 1, lineEnd);
      } else if (type === ':') {
        this.lastIntegerReply = Number(this.buffer.slice(position + 1, lineEnd));
      } else if (type !== '+') {
        this.fail(new Error(`unexpected reply from redis: ${JSON.stringify(this.buffer.slice(position, lineEnd))}`));
        return;
      }
      position = next;
      if (pending) pending.seen++;
    }
    this.buffer = this.buffer.slice(position);
    if (pending && pending.seen >= pending.expected) {
      this.pending = null;
      if (pending.firstError !== null) pending.reject(new RedisReplyError(pending.firstError));
      else pending.resolve();
    }
  }

  private fail(error: Error): void {
    const socket = this.socket;
    this.socket = null;
    socket?.destroy();
    const pending = this.pending;
    this.pending = null;
    pending?.reject(error);
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
