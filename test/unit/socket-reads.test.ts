// A socket whose reads walrelay stops and restarts (socket-reads.ts): when
// the handle refuses (readStop/readStart return an error code, as libuv does
// for a descriptor gone bad), the socket is destroyed with that error, as
// Node's own net.Socket does, so the session ends and reconnects, instead of
// a stream that never reads again and that the watchdog takes for paused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startReading, stopReading } from '../../relay/source/socket-reads.js';

function fakeSocket(code: { stop: number; start: number }) {
  const socket = {
    destroyed: false,
    connecting: false,
    destroyedWith: null as Error | null,
    _read() {},
    _handle: { reading: true, readStop: () => code.stop, readStart: () => code.start },
    pause() {},
    resume() {},
    destroy(error: Error) { this.destroyed = true; this.destroyedWith = error; },
  };
  return socket;
}

describe('socket reads stopped and restarted', () => {
  it('destroys the socket with the error when the handle cannot start reading again', () => {
    const socket = fakeSocket({ stop: 0, start: -9 }); // EBADF
    stopReading(socket);
    assert.equal(socket.destroyed, false);
    startReading(socket);
    assert.equal(socket.destroyed, true);
    assert.equal((socket.destroyedWith as Error & { code?: string }).code, 'SOCKET_READS_FAILED');
    assert.match(String(socket.destroyedWith?.message), /EBADF/);
  });

  it('destroys the socket when the handle cannot stop reading', () => {
    const socket = fakeSocket({ stop: -9, start: 0 });
    stopReading(socket);
    assert.equal(socket.destroyed, true);
  });

  it('leaves a healthy socket alone', () => {
    const socket = fakeSocket({ stop: 0, start: 0 });
    stopReading(socket);
    startReading(socket);
    assert.equal(socket.destroyed, false);
    assert.equal(socket._handle.reading, true);
  });
});
