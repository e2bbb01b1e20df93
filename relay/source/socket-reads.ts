// Stopping and restarting a socket's reads at the kernel level (not only its
// 'data' events), for the replication connection's backpressure and for the
// reads a live feed's dispatch window holds (relay/route/pipeline.ts).
// Touches net.Socket internals (`_handle`, `_read`), checked against Node 20;
// test/replication-read-hold.test.ts fails if they change.

import { getSystemErrorName } from 'node:util';
import { WalrelayError } from '../errors.js';

/** Set on a socket whose reads walrelay stopped (see stopReading). */
const readsStopped = Symbol('walrelay.readsStopped');

/**
 * Readable.pause() alone only stops 'data' events: the socket keeps reading
 * what arrives into its buffer until its high-water mark, a wake-up per
 * packet, and the walsender sends every message of a live feed in a packet of
 * its own (12 for a 10-row transaction). So the handle's reads are stopped
 * too, and what the walsender sends meanwhile waits in the kernel's socket
 * buffer, to be read at once, in one read, by startReading().
 *
 * Readable asks the socket for more (`_read`) on its own after each chunk,
 * paused or not, and net.Socket's `_read` restarts a stopped handle: while
 * walrelay holds the reads, `_read` must not (reads held that way came back
 * at once, one packet per wake-up as before).
 */
export function stopReading(stream: any): void {
  if (!stream) return;
  stream.pause();
  const handle = stream._handle;
  if (!handle || stream.destroyed || stream.connecting) return;
  if (stream[readsStopped] === undefined) {
    const read = stream._read;
    stream._read = function (this: any, size: number) {
      if (!this[readsStopped]) read.call(this, size);
    };
  }
  stream[readsStopped] = true;
  if (handle.reading) {
    handle.reading = false;
    failOn(stream, handle.readStop());
  }
}

/**
 * The handle's reads restarted here, not left to Readable.resume(): that asks
 * for a read only when none is under way, and one asked for while the handle
 * was stopped is still under way in its eyes, so the socket would stay silent
 * for good (Node's own Socket.resume restarts the handle the same way).
 */
export function startReading(stream: any): void {
  if (!stream) return;
  stream[readsStopped] &&= false;
  const handle = stream._handle;
  if (handle && !handle.reading && !stream.destroyed && !stream.connecting) {
    handle.reading = true;
    failOn(stream, handle.readStart());
  }
  stream.resume();
}

/**
 * libuv's error code from readStop/readStart (negative): the socket is destroyed with it, as net.Socket does, so the
 * connection ends and is made again; ignored, a socket that cannot read again would look paused for good.
 */
function failOn(stream: any, code: unknown): void {
  if (typeof code !== 'number' || code >= 0 || stream.destroyed) return;
  stream.destroy(new WalrelayError('SOCKET_READS_FAILED', `could not stop or restart the socket's reads (${uvName(code)})`, { retriable: true }));
}

function uvName(errno: number): string {
  try {
    return getSystemErrorName(errno);
  } catch {
    return `error ${errno}`;
  }
}
