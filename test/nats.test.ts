// The NATS JetStream sink against a real nats-server (its own, on a random
// port, so that it can be killed and restarted): every change of the same
// keys arrives in commit order with Nats-Msg-Id = the event id; a server
// killed mid-stream and a walrelay killed with -9 lose nothing and store
// nothing twice (JetStream drops a Nats-Msg-Id it already has); a subject
// that no stream captures stops the start with a clear error.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startNats, createStream, readStreamMessages, type TestNats } from './harness/nats.js';
import { writeConfig, runCli, spawnRelay, silentLogger, type RelayProcess } from './harness/relay.js';
import { NatsSink } from '../sinks/nats/index.js';
import { natsSinkSchema } from '../config/schema.js';
import { mixedWorkload, historyByKey, startFaultWriter, assertFaultDelivery, type Delivered } from './harness/broker-workload.js';
import { freePort } from './harness/ports.js';
import { startTcpProxy, type TcpProxy } from './harness/tcp-proxy.js';
import { waitFor } from './harness/wait.js';

const TABLES = ['mixed', 'outage', 'killed', 'messages_only', 'late'];

async function readiness(port: number): Promise<{ status: number; reasons: string[] }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, reasons: ((await response.json()) as { reasons: string[] }).reasons };
}

describe('nats sink (JetStream)', () => {
  let pgServer: TestPostgres;
  let nats: TestNats;
  let client: NatsConnection;
  let relay: RelayProcess | null = null;
  let httpPort: number;
  let configFile: string;
  /** Between the relay and nats-server: a partition and a cut drop publishes in flight. */
  let proxy: TcpProxy;

  const delivered = async (subject: string): Promise<Delivered[]> =>
    (await readStreamMessages(client, 'WALRELAY')).filter((message) => message.subject === subject).map((message) => ({ messageId: message.headers['Nats-Msg-Id'], body: message.body }));

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
    [pgServer, nats] = await Promise.all([startPostgres('pg15'), startNats()]);
    client = await nats.client();
    await createStream(client, 'WALRELAY', ['walrelay.>']);
    await pgServer.query(TABLES.map((table) => `CREATE TABLE ${table} (id int PRIMARY KEY, n int);`).join('\n'));
    httpPort = await freePort();
    proxy = await startTcpProxy(nats.port);
    configFile = writeConfig({
      source: { url: pgServer.url, tables: TABLES.map((table) => `public.${table}`) },
      sinks: [{ type: 'nats', servers: [`nats://127.0.0.1:${proxy.port}`], timeoutSeconds: 3 }],
      http: { port: httpPort },
    });
    const setup = await runCli(['setup', '-c', configFile]);
    assert.equal(setup.code, 0, setup.stderr);
  });

  after(async () => {
    relay?.signal('SIGKILL');
    await client?.close();
    await proxy?.close();
    await Promise.all([pgServer?.stop(), nats?.stop()]);
  });

  it('delivers every insert, update and delete of the same keys in commit order, Nats-Msg-Id = event id', async () => {
    await start();
    const expected = await mixedWorkload(pgServer.url, 'mixed');
    const total = [...expected.values()].reduce((sum, list) => sum + list.length, 0);
    await pgServer.query(`SELECT pg_logical_emit_message(true, 'audit', 'hello')`);
    await waitFor(async () => (await delivered('walrelay.public.mixed')).length >= total, { what: `${total} events on walrelay.public.mixed`, timeoutMs: 30_000 });
    const messages = await delivered('walrelay.public.mixed');
    assert.equal(messages.length, total, 'every change once (JetStream keeps no duplicate)');
    assert.deepEqual(historyByKey(messages), expected);
    const stored = (await readStreamMessages(client, 'WALRELAY')).filter((message) => message.subject === 'walrelay.public.mixed');
    for (const message of stored) {
      const event = JSON.parse(message.body);
      assert.equal(message.headers['Nats-Msg-Id'], event.id);
      assert.equal(message.headers['walrelay-op'], event.op);
      assert.equal(message.headers['walrelay-lsn'], event.lsn);
      assert.equal(message.headers['walrelay-key'], JSON.stringify({ id: event.new?.id ?? event.key?.id }));
    }
    await waitFor(async () => (await delivered('walrelay.messages')).length === 1, { what: 'the logical message on walrelay.messages' });
    assert.equal(JSON.parse((await delivered('walrelay.messages'))[0].body).prefix, 'audit');
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(metrics, /walrelay_events_delivered_total\{sink="nats#0"\} [1-9]\d*/);
    assert.match(metrics, /walrelay_sink_retries_total\{sink="nats#0"\} 0/);
    await stop();
  });

  it('loses nothing when nats-server is killed -9 and restarted mid-stream, or publishes die in a partition; /readyz is 503 meanwhile; nothing stored twice', async () => {
    await start();
    const writer = startFaultWriter(pgServer.url, 'outage');
    await waitFor(async () => (await delivered('walrelay.public.outage')).length > 500, { what: 'the first events on walrelay.public.outage', timeoutMs: 30_000 });
    await client.close();
    await nats.kill();
    await waitFor(async () => (await readiness(httpPort)).status === 503, { what: '/readyz 503 while nats is down', timeoutMs: 10_000 });
    const { reasons } = await readiness(httpPort);
    assert.ok(reasons.some((reason) => /nats#0/.test(reason) && /nats/.test(reason)), reasons.join('; '));
    await new Promise((resolve) => setTimeout(resolve, 1500)); // commits go on while the server is down
    await nats.restart();
    client = await nats.client();
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 after nats is back', timeoutMs: 30_000 });
    // Publishes that reach no server: held by a partition, then dropped with the connection. Only a publish again saves them.
    const before = (await delivered('walrelay.public.outage')).length;
    await waitFor(async () => (await delivered('walrelay.public.outage')).length > before + 200, { what: 'events flowing again after the restart', timeoutMs: 30_000 });
    proxy.pause();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    proxy.cut();
    proxy.resume();
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 after the cut', timeoutMs: 30_000 });
    const committed = await writer.stop();
    const expectedEvents = committed.lastId + [...committed.hot.values()].reduce((sum, n) => sum + n, 0);
    await waitFor(async () => (await delivered('walrelay.public.outage')).length >= expectedEvents, { what: `${expectedEvents} events after the outage`, timeoutMs: 60_000 });
    const duplicates = assertFaultDelivery(await delivered('walrelay.public.outage'), committed);
    assert.equal(duplicates, 0, 'JetStream stored an event twice');
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const retried = Number(/walrelay_sink_retries_total\{sink="nats#0"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(retried > 0, 'the outage shows in walrelay_sink_retries_total');
    console.log(`# ${expectedEvents} events across a nats-server kill -9, ${writer.transactions} transactions, ${retried} retries`);
    await stop();
  });

  it('loses nothing when walrelay is killed -9 mid-stream, and JetStream keeps each event once', async () => {
    await start();
    const writer = startFaultWriter(pgServer.url, 'killed');
    await waitFor(async () => (await delivered('walrelay.public.killed')).length > 500, { what: 'the first events on walrelay.public.killed', timeoutMs: 30_000 });
    relay!.signal('SIGKILL');
    await relay!.exited;
    await new Promise((resolve) => setTimeout(resolve, 500));
    await start();
    const committed = await writer.stop();
    const expectedEvents = committed.lastId + [...committed.hot.values()].reduce((sum, n) => sum + n, 0);
    await waitFor(async () => (await delivered('walrelay.public.killed')).length >= expectedEvents, { what: `${expectedEvents} events after the kill`, timeoutMs: 60_000 });
    assert.equal(assertFaultDelivery(await delivered('walrelay.public.killed'), committed), 0, 'JetStream stored an event twice');
    console.log(`# ${expectedEvents} events across a walrelay kill -9; the restart re-sent events JetStream already had: ${/JetStream already had some events/.test(relay!.logs())}`);
    await stop();
  });

  it('waits for a nats-server that is down at start (/readyz 503), then checks its subjects and delivers', async () => {
    await client.close();
    await nats.kill();
    relay = spawnRelay(configFile);
    await relay.waitForLog(/nats not reachable yet/);
    await relay.waitForLog(/"msg":"streaming"/);
    await pgServer.query(`INSERT INTO late VALUES (1, 1)`);
    await waitFor(async () => (await readiness(httpPort)).status === 503, { what: '/readyz 503 while nats has never answered', timeoutMs: 10_000 });
    await nats.restart();
    client = await nats.client();
    await waitFor(async () => (await delivered('walrelay.public.late')).length === 1, { what: 'the row committed while nats was down', timeoutMs: 30_000 });
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 once nats answers', timeoutMs: 15_000 });
    await stop();
  });

  it('stores a batch published twice once (Nats-Msg-Id), and counts the second as delivered', async () => {
    const sink = new NatsSink(natsSinkSchema.parse({ type: 'nats', servers: [nats.url], subject: 'walrelay.direct.{table}' }), 0, silentLogger);
    await sink.start();
    const events = Array.from({ length: 50 }, (_, index) => ({
      id: `00000000DEADBEEF-${String(index).padStart(10, '0')}`, op: 'insert' as const, schema: 'public', table: 'twice',
      key: { id: index }, new: { id: index, n: 0 }, lsn: '0/DEADBEEF', commitLsn: '0/DEADBEEF', xid: 1, commitTime: null,
    }));
    await sink.write(events);
    await sink.write(events);
    await sink.close();
    const stored = await delivered('walrelay.direct.twice');
    assert.deepEqual(stored.map((message) => message.messageId), events.map((event) => event.id));
  });

  it('refuses to start when no stream captures a subject, naming it', async () => {
    const file = writeConfig({
      source: { url: pgServer.url },
      sinks: [{ type: 'nats', servers: [nats.url], subject: 'nowhere.{schema}.{table}', messageSubject: 'lost.messages', tables: ['public.messages_only'] }],
    });
    const twoLogins = await runCli(['validate', '-c', writeConfig({ source: { url: pgServer.url }, sinks: [{ type: 'nats', servers: [nats.url], token: 't', user: 'u', password: 'p' }] })]);
    assert.notEqual(twoLogins.code, 0);
    assert.match(twoLogins.stderr, /choose one way to authenticate, not user and token/);
    const validated = await runCli(['validate', '-c', file]);
    assert.equal(validated.code, 0, validated.stderr);
    assert.match(validated.stdout, /1 sink\(s\): nats/);
    const result = await runCli(['run', '-c', file]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /NATS_NO_STREAM/);
    assert.match(result.stderr, /nowhere\.public\.messages_only/);
    assert.match(result.stderr, /lost\.messages/);
    assert.match(result.stderr, /nats stream add/);
    // The probe stored nothing anywhere.
    assert.equal((await readStreamMessages(client, 'WALRELAY')).filter((message) => !message.subject.startsWith('walrelay.')).length, 0);
  });

  it('authenticates with a token read from tokenFile', async () => {
    const secured = await startNats(['--auth', 's3cret-token']);
    try {
      const admin = await secured.client();
      await createStream(admin, 'WALRELAY', ['walrelay.>']);
      const dir = mkdtempSync(join(tmpdir(), 'walrelay-nats-token-'));
      writeFileSync(join(dir, 'token'), 's3cret-token\n');
      const file = writeConfig({
        source: { url: pgServer.url },
        sinks: [{ type: 'nats', servers: [secured.url], tokenFile: join(dir, 'token'), tables: ['public.messages_only'] }],
      });
      const wrong = writeConfig({
        source: { url: pgServer.url },
        sinks: [{ type: 'nats', servers: [secured.url], token: 'wrong', tables: ['public.messages_only'] }],
      });
      const refused = await runCli(['run', '-c', wrong]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /NATS_AUTH/);
      relay = spawnRelay(file);
      await relay.waitForLog(/"msg":"streaming"/);
      await pgServer.query(`INSERT INTO messages_only VALUES (1, 1)`);
      await waitFor(async () => (await readStreamMessages(admin, 'WALRELAY')).some((message) => message.subject === 'walrelay.public.messages_only'), { what: 'the row on the token-protected server' });
      await stop();
      await admin.close();
    } finally {
      await secured.stop();
    }
  });
});
