// One connected client, of either protocol: its claims and outgoing queue.
//
// Frames go straight to the socket while it keeps up. When the socket's
// buffer is full they wait in a bounded queue; past `maxQueue` the client is
// disconnected (1013) — unless every lagging subscription asked to conflate,
// in which case only the newest change per (table, key) is kept. A slow
// client never slows the relay or the other clients.
//
// Change frames arrive already framed for the wire and shared by every
// client (wire-frame.ts): they are written to the TCP (or TLS) stream under
// ws, which is safe because ws writes its own frames (controls, pings, close)
// synchronously in call order when no extension is negotiated. During a batch
// a client's frames are gathered and written once, as one Buffer.
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { keyJson, type ChangeEvent } from '../../relay/route/event.js';
import type { Claims } from './auth.js';
import type { Subscription } from './subscription.js';
import { FrameQueue, type Queued } from './frame-queue.js';
import { wirePayload, type WireJoiner } from './wire-frame.js';

/** Bytes buffered in the socket above which frames are queued instead. */
const SOCKET_HIGH_WATER = 1 << 20;
/** While a batch gathers frames, they are handed to the socket every this many bytes. */
const BATCH_WRITE_BYTES = 64 * 1024;

const TEXT_FRAME = { binary: false };
/** How often drained() looks again (the sink flushes queues every 20 ms). */
const DRAIN_POLL_MS = 10;

export class Client {
  /** Frames waiting for the socket. */
  private readonly queue = new FrameQueue();
  alive = true;
  expiryTimer: NodeJS.Timeout | null = null;
  /** Wire frames of the current batch, not yet written. */
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  /** Open batches (they nest: a replay inside the sink's batch); frames are gathered while above 0. */
  private batches = 0;
  /** Shares joined bytes between the clients of the sink's current batch (see WireJoiner). */
  private joiner: WireJoiner | null = null;
  /**
   * ws's bufferedAmount as last read during a batch, or null: it only
   * changes when this client writes (nothing drains during a synchronous
   * batch), so one read per batch and write serves every frame in between.
   */
  private socketBuffered: number | null = null;
  /** An extension (permessage-deflate) was negotiated: ws must frame each payload. Fixed at the handshake, before the client exists. */
  private readonly framedByWs: boolean;

  constructor(
    readonly socket: WebSocket,
    /** The TCP (or TLS) stream under `socket`, written to directly with frames framed once for every client. */
    private readonly transport: Duplex,
    public claims: Claims,
    private readonly maxQueue: number,
    /** The sink's count of frames handed to sockets (frames/s in /metrics). */
    private readonly sent: { frames: number } = { frames: 0 },
  ) {
    this.framedByWs = socket.extensions !== '';
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * Frames of one batch are gathered and written as one Buffer (one per
   * BATCH_WRITE_BYTES) instead of one write per frame; `joiner` (the sink's,
   * for every client of its batch) lets clients that got the same frames
   * share the joined bytes instead of each holding a copy.
   */
  beginBatch(joiner?: WireJoiner): void {
    if (this.batches++ === 0) {
      this.joiner = joiner ?? null;
      this.socketBuffered = null;
    }
  }

  /** Ends a batch; the outermost writes what was gathered. */
  endBatch(): void {
    if (this.batches > 0) this.batches--;
    if (this.batches === 0) {
      this.writeGathered();
      this.joiner = null;
      this.socketBuffered = null;
    }
  }

  sendControl(frame: string): void {
    this.enqueue({ frame, conflationKey: null });
  }

  /** A change frame (wire bytes) of a protocol that does not conflate (Realtime), with the change's ring position (none: read from the feed, not in the ring). */
  sendFrame(frame: Buffer, position: number | undefined): void {
    if (this.sendsAtOnce()) this.send(frame);
    else this.queue.push({ frame, conflationKey: null, position });
  }

  /** The ring position of the oldest change still waiting in the queue, or null. */
  firstUnsentPosition(): number | null {
    return this.queue.firstPosition();
  }

  /** A change frame (wire bytes) of walrelay's protocol, conflated when the subscription asked for it. */
  /** `conflatable` false: a frame a newer change of the same key must not replace (a Debezium key change's delete). */
  sendChange(subscription: Subscription, event: ChangeEvent, frame: Buffer, conflatable = true): void {
    // Nothing queued to conflate with: no conflation key (keyJson) and no queue entry for a frame that goes out now.
    if (this.sendsAtOnce()) {
      this.send(frame);
      return;
    }
    const key = subscription.conflate && conflatable ? keyJson(event) : null;
    const conflationKey = key ? `${subscription.id}\u0000${event.schema}.${event.table}\u0000${key}` : null;
    this.enqueue({ frame, conflationKey });
  }

  /** Sends what the socket can take now. */
  flush(): void {
    this.beginBatch();
    while (this.queue.length > 0 && this.hasRoom()) this.send(this.queue.shift()!.frame);
    this.endBatch();
  }

  /**
   * Resolves once every queued frame went to the socket and its buffer is
   * below the high-water mark (or the socket is no longer open): a catch-up
   * from the feed sends its next chunk then (backpressure).
   */
  async drained(): Promise<void> {
    while (this.socket.readyState === WebSocket.OPEN && (this.queue.length > 0 || !this.hasRoom())) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
  }

  /** Past the queue bound: this client cannot keep up. */
  overloaded(): boolean {
    return this.queued > this.maxQueue;
  }

  private hasRoom(): boolean {
    if (this.batches === 0) return this.socket.bufferedAmount + this.gatheredBytes < SOCKET_HIGH_WATER;
    this.socketBuffered ??= this.socket.bufferedAmount;
    return this.socketBuffered + this.gatheredBytes < SOCKET_HIGH_WATER;
  }

  /** A frame now goes straight to the socket (or the batch) rather than the queue: nothing waits before it and there is room. */
  private sendsAtOnce(): boolean {
    return this.queue.length === 0 && this.hasRoom();
  }

  /** Strings are control frames ws frames; Buffers are wire frames. Every frame goes out as a text frame. */
  private send(frame: string | Buffer): void {
    this.sent.frames++;
    if (typeof frame === 'string') {
      this.writeGathered(); // in order with the change frames before it
      this.socket.send(frame);
      this.socketBuffered = null;
    } else if (this.framedByWs) {
      // An extension (permessage-deflate) transforms each frame per connection: ws frames the payload itself.
      this.socket.send(wirePayload(frame), TEXT_FRAME);
      this.socketBuffered = null;
    } else if (this.batches > 0) {
      this.gathered.push(frame);
      this.gatheredBytes += frame.length;
      if (this.gatheredBytes >= BATCH_WRITE_BYTES) this.writeGathered();
    } else if (this.socket.readyState === WebSocket.OPEN) {
      this.transport.write(frame);
      this.socketBuffered = null;
    }
  }

  private writeGathered(): void {
    const frames = this.gathered;
    if (frames.length === 0) return;
    this.gathered = [];
    this.gatheredBytes = 0;
    this.socketBuffered = null;
    // Closing (a close frame already sent) or closed: no data frame may follow.
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.transport.write(frames.length === 1 ? frames[0]! : this.joiner ? this.joiner.join(frames) : Buffer.concat(frames));
  }

  private enqueue(item: Queued): void {
    if (this.sendsAtOnce()) {
      this.send(item.frame);
      return;
    }
    this.queue.push(item);
  }
}
