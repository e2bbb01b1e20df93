// The RabbitMQ sink against the machine's RabbitMQ, through a TCP proxy
// that can hold and cut the connection: every change of the same keys
// arrives in commit order, persistent, with message_id = the event id; a
// connection cut mid-stream (with publishes held in a partition first) and
// a walrelay killed with -9 lose nothing, and re-deliveries are identical;
// a message no queue takes is an error that waits, not a loss.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect } from 'amqplib';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { openRabbit, RABBITMQ_URL, RABBITMQ_PORT, type TestRabbit } from './harness/rabbitmq.js';
import { writeConfig, runCli, spawnRelay, silentLogger, type RelayProcess } from './harness/relay.js';
import { mixedWorkload, historyByKey, startFaultWriter, assertFaultDelivery } from './harness/broker-workload.js';
import { startTcpProxy, type TcpProxy } from './harness/tcp-proxy.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';
import { RabbitmqSink } from '../sinks/rabbitmq/index.js';
import { rabbitmqSinkSchema } from '../config/schema.js';

const TABLES = ['mixed', 'outage', 'killed', 'unrouted'];

async function readiness(port: number): Promise<{ status: number; reasons: string[] }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, reasons: ((await response.json()) as { reasons: string[] }).reasons };
}

describe('rabbitmq sink', () => {
  let pgServer: TestPostgres;
  let rabbit: TestRabbit;
  let proxy: TcpProxy;
  let relay: RelayProcess | null = null;
  let httpPort: number;
  let configFile: string;
  let exchange: string;
  const exchanges: string[] = [];

  const start = async (): Promise<RelayProcess> => {
    relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    return relay;
  };

  const stop = async (): Promise<void> => {
    relay!.signal('SIGTERM');
    assert.equal(await relay!.exited, 0, relay!.logs().slice(-2000));
    relay = null;
  };

  before(async () => {
    [pgServer, rabbit, proxy] = await Promise.all([startPostgres('pg15'), openRabbit(), startTcpProxy(RABBITMQ_PORT)]);
    exchange = rabbit.unique('events');
    exchanges.push(exchange);
    await pgServer.query(TABLES.map((table) => `CREATE TABLE ${table} (id int PRIMARY KEY, n int);`).join('\n'));
    httpPort = await freePort();
    const viaProxy = new URL(RABBITMQ_URL);
    viaProxy.port = String(proxy.port);
    configFile = writeConfig({
      source: { url: pgServer.url, tables: TABLES.map((table) => `public.${table}`) },
      sinks: [{ type: 'rabbitmq', url: viaProxy.toString(), exchange, timeoutSeconds: 3 }],
      http: { port: httpPort },
    });
    const setup = await runCli(['setup', '-c', configFile]);
    assert.equal(setup.code, 0, setup.stderr);
  });

  after(async () => {
    relay?.signal('SIGKILL');
    await rabbit?.cleanUp(exchanges);
    await proxy?.close();
    await pgServer?.stop();
  });

  it('declares its exchange and delivers every insert, update and delete of the same keys in commit order, persistent, message_id = event id', async () => {
    await start();
    assert.match(relay!.logs(), /declared rabbitmq exchange/);
    const queue = await rabbit.bindQueue(exchange, 'public.mixed');
    const messages = await rabbit.bindQueue(exchange, 'messages');
    const expected = await mixedWorkload(pgServer.url, 'mixed');
    const total = [...expected.values()].reduce((sum, list) => sum + list.length, 0);
    await pgServer.query(`SELECT pg_logical_emit_message(true, 'audit', 'hello')`);
    await waitFor(() => queue.delivered().length >= total && messages.delivered().length === 1, { what: `${total} messages in the queue bound to public.mixed, and the logical message`, timeoutMs: 30_000 });
    assert.equal(queue.delivered().length, total, 'a clean run delivers each change once');
    assert.deepEqual(historyByKey(queue.delivered()), expected);
    for (const message of queue.messages()) {
      const event = JSON.parse(message.content.toString());
      assert.equal(message.properties.messageId, event.id);
      assert.equal(message.properties.contentType, 'application/json');
      assert.equal(message.properties.deliveryMode, 2, 'persistent');
      assert.equal(message.fields.routingKey, 'public.mixed');
      assert.equal(message.properties.headers?.['walrelay-op'], event.op);
      assert.equal(message.properties.headers?.['walrelay-lsn'], event.lsn);
    }
    assert.equal(JSON.parse(messages.delivered()[0].body).prefix, 'audit');
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(metrics, /walrelay_events_delivered_total\{sink="rabbitmq#0"\} [1-9]\d*/);
    assert.match(metrics, /walrelay_sink_retries_total\{sink="rabbitmq#0"\} 0/);
    await stop();
  });

  it('loses nothing when the connection is held, then cut, mid-stream; /readyz is 503 meanwhile; re-deliveries are identical', async () => {
    await start();
    const queue = await rabbit.bindQueue(exchange, 'public.outage');
    const writer = startFaultWriter(pgServer.url, 'outage');
    await waitFor(() => queue.delivered().length > 500, { what: 'the first messages of public.outage', timeoutMs: 30_000 });
    // Publishes held by a partition are never confirmed; the cut then drops them with the connection.
    proxy.pause();
    await waitFor(async () => (await readiness(httpPort)).status === 503, { what: '/readyz 503 while rabbitmq confirms nothing', timeoutMs: 15_000 });
    const { reasons } = await readiness(httpPort);
    assert.ok(reasons.some((reason) => /rabbitmq#0/.test(reason)), reasons.join('; '));
    proxy.cut();
    proxy.resume();
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 after the cut', timeoutMs: 30_000 });
    // And a plain cut while messages flow.
    const before = queue.delivered().length;
    await waitFor(() => queue.delivered().length > before + 200, { what: 'messages flowing again', timeoutMs: 30_000 });
    proxy.cut();
    const committed = await writer.stop();
    const expectedEvents = committed.lastId + [...committed.hot.values()].reduce((sum, n) => sum + n, 0);
    await waitFor(() => new Set(queue.delivered().map((message) => message.messageId)).size >= expectedEvents, { what: `${expectedEvents} distinct messages after the outage`, timeoutMs: 60_000 });
    const duplicates = assertFaultDelivery(queue.delivered(), committed);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const retried = Number(/walrelay_sink_retries_total\{sink="rabbitmq#0"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(retried > 0, 'the outage shows in walrelay_sink_retries_total');
    console.log(`# ${expectedEvents} events across a held and cut connection, ${duplicates} identical re-deliveries, ${retried} retries`);
    await stop();
  });

  it('loses nothing when walrelay is killed -9 mid-stream; re-deliveries are identical', async () => {
    await start();
    const queue = await rabbit.bindQueue(exchange, 'public.killed');
    const writer = startFaultWriter(pgServer.url, 'killed');
    await waitFor(() => queue.delivered().length > 500, { what: 'the first messages of public.killed', timeoutMs: 30_000 });
    relay!.signal('SIGKILL');
    await relay!.exited;
    await start();
    const committed = await writer.stop();
    const expectedEvents = committed.lastId + [...committed.hot.values()].reduce((sum, n) => sum + n, 0);
    await waitFor(() => new Set(queue.delivered().map((message) => message.messageId)).size >= expectedEvents, { what: `${expectedEvents} distinct messages after the kill`, timeoutMs: 60_000 });
    const duplicates = assertFaultDelivery(queue.delivered(), committed);
    console.log(`# ${expectedEvents} events across a walrelay kill -9, ${duplicates} identical re-deliveries`);
    await stop();
  });

  it('treats a message no queue takes as an error that waits (/readyz 503), and delivers it once a queue is bound', async () => {
    await start();
    await pgServer.query(`INSERT INTO unrouted VALUES (1, 1)`);
    await relay!.waitForLog(/RABBITMQ_UNROUTABLE/, 15_000);
    assert.match(relay!.logs(), /routing key \\"public\.unrouted\\"/);
    await waitFor(async () => (await readiness(httpPort)).status === 503, { what: '/readyz 503 while a message is unroutable', timeoutMs: 10_000 });
    assert.ok((await readiness(httpPort)).reasons.some((reason) => /RABBITMQ_UNROUTABLE/.test(reason)));
    const queue = await rabbit.bindQueue(exchange, 'public.unrouted');
    await waitFor(() => queue.delivered().length >= 1, { what: 'the once-unroutable row in the newly bound queue', timeoutMs: 15_000 });
    assert.equal(JSON.parse(queue.delivered()[0].body).new.id, 1);
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 once the message is routed', timeoutMs: 10_000 });
    await stop();
  });

  it('publishes a domain event under its destination with its headers, and a CloudEvent as application/cloudevents+json', async () => {
    const base = { schema: 'public', table: 'orders', lsn: '0/2', commitLsn: '0/2', xid: 2, commitTime: null };
    const domain = new RabbitmqSink(rabbitmqSinkSchema.parse({ type: 'rabbitmq', url: RABBITMQ_URL, exchange }), 0, silentLogger);
    await domain.start(); // declares the exchange when this test runs alone
    const domainQueue = await rabbit.bindQueue(exchange, 'outbox.event.#');
    const cloudQueue = await rabbit.bindQueue(exchange, 'ce.public.orders');
    await domain.write([{ ...base, id: '0000000000000002-0000000001', op: 'insert', key: { id: 42 }, new: { id: 42 },
      domain: { destination: 'outbox.event.order', key: '"42"', value: '{"total":10}', headers: [['id', 'e-1'], ['type', 'OrderCreated']] } } as never]);
    await domain.close();
    const cloud = new RabbitmqSink(rabbitmqSinkSchema.parse({ type: 'rabbitmq', url: RABBITMQ_URL, exchange, format: 'cloudevents', routingKey: 'ce.{schema}.{table}' }), 1, silentLogger);
    await cloud.start();
    await cloud.write([{ ...base, id: '0000000000000002-0000000002', op: 'insert', key: { id: 43 }, new: { id: 43 } }]);
    await cloud.close();
    await waitFor(() => domainQueue.messages().length === 1 && cloudQueue.messages().length === 1, { what: 'the domain event and the CloudEvent' });
    const [outbox] = domainQueue.messages();
    assert.equal(outbox.fields.routingKey, 'outbox.event.order');
    assert.equal(outbox.content.toString(), '{"total":10}');
    assert.equal(outbox.properties.messageId, '0000000000000002-0000000001');
    assert.equal(outbox.properties.headers?.type, 'OrderCreated');
    assert.equal(outbox.properties.headers?.['walrelay-key'], '"42"');
    const [ce] = cloudQueue.messages();
    assert.equal(ce.properties.contentType, 'application/cloudevents+json');
    const body = JSON.parse(ce.content.toString());
    assert.equal(body.specversion, '1.0');
    assert.equal(body.id, '0000000000000002-0000000002');
  });

  it('uses an existing exchange of another type as it is (no 406), and refuses a wrong password or vhost at start', async () => {
    const existing = rabbit.unique('fanout');
    exchanges.push(existing);
    await rabbit.channel.assertExchange(existing, 'fanout', { durable: false });
    const queue = await rabbit.bindQueue(existing, '');
    const sink = new RabbitmqSink(rabbitmqSinkSchema.parse({ type: 'rabbitmq', url: RABBITMQ_URL, exchange: existing }), 0, silentLogger);
    await sink.start();
    assert.ok(sink.isReady(), sink.notReadyReason());
    await sink.write([{ id: '0000000000000001-0000000001', op: 'message', prefix: 'p', content: 'x', lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: null }]);
    await sink.close();
    // Confirmed means queued; the test's consumer receives it a moment later.
    await waitFor(() => queue.delivered().length === 1, { what: 'the message in the queue bound to the fanout exchange', timeoutMs: 10_000 });
    const wrong = new URL(RABBITMQ_URL);
    wrong.password = 'not-the-password';
    const refused = new RabbitmqSink(rabbitmqSinkSchema.parse({ type: 'rabbitmq', url: wrong.toString(), exchange: existing }), 0, silentLogger);
    await assert.rejects(refused.start(), /RABBITMQ_AUTH|refused the login/);
    await refused.close();
    const noVhost = new URL(RABBITMQ_URL);
    noVhost.pathname = '/walrelay-no-such-vhost';
    const notAllowed = new RabbitmqSink(rabbitmqSinkSchema.parse({ type: 'rabbitmq', url: noVhost.toString(), exchange: existing }), 0, silentLogger);
    await assert.rejects(notAllowed.start(), (error: Error & { code?: string }) => error.code === 'RABBITMQ_VHOST' && error.message.includes('"walrelay-no-such-vhost"'));
    await notAllowed.close();
  });

  it('a vhost that refuses connections after the sink was connected is waited for, not a stop (a connection limit, a vhost going down)', async () => {
    const vhost = `walrelay-test-${process.pid}-${Date.now()}`;
    const ctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` } });
    ctl('add_vhost', vhost);
    ctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    const url = new URL(RABBITMQ_URL);
    url.pathname = `/${vhost}`;
    const sink = new RabbitmqSink(rabbitmqSinkSchema.parse({ type: 'rabbitmq', url: url.toString() }), 0, silentLogger);
    try {
      await sink.start();
      assert.ok(sink.isReady(), sink.notReadyReason());
      ctl('delete_vhost', vhost); // closes the sink's connection; connecting again is refused
      const write = sink.write([{ id: '0000000000000001-0000000001', op: 'message', prefix: 'p', content: 'x', lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: null }]);
      const early = await Promise.race([write.then(() => 'delivered', (error: Error & { code?: string }) => error.code ?? error.message), new Promise((resolve) => setTimeout(() => resolve('waiting'), 2000))]);
      assert.equal(early, 'waiting', 'the refused vhost is waited for');
      assert.match(sink.notReadyReason() ?? '', /vhost|lost the connection|closed/);
      ctl('add_vhost', vhost);
      ctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
      // A queue for the message in the new vhost (unroutable, it would wait on).
      const consumer = await connect(url.toString());
      const channel = await consumer.createChannel();
      await channel.assertExchange('walrelay', 'topic', { durable: true });
      const { queue } = await channel.assertQueue('', { exclusive: true });
      await channel.bindQueue(queue, 'walrelay', '#');
      await write; // delivered once the vhost is back
      await waitFor(async () => (await channel.checkQueue(queue)).messageCount === 1, { what: 'the message in the vhost that came back', timeoutMs: 10_000 });
      await consumer.close();
    } finally {
      await sink.close();
      try { ctl('delete_vhost', vhost); } catch { /* already gone */ }
    }
  });

  it('a port that accepts TCP but never speaks AMQP: says so (not a bare ETIMEDOUT) and waits', async () => {
    const { createServer } = await import('node:net');
    const silent = createServer(() => undefined); // accepts, says nothing (amqp:// to the TLS port, another server's port)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const sink = new RabbitmqSink(rabbitmqSinkSchema.parse({ type: 'rabbitmq', url: `amqp://guest:guest@127.0.0.1:${port}/`, timeoutSeconds: 1 }), 0, silentLogger);
    try {
      await sink.start();
      assert.match(sink.notReadyReason() ?? '', /RABBITMQ_UNREACHABLE.*no AMQP handshake within 1 s.*AMQP port/);
    } finally {
      await sink.close();
      silent.close();
    }
  });

  it('waits for a broker whose address holds 403 or 530 (a port, not a refusal) instead of stopping as a bad login', async () => {
    // The port is part of the connect error's text ("connect ECONNREFUSED 127.0.0.1:40312"); reading its digits as
    // AMQP reply codes stopped the start, and made a write give up at once.
    for (const code of ['403', '530']) {
      const port = await freePortMatching(code);
      const sink = new RabbitmqSink(rabbitmqSinkSchema.parse({ type: 'rabbitmq', url: `amqp://guest:guest@127.0.0.1:${port}/` }), 0, silentLogger);
      await sink.start();
      assert.match(sink.notReadyReason() ?? '', /cannot connect to rabbitmq/);
      const write = sink.write([{ id: '0000000000000001-0000000001', op: 'message', prefix: 'p', content: 'x', lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: null }]);
      const outcome = await Promise.race([write.then(() => 'delivered', (error: Error) => error.message), new Promise((resolve) => setTimeout(() => resolve('waiting'), 500))]);
      assert.equal(outcome, 'waiting', `port ${port}`);
      await sink.close();
      await write.catch(() => undefined);
    }
  });
});

/** A free port whose number contains `digits` (40300-40399 or 53000-53099 here). */
async function freePortMatching(digits: string): Promise<number> {
  const { createServer } = await import('node:net');
  const base = Number(digits) * 100;
  for (let port = base; port < base + 100; port++) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer().once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port in ${base}-${base + 99}`);
}
