// A change frame as it goes on the wire: the websocket frame header (FIN,
// text opcode, unmasked as a server's frames are, RFC 6455 §5.2) and the UTF-8
// payload in one Buffer. Built once per change and shared by every client
// that receives the same bytes, so fanning out costs one socket write per
// client, not one framing (header allocation, UTF-8 encoding) per client.

/** Header and payload of one text frame. */
export function wireTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const wire = Buffer.allocUnsafe(header + length);
  wire[0] = 0x81; // FIN + text
  if (header === 2) {
    wire[1] = length;
  } else if (header === 4) {
    wire[1] = 126;
    wire.writeUInt16BE(length, 2);
  } else {
    wire[1] = 127;
    wire.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    wire.writeUInt32BE(length >>> 0, 6);
  }
  wire.write(text, header, 'utf8');
  return wire;
}

/** The payload of a frame built by wireTextFrame (for a connection that needs ws to frame it, e.g. compressed). */
export function wirePayload(wire: Buffer): Buffer {
  const length = wire[1]! & 0x7f;
  return wire.subarray(length < 126 ? 2 : length === 126 ? 4 : 10);
}

/**
 * Joins the frames one client gets from one batch into one Buffer. Clients
 * with the same subscriptions get the same frames, so the join of the last
 * few distinct lists is remembered: a thousand such clients cost one copy.
 * One joiner lives for one batch.
 */
export class WireJoiner {
  private readonly recent: { frames: Buffer[]; joined: Buffer }[] = [];

  join(frames: Buffer[]): Buffer {
    for (const entry of this.recent) if (sameFrames(entry.frames, frames)) return entry.joined;
    const joined = Buffer.concat(frames);
    if (this.recent.length >= 4) this.recent.shift();
    this.recent.push({ frames, joined });
    return joined;
  }
}

function sameFrames(a: Buffer[], b: Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
