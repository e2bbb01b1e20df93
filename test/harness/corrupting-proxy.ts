// A TCP proxy between walrelay and PostgreSQL that damages chosen messages of
// the replication stream on their way to walrelay: how a test makes a real
// server's stream carry bytes walrelay cannot decode. It reads the server's
// side as protocol messages (type byte, int32 length) and hands the body of
// each XLogData message (a CopyData 'd' whose body starts with 'w': the
// 25-byte XLogData header, then the pgoutput message) to `corrupt`, which may
// return a replacement body of any length; the frame's length is rewritten
// to match. Everything else passes byte for byte. (A plain proxy with
// partitions is the `faults` harness; this one only corrupts.)
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface CorruptingProxy {
  port: number;
  /** How many XLogData bodies `corrupt` replaced. */
  readonly corrupted: number;
  close(): Promise<void>;
}

/** Where the pgoutput message starts in an XLogData body: 'w', WAL start, WAL end, send time. */
export const XLOGDATA_HEADER = 25;

/** `corrupt` returns a replacement for an XLogData body, or null to pass it unchanged. */
export async function startCorruptingProxy(targetPort: number, corrupt: (body: Buffer) => Buffer | null): Promise<CorruptingProxy> {
  let corrupted = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream);
    client.on('end', () => upstream.end());
    let pending: Buffer = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= 5) {
        const size = 1 + pending.readInt32BE(offset + 1);
        if (pending.length - offset < size) break;
        let message = pending.subarray(offset, offset + size);
        if (message[0] === 0x64 && message[5] === 0x77) {
          const replacement = corrupt(message.subarray(5));
          if (replacement) {
            const header = Buffer.alloc(5);
            header[0] = 0x64;
            header.writeInt32BE(4 + replacement.length, 1);
            message = Buffer.concat([header, replacement]);
            corrupted++;
          }
        }
        client.write(message);
        offset += size;
      }
      pending = pending.subarray(offset);
    });
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    get corrupted() { return corrupted; },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
