// The fan-out benchmark's websocket clients, in a process of their own (so
// the relay, not the clients, is what is measured). Each client is a minimal
// websocket client on a plain TCP socket: the handshake, an unmasked-frame
// parser and masked replies (subscribe or phx_join, pongs, heartbeats). Per
// frame it reads only the commit time, parsed once per distinct text, and
// counts commit-to-arrival in a histogram of 1 ms buckets, so millions of
// frames cost no memory. Driven by the parent over IPC:
//   { connect: { urls, protocol, clients, table } } → { connected }
//   { reset: true } → { reset }   (start of a measurement window)
//   { report: true } → { frames, histogram, spread, disconnected, loopDelayMs }
import { connect as tcpConnect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export type FanOutProtocol = 'native' | 'realtime';

export interface ConnectOrder {
  /** ws://host:port/path URLs; clients are spread over them round-robin. */
  urls: string[];
  protocol: FanOutProtocol;
  clients: number;
  /** schema.table */
  table: string;
  /**
   * Read the sockets at most every this many ms (0: as soon as data comes).
   * On one machine every frame the relay writes to a client waiting in epoll
   * wakes the clients' process: a context switch per socket, paid on the
   * relay's CPU and in the relay being preempted mid fan-out, which remote
   * clients would not cost it. Polling reads many sockets per wake-up.
   */
  pollMs: number;
}

export interface ClientsReport {
  frames: number;
  /** [latency ms, count] pairs of the window's change frames. */
  histogram: [number, number][];
  /**
   * [ms, count] pairs of each frame's arrival after the first client got the
   * same change: how long serving every client takes (the relay's fan-out
   * order), apart from the feed's own delay (commit to the first client).
   */
  spread: [number, number][];
  /** [ms, count] pairs, one per transaction: commit to the first client's arrival (PostgreSQL, the relay's pipeline, one socket). */
  first: [number, number][];
  disconnected: number;
  /** The clients' own event-loop delay over the window (p99, max): above a few ms, the clients are a limit. */
  loopDelayMs: { p99: number; max: number };
}

const MAX_MS = 120_000;
const histogram = new Uint32Array(MAX_MS + 1);
const spread = new Uint32Array(MAX_MS + 1);
const firstArrival = new Uint32Array(MAX_MS + 1);
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
let frames = 0;
let disconnected = 0;
let stopping = false;
const sockets: Socket[] = [];
/** Per distinct commit time text: the commit time (ms) and when the first client got a frame of it. */
const parsedTimes = new Map<string, { commit: number; first: number }>();

const NATIVE_MARK = Buffer.from('"commitTime":"');
const REALTIME_MARK = Buffer.from('"commit_timestamp":"');

/** A client→server text frame: masked, as the protocol requires (with a zero mask, the payload is unchanged). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x81, 0x80 | length, 0, 0, 0, 0]) : Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff, 0, 0, 0, 0]);
  return Buffer.concat([header, payload]);
}

const READ_BUFFER = Buffer.alloc(256 * 1024);

const PONG = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]);

function commitOf(text: string, now: number): { commit: number; first: number } {
  let times = parsedTimes.get(text);
  if (times === undefined) {
    if (parsedTimes.size > 10_000) parsedTimes.clear();
    times = { commit: Date.parse(text), first: now };
    parsedTimes.set(text, times);
    firstArrival[Math.max(0, Math.min(MAX_MS, now - times.commit))]!++;
  }
  return times;
}

/** The last commit time's bytes and times: a transaction's frames (to every client) carry the same text, compared without making a string. */
const lastStamp = Buffer.alloc(64);
let lastStampLength = -1;
let lastTimes: { commit: number; first: number } | null = null;

function timesOf(buffer: Buffer, from: number, stop: number, now: number): { commit: number; first: number } {
  const length = stop - from;
  if (length === lastStampLength && buffer.compare(lastStamp, 0, length, from, stop) === 0) return lastTimes!;
  const times = commitOf(buffer.toString('latin1', from, stop), now);
  if (length <= lastStamp.length) {
    buffer.copy(lastStamp, 0, from, stop);
    lastStampLength = length;
    lastTimes = times;
  }
  return times;
}

function openClient(url: URL, protocol: FanOutProtocol, table: string, index: number): Promise<void> {
  const [schema, name] = table.split('.');
  const mark = protocol === 'native' ? NATIVE_MARK : REALTIME_MARK;
  const markAtEnd = protocol === 'native';
  const path = protocol === 'native' ? url.pathname : `${url.pathname.replace(/\/$/, '')}/websocket?apikey=bench&vsn=2.0.0`;
  const hello = protocol === 'native'
    ? JSON.stringify({ type: 'subscribe', id: 's', table })
    : JSON.stringify(['1', '1', 'realtime:bench', 'phx_join', { config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, postgres_changes: [{ event: 'INSERT', schema, table: name }], private: false } }]);
  const ready = protocol === 'native' ? '{"type":"subscribed"' : '["1","1","realtime:bench","phx_reply",{"status":"ok"';
  return new Promise((resolve, reject) => {
    // onread: the kernel reads into one buffer shared by every client (no Buffer per read, no stream 'data' machinery),
    // so a read costs the clients' process little next to the relay's write; a partial frame is copied out of it.
    const socket = tcpConnect({ port: Number(url.port), host: url.hostname, onread: { buffer: READ_BUFFER, callback: (bytes: number, into: Uint8Array) => { received(into as Buffer, bytes); return true; } } });
    sockets.push(socket);
    let upgraded = false;
    let joined = false;
    let pending: Buffer | null = null;
    let ref = 1;
    let heartbeat: NodeJS.Timeout | null = null;
    socket.setNoDelay(true);
    socket.once('error', (error) => { if (!joined) reject(error); });
    socket.once('close', () => {
      if (heartbeat) clearInterval(heartbeat);
      if (!stopping && joined) disconnected++;
      if (!joined) reject(new Error(`client ${index} closed before it subscribed`));
    });
    socket.on('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    const received = (shared: Buffer, bytes: number) => {
      const now = Date.now();
      const chunk = shared.subarray(0, bytes);
      const buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = null;
      let at = 0;
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) { pending = Buffer.from(buffer); return; }
        if (!buffer.subarray(0, 12).toString('latin1').includes('101')) {
          reject(new Error(`upgrade refused: ${buffer.subarray(0, end).toString()}`));
          socket.destroy();
          return;
        }
        upgraded = true;
        socket.write(textFrame(hello));
        if (protocol === 'realtime') heartbeat = setInterval(() => socket.write(textFrame(JSON.stringify([null, String(++ref), 'phoenix', 'heartbeat', {}]))), 25_000);
        at = end + 4;
      }
      while (buffer.length - at >= 2) {
        const opcode = buffer[at]! & 0x0f;
        let length = buffer[at + 1]! & 0x7f;
        let start = at + 2;
        if (length === 126) {
          if (buffer.length - at < 4) break;
          length = buffer.readUInt16BE(at + 2);
          start = at + 4;
        } else if (length === 127) {
          if (buffer.length - at < 10) break;
          length = buffer.readUIntBE(at + 4, 6);
          start = at + 10;
        }
        const end = start + length;
        if (end > buffer.length) break;
        if (opcode === 1) {
          // walrelay's event JSON ends with its commitTime: searched from the frame's end. Realtime's is near the start.
          const found = markAtEnd ? buffer.lastIndexOf(mark, end - mark.length) : buffer.indexOf(mark, start);
          if (found >= start && found < end) {
            if (joined) {
              const from = found + mark.length;
              const stop = buffer.indexOf(34, from); // closing quote
              const times = timesOf(buffer, from, stop, now);
              histogram[Math.max(0, Math.min(MAX_MS, now - times.commit))]!++;
              spread[Math.min(MAX_MS, now - times.first)]!++;
              frames++;
            }
          } else if (!joined && buffer.toString('latin1', start, Math.min(end, start + ready.length)) === ready) {
            joined = true;
            resolve();
          }
        } else if (opcode === 9) {
          socket.write(PONG);
        } else if (opcode === 8) {
          socket.end();
        }
        at = end;
      }
      if (at < buffer.length) pending = Buffer.from(buffer.subarray(at)); // out of the shared read buffer
    };
  });
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps pollMs between turns of the event loop (an immediate always pending keeps libuv's poll from blocking). */
function pollEvery(ms: number): void {
  const turn = () => {
    if (stopping) return;
    Atomics.wait(sleeper, 0, 0, ms);
    setImmediate(turn);
  };
  setImmediate(turn);
}

process.on('message', async (message: { connect?: ConnectOrder; reset?: boolean; report?: boolean; stop?: boolean }) => {
  if (message.connect) {
    const { urls, protocol, clients, table, pollMs } = message.connect;
    const parsed = urls.map((url) => new URL(url));
    // In waves of 100: a thousand handshakes at once would only queue in the relay's accept backlog.
    for (let first = 0; first < clients; first += 100) {
      const wave = Array.from({ length: Math.min(100, clients - first) }, (_, i) => openClient(parsed[(first + i) % parsed.length]!, protocol, table, first + i));
      try {
        await Promise.all(wave);
      } catch (error) {
        process.send!({ error: (error as Error).message });
        return;
      }
    }
    if (pollMs > 0) pollEvery(pollMs);
    process.send!({ connected: clients });
  } else if (message.reset) {
    histogram.fill(0);
    spread.fill(0);
    firstArrival.fill(0);
    loopDelay.reset();
    frames = 0;
    process.send!({ reset: true });
  } else if (message.report) {
    const pairs = (counts: Uint32Array) => {
      const list: [number, number][] = [];
      for (let ms = 0; ms <= MAX_MS; ms++) if (counts[ms]! > 0) list.push([ms, counts[ms]!]);
      return list;
    };
    const report: ClientsReport = {
      frames, histogram: pairs(histogram), spread: pairs(spread), first: pairs(firstArrival), disconnected,
      loopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    };
    process.send!(report);
  } else if (message.stop) {
    stopping = true;
    for (const socket of sockets) socket.destroy();
    process.disconnect();
  }
});
