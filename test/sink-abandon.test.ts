// A batch whose replication session ended (the AbortSignal of Sink.write) is
// abandoned: the sink stops retrying and rejects with DELIVERY_ABANDONED at
// once, instead of retrying until its server is back and then delivering a
// stale copy behind the next session's newer events (and instead of holding
// up the reconnect that waits for the write to end).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import pino from 'pino';
import { parseConfig } from '../config/load.js';
import { createSink } from '../sinks/index.js';
import { RowChange } from '../relay/route/event.js';
import { freePort } from './harness/ports.js';

const silent = pino({ level: 'silent' });
const event = () => new RowChange('0000000001000000-0000000001', 'insert', 'public', 'orders', '"schema":"public","table":"orders"',
  '{"id":1}', '{"id":1}', null, undefined, '0/1000000', '0/1000000', 1, '2026-12-05T00:00:00.000000Z');

async function sinkOf(sink: Record<string, unknown>) {
  const config = parseConfig({ source: { url: 'postgres://walrelay@127.0.0.1:1/app' }, sinks: [sink] }, {});
  return createSink(config.sinks[0], 0, silent);
}

/** Writes one batch, lets the sink fail and retry for a while, then aborts: the write must reject DELIVERY_ABANDONED within 3 s. */
async function assertAbandoned(sink: Awaited<ReturnType<typeof sinkOf>>, retrying: () => boolean): Promise<void> {
  const session = new AbortController();
  const write = sink.write([event()], session.signal);
  write.catch(() => undefined);
  const deadline = Date.now() + 10_000;
  while (!retrying() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(retrying(), 'the sink was retrying');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const abortedAt = Date.now();
  session.abort();
  const outcome = await Promise.race([
    write.then(() => 'delivered', (error: Error & { code?: string }) => error.code ?? error.message),
    new Promise((resolve) => setTimeout(() => resolve('still retrying 3 s after the abort'), 3000)),
  ]);
  assert.equal(outcome, 'DELIVERY_ABANDONED');
  assert.ok(Date.now() - abortedAt < 3000);
  await sink.close();
}

describe('a write whose replication session ended is abandoned', () => {
  let server: Server | undefined;
  after(() => server?.close());

  it('webhook: stops retrying a failing endpoint', async () => {
    let requests = 0;
    server = createServer((_request, response) => { requests++; response.writeHead(503).end(); });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const sink = await sinkOf({ type: 'webhook', url: `http://127.0.0.1:${port}/hook` });
    await assertAbandoned(sink, () => requests >= 1);
  });

  it('nats: stops retrying while the server is unreachable', async () => {
    const sink = await sinkOf({ type: 'nats', servers: [`nats://127.0.0.1:${await freePort()}`] });
    await assertAbandoned(sink, () => (sink.retries?.() ?? 0) >= 1);
  });

  it('rabbitmq: stops retrying while the broker is unreachable', async () => {
    const sink = await sinkOf({ type: 'rabbitmq', url: `amqp://guest:guest@127.0.0.1:${await freePort()}/` });
    await assertAbandoned(sink, () => (sink.retries?.() ?? 0) >= 1);
  });
});
