// A loopback TCP proxy for delivery faults (tcp-proxy.ts plays network partitions) in front of a real server that can swallow the next
// answer (the request reaches the server and takes effect, the client sees
// its connection drop instead: a response lost on the network), or hold the
// client's requests back and release them later (a write delayed in flight).
import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** The next bytes the server sends are dropped and both connections closed. */
  loseNextAnswer(): void;
  /** How many answers were lost so far. */
  readonly lostAnswers: number;
  /** From now on, requests are kept in the proxy instead of reaching the server. */
  hold(): void;
  /** Bytes of requests held back so far. */
  readonly heldBytes: number;
  /** Sends the held requests on and forwards again. */
  release(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(port: number, targetPort: number): Promise<TcpProxy> {
  let loseNext = false;
  let lost = 0;
  let holding = false;
  const held: { upstream: net.Socket; chunk: Buffer }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk) => { if (holding) held.push({ upstream, chunk }); else upstream.write(chunk); });
    upstream.on('data', (chunk) => {
      if (loseNext) {
        loseNext = false;
        lost++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    loseNextAnswer: () => { loseNext = true; },
    get lostAnswers() { return lost; },
    hold: () => { holding = true; },
    get heldBytes() { return held.reduce((sum, item) => sum + item.chunk.length, 0); },
    release: () => {
      holding = false;
      for (const { upstream, chunk } of held.splice(0)) upstream.write(chunk);
    },
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
