// GET /healthz (alive), /readyz (streaming and every sink connected), /metrics.
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';
import { WalrelayError } from '../errors.js';

export interface Readiness {
  ready(): { ready: boolean; reasons: string[] };
}

export async function startHttp(host: string, port: number, metrics: Metrics, readiness: Readiness): Promise<Server> {
  const server = createServer(async (request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET') {
      response.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const state = readiness.ready();
      response.writeHead(state.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(state) + '\n');
    } else if (path === '/metrics') {
      response.writeHead(200, { 'content-type': metrics.registry.contentType }).end(await metrics.registry.metrics());
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new WalrelayError('HTTP_LISTEN', `cannot serve /healthz, /readyz and /metrics on ${host}:${port}: ${error.code ?? error.message}`, {
      hint: error.code === 'EADDRINUSE' ? `another process uses port ${port}: set http.port (or WALRELAY_HTTP__PORT) to a free port`
        : error.code === 'EADDRNOTAVAIL' ? `no interface has address ${host}: correct http.host` : 'check http.host and http.port',
      cause: error,
    })));
    server.listen(port, host, () => resolve());
  });
  return server;
}
