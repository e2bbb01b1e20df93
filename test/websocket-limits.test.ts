// Limits of an internet-facing websocket sink (issue 20 part 1), each
// against a hostile client: maxConnections, maxConnectionsPerIp (with
// X-Forwarded-For only from trustedProxies), allowedOrigins,
// handshakeTimeoutSeconds (slowloris), maxFrameBytes, the client frame rate
// and the subscription/channel cap; refusals counted by reason. Then a
// legitimate client keeps receiving changes within 1 s while thousands of
// hostile connections are refused.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { SignJWT } from 'jose';
import pino from 'pino';
import { WebsocketSink } from '../sinks/websocket/index.js';
import { websocketSinkSchema } from '../config/schema.js';
import { Metrics } from '../relay/ops/metrics.js';
import type { ChangeEvent } from '../relay/route/event.js';
import { waitFor } from './harness/wait.js';

const SECRET = 'limits-test-secret-of-reasonable-length-1234';
const logger = pino({ level: 'silent' });
const sinks: WebsocketSink[] = [];
after(async () => { await Promise.all(sinks.map((sink) => sink.close())); });

async function startSink(overrides: Record<string, unknown>): Promise<WebsocketSink> {
  const sink = new WebsocketSink(websocketSinkSchema.parse({ type: 'websocket', port: 0, auth: 'none', ...overrides }), 0, logger);
  await sink.start();
  sinks.push(sink);
  return sink;
}

const token = (claims: Record<string, unknown> = { tables: ['*'] }) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
const refused = (sink: WebsocketSink, reason: string) => sink.clientStats().refusedByReason?.get(reason) ?? 0;

let seq = 0;
function change(id: number, at = Date.now()): ChangeEvent {
  const eventId = `${(0x3000000 + seq).toString(16).toUpperCase().padStart(16, '0')}-${String(seq++).padStart(10, '0')}`;
  return { id: eventId, op: 'insert', schema: 'public', table: 'feed', key: { id }, new: { id, at }, old: null, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-12-05T10:00:00.000000Z' };
}

interface Raw { status: number; socket: Socket }

/** A raw upgrade request; resolves with the status (0 when closed without an answer), leaving a 101's socket open. */
function rawUpgrade(port: number, options: { path?: string; headers?: Record<string, string>; localAddress?: string } = {}): Promise<Raw> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    const extra = Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    let answer = '';
    let done = false;
    const finish = (status: number) => {
      if (done) return;
      done = true;
      resolve({ status, socket });
    };
    socket.on('connect', () => socket.write(`GET ${options.path ?? '/'} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (match) finish(Number(match[1]));
    });
    socket.on('error', () => finish(0));
    socket.on('close', () => finish(0));
  });
}

interface Client { ws: WebSocket; frames: any[]; closed: Promise<{ code: number; reason: string }> }

async function open(port: number, path = '/', headers: Record<string, string> = {}): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
  const frames: any[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('unexpected-response', (_q, response) => reject(new Error(`HTTP ${response.statusCode}`))); });
  return { ws, frames, closed };
}

describe('connection limits', () => {
  it('maxConnections: the next upgrade gets 503, and a slot frees when a connection closes', async () => {
    const sink = await startSink({ maxConnections: 3 });
    const held = await Promise.all([1, 2, 3].map(() => rawUpgrade(sink.port)));
    assert.deepEqual(held.map((raw) => raw.status), [101, 101, 101]);
    assert.equal((await rawUpgrade(sink.port)).status, 503);
    assert.equal(refused(sink, 'max_connections'), 1);
    held[0].socket.destroy();
    await waitFor(async () => (await rawUpgrade(sink.port).then((raw) => { raw.socket.destroy(); return raw.status; })) === 101, { what: 'a free slot' });
    held.forEach((raw) => raw.socket.destroy());
  });

  it('maxConnectionsPerIp: 429 per address; X-Forwarded-For counts only from a trusted proxy', async () => {
    const direct = await startSink({ maxConnectionsPerIp: 2 });
    const a = await Promise.all([1, 2].map(() => rawUpgrade(direct.port, { localAddress: '127.0.0.2' })));
    assert.equal((await rawUpgrade(direct.port, { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '10.9.9.9' } })).status, 429, 'the header of an untrusted peer is ignored');
    assert.equal((await rawUpgrade(direct.port, { localAddress: '127.0.0.3' })).status, 101, 'another address has its own allowance');
    assert.equal(refused(direct, 'max_connections_per_ip'), 1);

    const proxied = await startSink({ maxConnectionsPerIp: 2, trustedProxies: ['127.0.0.0/24'] });
    const via = (xff: string) => rawUpgrade(proxied.port, { localAddress: '127.0.0.4', headers: { 'x-forwarded-for': xff } });
    const b = [await via('10.0.0.1'), await via('6.6.6.6, 10.0.0.1')];
    assert.deepEqual(b.map((raw) => raw.status), [101, 101], 'the client is the nearest untrusted hop; what it prepends is ignored');
    assert.equal((await via('10.0.0.1')).status, 429);
    assert.equal((await via('10.0.0.2, 127.0.0.9')).status, 101, 'a chain of trusted proxies is walked back');
    for (const raw of [...a, ...b]) raw.socket.destroy();
  });

  it('allowedOrigins: a foreign Origin gets 403, a listed one and a non-browser client (no Origin) connect', async () => {
    const sink = await startSink({ allowedOrigins: ['https://app.example'] });
    assert.equal((await rawUpgrade(sink.port, { headers: { origin: 'https://evil.example' } })).status, 403);
    assert.equal((await rawUpgrade(sink.port, { headers: { origin: 'null' } })).status, 403);
    const allowed = await rawUpgrade(sink.port, { headers: { origin: 'https://APP.example' } });
    const cli = await rawUpgrade(sink.port);
    assert.deepEqual([allowed.status, cli.status], [101, 101]);
    assert.equal(refused(sink, 'origin'), 2);
    allowed.socket.destroy();
    cli.socket.destroy();
  });

  it('handshakeTimeoutSeconds: a request trickled byte by byte, or never sent, is closed in time', async () => {
    const sink = await startSink({ handshakeTimeoutSeconds: 1 });
    const started = Date.now();
    const closedAfter = (socket: Socket) => new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
    const silent = connect(sink.port, '127.0.0.1');
    silent.on('error', () => {});
    silent.resume(); // reads, so that the server's close is seen
    const slow = connect(sink.port, '127.0.0.1');
    slow.on('error', () => {});
    slow.resume();
    const request = 'GET / HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nx-padding: ' + 'a'.repeat(200);
    let sent = 0;
    const trickle = setInterval(() => { if (!slow.destroyed) slow.write(request[sent++ % request.length]); }, 50);
    const [silentMs, slowMs] = await Promise.all([closedAfter(silent), closedAfter(slow)]);
    clearInterval(trickle);
    assert.ok(slowMs < 3000, `the trickled request lived ${slowMs} ms`);
    assert.ok(silentMs < 3000, `the silent connection lived ${silentMs} ms`);
    assert.ok(refused(sink, 'handshake_timeout') >= 1);
  });
});

describe('per-connection limits', () => {
  it('maxFrameBytes: a larger frame closes the connection with 1009', async () => {
    const sink = await startSink({ maxFrameBytes: 1000 });
    const client = await open(sink.port);
    client.ws.send(JSON.stringify({ type: 'subscribe', id: 'x', table: 'public.feed', filter: 'a=eq.' + 'x'.repeat(2000) }));
    assert.equal((await client.closed).code, 1009);
    assert.equal(refused(sink, 'frame_too_large'), 1);
  });

  it('maxClientFramesPerSecond: a flooding client is closed with 1008, a steady one stays', async () => {
    const sink = await startSink({ maxClientFramesPerSecond: 20 });
    const [flood, steady] = await Promise.all([open(sink.port), open(sink.port)]);
    for (let i = 0; i < 200; i++) flood.ws.send(JSON.stringify({ type: 'unsubscribe', id: `n${i}` }));
    const steadyTimer = setInterval(() => steady.ws.send(JSON.stringify({ type: 'unsubscribe', id: 'n' })), 100);
    assert.equal((await flood.closed).code, 1008);
    await waitFor(() => steady.frames.length >= 15, { what: '1.5 s of steady frames answered' });
    clearInterval(steadyTimer);
    assert.equal(steady.ws.readyState, WebSocket.OPEN);
    assert.ok(flood.frames.length <= 40, `the flood got ${flood.frames.length} answers before the close`);
    assert.equal(refused(sink, 'frame_rate'), 1);
    steady.ws.close();
  });

  it('maxSubscriptionsPerConnection: the next subscription or Realtime channel is refused, the connection stays', async () => {
    const sink = await startSink({ maxSubscriptionsPerConnection: 3, supabase: true });
    const client = await open(sink.port);
    for (const id of ['a', 'b', 'c', 'd']) client.ws.send(JSON.stringify({ type: 'subscribe', id, table: 'public.feed' }));
    await waitFor(() => client.frames.some((frame) => frame.id === 'd'), { what: 'the answer to d' });
    assert.deepEqual(client.frames.map((frame) => `${frame.type}:${frame.code ?? frame.id}`), ['subscribed:a', 'subscribed:b', 'subscribed:c', 'error:too_many_subscriptions']);
    client.ws.close();

    const realtime = await open(sink.port, '/realtime/v1/websocket?vsn=1.0.0&apikey=x');
    for (const n of [1, 2, 3, 4]) {
      realtime.ws.send(JSON.stringify({ topic: `realtime:t${n}`, event: 'phx_join', payload: { config: { postgres_changes: [{ event: '*', schema: 'public', table: 'feed' }] } }, ref: String(n), join_ref: String(n) }));
    }
    await waitFor(() => realtime.frames.some((frame) => frame.ref === '4'), { what: 'the reply to the fourth join' });
    const statuses = realtime.frames.filter((frame) => frame.event === 'phx_reply').map((frame) => frame.payload.status);
    assert.deepEqual(statuses, ['ok', 'ok', 'ok', 'error']);
    assert.equal(refused(sink, 'too_many_subscriptions'), 2);
    realtime.ws.close();
  });

  it('refusals appear in /metrics by reason', async () => {
    const sink = await startSink({ maxConnections: 1 });
    const held = await rawUpgrade(sink.port);
    await rawUpgrade(sink.port);
    const metrics = new Metrics();
    metrics.observeClients(sink.name, sink.clientStats());
    assert.match(await metrics.registry.metrics(), /walrelay_websocket_refused_total\{sink="websocket#0",reason="max_connections"\} 1/);
    held.socket.destroy();
  });
});

describe('a legitimate client under attack', () => {
  it('keeps receiving every change within 1 s while thousands of hostile connections are refused', async (t) => {
    const sink = await startSink({ auth: { jwtSecret: SECRET }, maxConnections: 400, maxConnectionsPerIp: 100, allowedOrigins: ['https://app.example'], handshakeTimeoutSeconds: 2 });
    const legit = await open(sink.port, `/?token=${await token()}`, { origin: 'https://app.example' });
    legit.ws.send(JSON.stringify({ type: 'subscribe', id: 's', table: 'public.feed' }));
    await waitFor(() => legit.frames.some((frame) => frame.type === 'subscribed'), { what: 'subscribed' });
    const latencies: number[] = [];
    legit.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'change') latencies.push(Date.now() - frame.event.new.at);
    });
    let written = 0;
    const writer = setInterval(() => { void sink.write([change(written++)]); }, 50);

    const jwt = await token();
    const held: Socket[] = [];
    const statuses = new Map<number, number>();
    const attack = async (index: number): Promise<void> => {
      const kind = index % 4;
      // One address over its allowance; foreign origins; no or forged tokens; and many addresses filling maxConnections.
      const options = kind === 0 ? { localAddress: '127.0.0.2', path: `/?token=${jwt}` }
        : kind === 1 ? { localAddress: `127.0.1.${1 + (index % 200)}`, headers: { origin: 'https://evil.example' } }
        : kind === 2 ? { localAddress: `127.0.2.${1 + (index % 200)}`, path: index % 8 === 2 ? '/?token=forged.token.here' : '/' }
        : { localAddress: `127.0.3.${1 + (index % 200)}`, path: `/?token=${jwt}` };
      const raw = await rawUpgrade(sink.port, options);
      statuses.set(raw.status, (statuses.get(raw.status) ?? 0) + 1);
      if (raw.status === 101) held.push(raw.socket); // accepted hostile clients stay connected and never read
      else raw.socket.destroy();
    };
    const started = Date.now();
    const total = 3000;
    for (let i = 0; i < total; i += 150) await Promise.all(Array.from({ length: 150 }, (_, j) => attack(i + j)));
    const attackMs = Date.now() - started;
    clearInterval(writer);
    await waitFor(() => latencies.length === written, { what: `all ${written} changes at the legitimate client` });

    const refusedTotal = [...(sink.clientStats().refusedByReason ?? new Map()).values()].reduce((sum, n) => sum + n, 0);
    assert.ok(refusedTotal >= 2500, `${refusedTotal} refused of ${total}: ${JSON.stringify([...statuses])}`);
    assert.ok((statuses.get(101) ?? 0) <= 400, `${statuses.get(101)} hostile connections accepted`);
    for (const reason of ['max_connections', 'max_connections_per_ip', 'origin', 'unauthorized']) assert.ok(refused(sink, reason) > 0, `nothing refused for ${reason}`);
    assert.ok(written >= 10, `${written} changes written during ${attackMs} ms of attack`);
    const worst = Math.max(...latencies);
    t.diagnostic(`${total} hostile upgrades in ${attackMs} ms: ${JSON.stringify(Object.fromEntries(statuses))}; ${written} changes, worst latency ${worst} ms`);
    assert.ok(worst < 1000, `worst commit→client latency ${worst} ms during the attack`);
    assert.equal(legit.ws.readyState, WebSocket.OPEN);
    held.forEach((socket) => socket.destroy());
    legit.ws.close();
  });
});
