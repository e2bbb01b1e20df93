// Pausing the replication stream must stop the socket's reads, not only its
// 'data' events: the pipeline holds reads for a dispatch window under a live
// feed so that the window's transactions (the walsender sends every message
// in a packet of its own) come in one read. And a resumed stream must read
// again: a first attempt at holding reads left the socket silent for good.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationStream, type XLogData } from '../relay/source/replication-stream.js';
import { ZERO_LSN } from '../relay/lsn.js';
import { Bytes } from './harness/pgoutput-bytes.js';
import { scriptedServer, xlogData } from './harness/scripted-walsender.js';
import { waitFor } from './harness/wait.js';

const begin = new Bytes().tag('B').u64(0x1000n).u64(0n).u32(7).done();

/** Starts a stream against `server`; `onData` sees each message with the stream. */
function open(port: number, onData: (data: XLogData, stream: ReplicationStream) => void): ReplicationStream {
  const stream = new ReplicationStream(`postgres://walrelay@127.0.0.1:${port}/db`, 10_000);
  void stream.start({ slot: 's', publication: 'p', startLsn: ZERO_LSN }, {
    onData: (data) => onData(data, stream),
    onKeepalive: () => undefined,
    onClose: () => undefined,
  });
  return stream;
}

/** The client end of the replication connection (its byte count moves only when the socket reads). */
function socketOf(stream: ReplicationStream): { bytesRead: number } {
  return (stream as any).client.connection.stream;
}

describe('replication stream: pause holds the socket\'s reads', () => {
  it('reads nothing while paused (from inside a message\'s handler, as the pipeline pauses), then everything once resumed', async () => {
    const server = await scriptedServer([xlogData(0x100n, begin)]);
    const applied: number[] = [];
    const stream = open(server.port, (data, own) => {
      applied.push(Number(data.walStart));
      if (applied.length === 1) own.pause();
    });
    try {
      await waitFor(() => applied.length === 1, { what: 'the first message', timeoutMs: 10_000 });
      const readBefore = socketOf(stream).bytesRead;
      server.send([xlogData(0x200n, begin)]);
      server.send([xlogData(0x300n, begin)]);
      // Time for a socket that still reads (Readable.pause() alone, or a handle restarted by Readable's own read-ahead) to take them in.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(socketOf(stream).bytesRead, readBefore, 'the socket read nothing while paused');
      assert.deepEqual(applied, [0x100]);
      stream.resume();
      await waitFor(() => applied.length === 3, { what: 'the messages sent while paused', timeoutMs: 10_000 });
      assert.deepEqual(applied, [0x100, 0x200, 0x300]);
    } finally {
      await stream.stop();
      await server.close();
    }
  });

  it('paused in every message\'s handler and resumed on a timer, 300 times: every message arrives, in order', async () => {
    const server = await scriptedServer([]);
    const applied: number[] = [];
    const stream = open(server.port, (data, own) => {
      applied.push(Number(data.walStart));
      own.pause();
      setTimeout(() => own.resume(), 1);
    });
    try {
      await waitFor(() => { try { server.send([]); return true; } catch { return false; } }, { what: 'START_REPLICATION', timeoutMs: 10_000 });
      const expected: number[] = [];
      for (let i = 1; i <= 300; i++) {
        expected.push(i * 0x100);
        server.send([xlogData(BigInt(i * 0x100), begin)]); // one socket write each, as the walsender sends
        if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await waitFor(() => applied.length === expected.length, { what: 'every message', timeoutMs: 30_000 });
      assert.deepEqual(applied, expected);
    } finally {
      await stream.stop();
      await server.close();
    }
  });
});
