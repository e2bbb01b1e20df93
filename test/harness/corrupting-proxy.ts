// A TCP proxy between walrelay and PostgreSQL that damages chosen pgoutput
// messages on their way to walrelay: how a test makes a real server's
// replication stream carry bytes walrelay cannot decode. It reads the
// server's side as protocol messages (type byte, int32 length), and hands
// the pgoutput payload of each XLogData message ('d' CopyData holding 'w') to
// `corrupt`, which may return a damaged copy of the same length. Everything
// else passes byte for byte. (A plain proxy with partitions is the `faults`
// harness; this one only corrupts.)
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface CorruptingProxy {
  port: number;
  /** How many payloads `corrupt` changed. */
  readonly corrupted: number;
  close(): Promise<void>;
}

/** `corrupt` returns a damaged copy of the payload, or null to pass it unchanged. */
export async function startCorruptingProxy(targetPort: number, corrupt: (payload: Buffer) => Buffer | null): Promise<CorruptingProxy> {
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
        if (message[0] === 0x64 && message[5] === 0x77) { // CopyData holding XLogData: 1 + 4 + 'w' + 3 × 8 bytes, then pgoutput
          const damaged = corrupt(message.subarray(30));
          if (damaged) {
            if (damaged.length !== size - 30) throw new Error('corrupt() must keep the payload length, so the framing stays intact');
            message = Buffer.concat([message.subarray(0, 30), damaged]);
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
