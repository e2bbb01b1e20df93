// The replication connection fed exact bytes by a scripted server
// (harness/scripted-walsender.ts) writing chosen CopyData messages in ONE
// socket write. `pg` parses a whole socket chunk at once, so this is how a
// damaged message followed by intact ones reaches ReplicationStream.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReplicationStream, type XLogData } from '../relay/source/replication-stream.js';
import { ZERO_LSN, type Lsn } from '../relay/lsn.js';
import { Bytes } from './harness/pgoutput-bytes.js';
import { scriptedServer, xlogData } from './harness/scripted-walsender.js';

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
});
