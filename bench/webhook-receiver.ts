// The benchmark's webhook receiver: answers every POST with 204 as soon as
// its body has arrived, over keep-alive connections, and does nothing else,
// so that what is measured is walrelay's side of the exchange.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BenchReceiver {
  url: string;
  close(): Promise<void>;
}

export async function startBenchReceiver(): Promise<BenchReceiver> {
  const server: Server = createServer((request, response) => {
    request.on('data', () => undefined);
    request.on('end', () => { response.writeHead(204); response.end(); });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bench`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
