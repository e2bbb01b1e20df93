// A TCP proxy between the relay and a server, to play network faults:
// `pause()` is a partition (nothing is forwarded either way, nothing is
// closed, new connections are accepted and then hang), `resume()` heals it
// (what was held back flows, closes that happened meanwhile are passed on),
// `cut()` destroys every connection at once (a reset, as when a middlebox
// or the server's host drops them), `retarget()` sends new connections to
// another server (a virtual IP or DNS name moved to another machine).
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from './ports.js';

export interface TcpProxy {
  port: number;
  pause(): void;
  resume(): void;
  cut(): void;
  retarget(port: number): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket | null;
}

export async function startTcpProxy(firstTargetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let targetPort = firstTargetPort;
  const port = await freePort();
  const pairs = new Set<Pair>();
  let paused = false;
  /** Work held back by a partition (upstream connects, closes), run on resume. */
  let heldBack: (() => void)[] = [];
  const whenConnected = (action: () => void) => (paused ? heldBack.push(action) : action());

  const destroy = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.server?.destroy();
  };

  /** Forwards `from` to `to`, with backpressure; while paused, `from` is not read at all. */
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => { if (!paused) from.resume(); });
      }
    });
  };

  const open = (pair: Pair) => {
    const server = connect({ host: targetHost, port: targetPort });
    pair.server = server;
    if (paused) server.pause();
    forward(pair.client, server);
    forward(server, pair.client);
    const closed = () => whenConnected(() => destroy(pair));
    server.on('error', closed);
    server.on('close', closed);
    pair.client.resume();
  };

  const listener: Server = createServer((client) => {
    const pair: Pair = { client, server: null };
    pairs.add(pair);
    client.pause();
    client.on('error', () => whenConnected(() => destroy(pair)));
    client.on('close', () => whenConnected(() => destroy(pair)));
    whenConnected(() => { if (pairs.has(pair)) open(pair); });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, '127.0.0.1', () => resolve());
  });

  return {
    port,
    pause() {
      paused = true;
      for (const pair of pairs) {
        pair.client.pause();
        pair.server?.pause();
      }
    },
    resume() {
      paused = false;
      const actions = heldBack;
      heldBack = [];
      for (const pair of pairs) {
        if (!pair.server) continue;
        pair.client.resume();
        pair.server.resume();
      }
      for (const action of actions) action();
    },
    retarget(port: number) {
      targetPort = port;
    },
    cut() {
      for (const pair of [...pairs]) {
        pair.client.resetAndDestroy();
        pair.server?.resetAndDestroy();
        pairs.delete(pair);
      }
    },
    async close() {
      for (const pair of [...pairs]) destroy(pair);
      heldBack = [];
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}
