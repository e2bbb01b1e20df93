// One TCP (or TLS) connection to a Kafka broker: size-prefixed frames,
// correlation ids, several requests in flight (the broker answers a
// connection's requests in order), SASL authentication right after connecting.
// Any socket error or request timeout fails every pending request and closes
// the connection: the producer then starts over on fresh connections.
import net from 'node:net';
import tls from 'node:tls';
import { Writer, Reader } from './encoding.js';
import { authenticate, type SaslCredentials } from './sasl.js';

export interface ConnectionOptions {
  host: string;
  port: number;
  clientId: string;
  tls?: tls.ConnectionOptions;
  sasl?: SaslCredentials;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
}

interface PendingRequest {
  resolve(reader: Reader): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export class KafkaConnection {
  private readonly pending = new Map<number, PendingRequest>();
  private nextCorrelationId = 1;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failure: Error | null = null;

  private constructor(private readonly socket: net.Socket, private readonly options: ConnectionOptions) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(new Error(`kafka ${this.address}: ${error.message}`)));
    socket.on('close', () => this.fail(new Error(`kafka ${this.address}: connection closed`)));
  }

  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  get broken(): boolean {
    return this.failure !== null;
  }

  static async open(options: ConnectionOptions): Promise<KafkaConnection> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const secure = options.tls !== undefined;
      const socket = secure
        ? tls.connect({ ...options.tls, host: options.host, port: options.port, servername: net.isIP(options.host) ? undefined : options.host })
        : net.connect({ host: options.host, port: options.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`kafka ${options.host}:${options.port}: no connection within ${options.connectTimeoutMs} ms`));
      }, options.connectTimeoutMs);
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`kafka ${options.host}:${options.port}: ${error.message}`));
      });
    });
    const connection = new KafkaConnection(socket, options);
    if (options.sasl) {
      try {
        await authenticate(connection, options.sasl);
      } catch (error) {
        connection.close();
        throw error;
      }
    }
    return connection;
  }

  /**
   * Sends one request: `writeBody` appends the request body after the header.
   * Resolves with a reader positioned at the response body.
   */
  request(api: { key: number; version: number }, writeBody: (writer: Writer) => void, sizeHint = 1024): Promise<Reader> {
    if (this.failure) return Promise.reject(this.failure);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = (this.nextCorrelationId + 1) & 0x7fffffff;
    const writer = new Writer(sizeHint + 64);
    const sizePosition = writer.reserveInt32();
    writer.int16(api.key).int16(api.version).int32(correlationId).string(this.options.clientId);
    writeBody(writer);
    writer.fillInt32(sizePosition, writer.offset - 4);
    return new Promise<Reader>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`kafka ${this.address}: no response within ${this.options.requestTimeoutMs} ms`));
      }, this.options.requestTimeoutMs);
      this.pending.set(correlationId, { resolve, reject, timer });
      this.socket.write(writer.toBuffer());
    });
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const head = this.chunks[0].length >= 4 ? this.chunks[0] : Buffer.concat(this.chunks);
      const size = head.readInt32BE(0);
      if (this.buffered < size + 4) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      const frame = all.subarray(4, size + 4);
      const rest = all.subarray(size + 4);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      const reader = new Reader(frame);
      const correlationId = reader.int32();
      const pending = this.pending.get(correlationId);
      if (!pending) continue; // a response to a request that already timed out
      this.pending.delete(correlationId);
      clearTimeout(pending.timer);
      pending.resolve(reader);
    }
  }

  private fail(error: Error): void {
    if (!this.failure) this.failure = error;
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(this.failure);
    }
    this.pending.clear();
    this.socket.destroy();
  }

  close(): void {
    this.fail(new Error(`kafka ${this.address}: connection closed by walrelay`));
  }
}
