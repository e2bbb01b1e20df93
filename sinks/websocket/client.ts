// One connected client, of either protocol: its claims and outgoing queue.
//
// Frames go straight to the socket while it keeps up. When the socket's
// buffer is full they wait in a bounded queue; past `maxQueue` the client is
// disconnected (1013) — unless every lagging subscription asked to conflate,
// in which case only the newest change per (table, key) is kept. A slow
// client never slows the relay or the other clients.
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { keyJson, type ChangeEvent } from '../../relay/route/event.js';
import type { Claims } from './auth.js';
import type { Subscription } from './subscription.js';
import { FrameQueue, type Queued } from './frame-queue.js';

/** Bytes buffered in the socket above which frames are queued instead. */
const SOCKET_HIGH_WATER = 1 << 20;
/** While a batch is corked, frames are handed to the kernel every this many bytes. */
const CORKED_WRITE_BYTES = 64 * 1024;

const TEXT_FRAME = { binary: false };

export class Client {
  /** Frames waiting for the socket. */
  private readonly queue = new FrameQueue();
  alive = true;
  expiryTimer: NodeJS.Timeout | null = null;
  private corked = false;

  constructor(
    readonly socket: WebSocket,
    /** The TCP (or TLS) stream under `socket`, for corking a batch of frames into one write. */
    private readonly transport: Duplex,
    public claims: Claims,
    private readonly maxQueue: number,
    /** The sink's count of frames handed to sockets (frames/s in /metrics). */
    private readonly sent: { frames: number } = { frames: 0 },
  ) {}

  get queued(): number {
    return this.queue.length;
  }

  /**
   * Frames of one batch are coalesced into few socket writes (one per
   * CORKED_WRITE_BYTES) instead of one write per frame.
   */
  beginBatch(): void {
    this.corked = true;
    this.transport.cork();
  }

  endBatch(): void {
    this.corked = false;
    this.transport.uncork();
  }

  sendControl(frame: string): void {
    this.enqueue({ frame, conflationKey: null });
  }

  /** A change frame built by a protocol that does not conflate (Realtime), with the change's ring position. */
  sendFrame(frame: Buffer, position: number): void {
    this.enqueue({ frame, conflationKey: null, position });
  }

  /** The ring position of the oldest change still waiting in the queue, or null. */
  firstUnsentPosition(): number | null {
    return this.queue.firstPosition();
  }

  sendChange(subscription: Subscription, event: ChangeEvent, eventJson: string): void {
    const frame = subscription.framePrefix + eventJson + '}';
    const key = subscription.conflate ? keyJson(event) : null;
    const conflationKey = key ? `${subscription.id}\u0000${event.schema}.${event.table}\u0000${key}` : null;
    this.enqueue({ frame, conflationKey });
  }

  /** Sends what the socket can take now. */
  flush(): void {
    while (this.queue.length > 0 && this.socket.bufferedAmount < SOCKET_HIGH_WATER) this.send(this.queue.shift()!.frame);
  }

  /** Every frame goes out as a text frame, also those held as UTF-8 bytes. */
  private send(frame: string | Buffer): void {
    this.sent.frames++;
    if (typeof frame === 'string') this.socket.send(frame);
    else this.socket.send(frame, TEXT_FRAME);
  }

  /** Past the queue bound: this client cannot keep up. */
  overloaded(): boolean {
    return this.queued > this.maxQueue;
  }

  private enqueue(item: Queued): void {
    if (this.queued === 0 && this.socket.bufferedAmount < SOCKET_HIGH_WATER) {
      this.send(item.frame);
      if (this.corked && this.transport.writableLength >= CORKED_WRITE_BYTES) {
        this.transport.uncork(); // hand what is coalesced so far to the kernel
        this.transport.cork();
      }
      return;
    }
    this.queue.push(item);
  }
}
