// The replication connection fed exact bytes: a scripted server on a
// loopback port answers the startup, SHOW server_version_num and
// START_REPLICATION like PostgreSQL, then writes chosen CopyData messages in
// ONE socket write. `pg` parses a whole socket chunk at once, so this is how
// a damaged message followed by intact ones reaches ReplicationStream.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationStream, type XLogData } from '../relay/source/replication-stream.js';
import { ZERO_LSN, type Lsn } from '../relay/lsn.js';
import { Bytes } from './harness/pgoutput-bytes.js';
import { message, scriptedServer, xlogData } from './harness/scripted-walsender.js';

describe('replication stream: bytes from a scripted server', () => {
  it('stops at a short XLogData header: nothing after it in the same socket chunk is applied', async () => {
    const begin = new Bytes().tag('B').u64(0x1000n).u64(0n).u32(7).done();
    const server = await scriptedServer([
      xlogData(0x100n, begin),
      xlogData(0x200n, begin).subarray(0, 12), // cut inside the header
      xlogData(0x300n, begin),
      xlogData(0x400n, begin),
    ]);
    const stream = new ReplicationStream(`postgres://walrelay@127.0.0.1:${server.port}/db`, 10_000);
    const applied: Lsn[] = [];
    const afterClose: Lsn[] = [];
    let closedWith: Error | undefined;
    const closed = new Promise<void>((resolve) => {
      void stream.start({ slot: 's', publication: 'p', startLsn: ZERO_LSN }, {
        onData: (data: XLogData) => (closedWith ? afterClose : applied).push(data.walStart),
        onKeepalive: () => undefined,
        onClose: (error) => { closedWith = error; resolve(); },
      }).catch((error: Error) => { closedWith ??= error; resolve(); });
    });
    try {
      await closed;
      await new Promise((resolve) => setImmediate(resolve)); // whatever the chunk still held has been parsed by now
      assert.match(String(closedWith), /PGOUTPUT_MALFORMED|shorter than its 25-byte header/);
      assert.deepEqual(applied.map(Number), [0x100], 'only the message before the damaged one is applied');
      assert.deepEqual(afterClose.map(Number), [], 'no message after the damaged one reaches the pipeline');
    } finally {
      await stream.stop();
      await server.close();
    }
  });

  it('delivers CopyData cut anywhere by socket reads, small and up to 1 MB, whole and in order, and never overwrites a payload it delivered', async () => {
    let seed = 7;
    const random = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    const sizes = [20, 150, 70_000, 3, 1_000_000, 40, 65_531, 65_536, 200_000, 9, 12, 300, 131_072, 5];
    const payloads = sizes.map((size) => Buffer.from(Array.from({ length: size }, () => random(256))));
    const keepalive = new Bytes().tag('k').u64(0x9999n).u64(0n).u8(0).done();
    const bodies = payloads.flatMap((payload, i) => (i % 4 === 3 ? [keepalive, xlogData(BigInt(i + 1), payload)] : [xlogData(BigInt(i + 1), payload)]));
    // Pieces of 1 to 4 bytes cut headers; others end inside messages of every size.
    const server = await scriptedServer(bodies, [1, 3, 70_001, 2, 4, 65_536, 333, 1, 500_000, 17, 4, 131_000, 2, 9_999]);
    const stream = new ReplicationStream(`postgres://walrelay@127.0.0.1:${server.port}/db`, 10_000);
    const received: XLogData[] = [];
    let keepalives = 0;
    let all!: () => void;
    const done = new Promise<void>((resolve) => { all = resolve; });
    try {
      await stream.start({ slot: 's', publication: 'p', startLsn: ZERO_LSN }, {
        onData: (data: XLogData) => { received.push(data); if (received.length === payloads.length) all(); },
        onKeepalive: () => { keepalives++; },
        onClose: () => undefined,
      });
      await done;
      assert.equal(keepalives, 3);
      assert.deepEqual(received.map((data) => Number(data.walStart)), payloads.map((_, i) => i + 1));
      // Checked only once everything arrived: a payload kept from earlier must not have been overwritten by later reads.
      for (const [i, data] of received.entries()) assert.ok(data.payload.equals(payloads[i]), `payload ${i} (${sizes[i]} bytes) intact`);
    } finally {
      await stream.stop();
      await server.close();
    }
  });

  it('hands an error the server sends mid-stream to pg, and applies no CopyData after it', async () => {
    const begin = new Bytes().tag('B').u64(0x1000n).u64(0n).u32(7).done();
    const error = message('E', new Bytes().cstring('SERROR').cstring('C58P01').cstring('Mrequested WAL segment has already been removed').u8(0).done());
    const server = await scriptedServer([xlogData(0x100n, begin), { raw: error }, xlogData(0x200n, begin)], [40, 3, 10_000]);
    const stream = new ReplicationStream(`postgres://walrelay@127.0.0.1:${server.port}/db`, 10_000);
    const applied: number[] = [];
    let closedWith: Error | undefined;
    const closed = new Promise<void>((resolve) => {
      void stream.start({ slot: 's', publication: 'p', startLsn: ZERO_LSN }, {
        onData: (data: XLogData) => applied.push(Number(data.walStart)),
        onKeepalive: () => undefined,
        onClose: (error) => { closedWith = error; resolve(); },
      }).catch((error: Error) => { closedWith ??= error; resolve(); });
    });
    try {
      await closed;
      await new Promise((resolve) => setTimeout(resolve, 50)); // the rest of the data has been read by now
      assert.match(String(closedWith), /SLOT_LOST|requested WAL segment/);
      assert.deepEqual(applied, [0x100]);
    } finally {
      await stream.stop();
      await server.close();
    }
  });
});
