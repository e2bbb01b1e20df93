// Channels that stream the same thing get byte-identical change frames (same
// serializer, topic and ids): a thousand browsers on one table share one
// frame per change. The cache holds the frames of the change being fanned
// out and is emptied when the next one comes, so it never grows.
import type { ChangeEvent } from '../../../../relay/route/event.js';

export class FrameCache {
  private event: ChangeEvent | null = null;
  private readonly frames = new Map<string, Buffer>();

  /** The frame for `key` (serializer, topic, event name, ids) of `event`, built once. */
  get(event: ChangeEvent, key: string, build: () => string): Buffer {
    if (event !== this.event) {
      this.event = event;
      this.frames.clear();
    }
    let frame = this.frames.get(key);
    if (frame === undefined) {
      frame = Buffer.from(build());
      this.frames.set(key, frame);
    }
    return frame;
  }
}
