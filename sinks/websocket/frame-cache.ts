// Clients that stream the same thing get byte-identical change frames: in
// walrelay's protocol the same subscription id, in Realtime the same
// serializer, topic and binding ids. A thousand browsers on one table share
// one frame per change, framed for the wire once (wire-frame.ts). The cache
// holds the frames of the change being fanned out and is emptied when the
// next one comes, so it never grows.
import type { ChangeEvent } from '../../relay/route/event.js';
import { wireTextFrame } from './wire-frame.js';

export class FrameCache {
  private event: ChangeEvent | null = null;
  private readonly frames = new Map<string, Buffer>();

  /** The wire frame for `key` (protocol, subscription or topic and ids) of `event`, built once. */
  get(event: ChangeEvent, key: string, build: () => string): Buffer {
    let frame = this.cached(event, key);
    if (frame === undefined) {
      frame = wireTextFrame(build());
      this.frames.set(key, frame);
    }
    return frame;
  }

  /** The frame for `key` of `event` if some client already built it: a fan-out asks this first, before making a builder. */
  cached(event: ChangeEvent, key: string): Buffer | undefined {
    if (event !== this.event) {
      this.event = event;
      this.frames.clear();
      return undefined;
    }
    return this.frames.get(key);
  }
}
