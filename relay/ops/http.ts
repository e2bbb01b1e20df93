// GET /healthz (alive), /readyz (streaming and every sink connected), /metrics.
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';
import { WalrelayError } from '../errors.js';

export interface Readiness {
  /** `standby`: a hot standby waiting for the slot another instance holds. */
  ready(): { ready: boolean; standby?: boolean; reasons: string[] };
}

export async function startHttp(host: string, port: number, metrics: Metrics, readiness: Readiness): Promise<Server> {
  const server = createServer(async (request, response) => {
    const [path, query = ''] = (request.url ?? '/').split('?');
    if (request.method !== 'GET') {
      response.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const state = readiness.ready();
      // ?standby=ok also counts a hot standby whose only reason is the slot held elsewhere:
      // a Kubernetes readiness probe for two replicas, whose rollout would otherwise never finish.
      const standbyOk = new URLSearchParams(query).get('standby') === 'ok' && state.standby === true && state.reasons.length === 1;
      response.writeHead(state.ready || standbyOk ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(state) + '\n');
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
