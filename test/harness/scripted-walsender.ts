// A scripted walsender on a loopback port: answers the startup, SHOW
// server_version_num, pg_is_in_recovery(), IDENTIFY_SYSTEM and
// START_REPLICATION like PostgreSQL, then writes chosen CopyData messages:
// the first ones in ONE socket write (pg parses a whole socket chunk at once),
// or cut into pieces a millisecond apart; later ones whenever the test calls
// send().
import { createServer, type Socket } from 'node:net';
import { Bytes } from './pgoutput-bytes.js';

/** One backend message: type byte, int32 length (itself included), body. */
export function message(type: string, body: Buffer): Buffer {
  return new Bytes().tag(type).i32(4 + body.length).raw(body).done();
}

const readyForQuery = () => message('Z', Buffer.from('I'));

/** A whole backend message to send as it is, among CopyData bodies. */
export interface RawMessage { raw: Buffer }

export interface ScriptedServer {
  port: number;
  /** Writes these CopyData bodies in one socket write (after START_REPLICATION). */
  send(bodies: Buffer[]): void;
  /** Standby status updates received: when (performance.now()) and the flush position they carried. */
  statuses: { at: number; flushed: bigint }[];
  close(): Promise<void>;
}

/** Answers like PostgreSQL until START_REPLICATION, then sends `copyData` bodies in a single write (or in `pieceSizes`). */
export async function scriptedServer(copyData: (Buffer | RawMessage)[], pieceSizes?: number[]): Promise<ScriptedServer> {
  let streaming: Socket | null = null;
  const statuses: { at: number; flushed: bigint }[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          // The startup message has no type byte.
          if (pending.length < 4 || pending.length < pending.readInt32BE(0)) return;
          pending = pending.subarray(pending.readInt32BE(0));
          started = true;
          socket.write(Buffer.concat([message('R', new Bytes().i32(0).done()), readyForQuery()]));
          continue;
        }
        if (pending.length < 5 || pending.length < 1 + pending.readInt32BE(1)) return;
        const type = String.fromCharCode(pending[0]);
        const body = pending.subarray(5, 1 + pending.readInt32BE(1));
        pending = pending.subarray(1 + pending.readInt32BE(1));
        if (type === 'c') socket.write(Buffer.concat([message('c', Buffer.alloc(0)), message('C', Buffer.from('START_REPLICATION\0')), readyForQuery()]));
        if (type === 'X') socket.end();
        if (type === 'd' && body[0] === 0x72) statuses.push({ at: performance.now(), flushed: body.readBigUInt64BE(9) }); // 'r': written, flushed, applied
        if (type !== 'Q') continue; // status updates ('d') and the like
        const sql = body.toString('utf8');
        if (sql.startsWith('SHOW server_version_num')) {
          const field = new Bytes().i16(1).cstring('server_version_num').i32(0).i16(0).i32(25).i16(-1).i32(-1).i16(0).done();
          const value = Buffer.from('180000');
          socket.write(Buffer.concat([
            message('T', field),
            message('D', new Bytes().i16(1).i32(value.length).raw(value).done()),
            message('C', Buffer.from('SHOW\0')),
            readyForQuery(),
          ]));
        } else if (sql.includes('pg_is_in_recovery()')) {
          const field = new Bytes().i16(1).cstring('standby').i32(0).i16(0).i32(16).i16(1).i32(-1).i16(0).done();
          const value = Buffer.from('f');
          socket.write(Buffer.concat([message('T', field), message('D', new Bytes().i16(1).i32(value.length).raw(value).done()), message('C', Buffer.from('SELECT 1\0')), readyForQuery()]));
        } else if (sql.startsWith('IDENTIFY_SYSTEM')) {
          // walrelay reads the timeline before it streams (a zombie primary is refused by it).
          const columns = ['systemid', 'timeline', 'xlogpos', 'dbname'];
          let fields = new Bytes().i16(columns.length);
          for (const column of columns) fields = fields.cstring(column).i32(0).i16(0).i32(25).i16(-1).i32(-1).i16(0);
          const values = ['7000000000000000000', '1', '0/1000000', 'postgres'].map((value) => Buffer.from(value));
          let row = new Bytes().i16(values.length);
          for (const value of values) row = row.i32(value.length).raw(value);
          socket.write(Buffer.concat([message('T', fields.done()), message('D', row.done()), message('C', Buffer.from('IDENTIFY_SYSTEM\0')), readyForQuery()]));
        } else if (sql.startsWith('START_REPLICATION')) {
          const copyBoth = message('W', new Bytes().u8(0).i16(0).done());
          streaming = socket;
          const all = Buffer.concat([copyBoth, ...copyData.map((body) => (Buffer.isBuffer(body) ? message('d', body) : body.raw))]);
          if (!pieceSizes) socket.write(all);
          else void (async () => {
            // Cut where `pieceSizes` says, a millisecond apart, so that each piece is a socket read of its own.
            for (let at = 0, i = 0; at < all.length; i++) {
              const size = pieceSizes[i % pieceSizes.length];
              socket.write(all.subarray(at, at + size));
              at += size;
              await new Promise((resolve) => setTimeout(resolve, 1));
            }
          })();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    statuses,
    send(bodies: Buffer[]) {
      if (!streaming) throw new Error('the client has not started replication yet');
      streaming.write(Buffer.concat(bodies.map((body) => message('d', body))));
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An XLogData body ('w', WAL start, WAL end, send time) around `payload`. */
export function xlogData(walStart: bigint, payload: Buffer): Buffer {
  return new Bytes().tag('w').u64(walStart).u64(walStart).u64(0n).raw(payload).done();
}
