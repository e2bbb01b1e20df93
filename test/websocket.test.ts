// The websocket sink with real ws clients: auth, subscriptions, filters,
// row filters, malformed frames, slow clients, resume, token expiry,
// conflation, a 1,000-client fan-out, ES256 over TLS and RS256 from a JWKS URL.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SignJWT, generateKeyPair, exportSPKI, exportJWK } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { WebsocketSink } from '../sinks/websocket/index.js';
import { websocketSinkSchema } from '../config/schema.js';
import type { ChangeEvent } from '../relay/route/event.js';
import { waitFor } from './harness/wait.js';

const SECRET = 'test-secret-of-reasonable-length-1234567890';
const logger = pino({ level: 'silent' });
let seq = 0;

function event(table: string, row: Record<string, unknown>, op: ChangeEvent['op'] = 'insert'): ChangeEvent {
  const id = `${(0x1000000 + seq).toString(16).toUpperCase().padStart(16, '0')}-${String(seq++).padStart(10, '0')}`;
  const [schema, name] = table.split('.');
  return { id, op, schema, table: name, key: { id: row.id }, new: op === 'delete' ? null : row, old: op === 'delete' ? row : null, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-11-22T10:00:00.000000Z' };
}

async function token(claims: Record<string, unknown>, expiresIn = '1h'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expiresIn).sign(new TextEncoder().encode(SECRET));
}

interface TestClient {
  ws: WebSocket;
  frames: any[];
  send(frame: unknown): void;
  next(predicate: (frame: any) => boolean, what: string): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
}

function open(port: number, query = '', headers: Record<string, string> = {}): Promise<TestClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/${query}`, { headers });
    const frames: any[] = [];
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.on('close', (code, reason) => done({ code, reason: reason.toString() })));
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    ws.on('open', () => resolve({
      ws, frames, closed,
      send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
      next: async (predicate, what) => {
        await waitFor(() => frames.some(predicate), { what, timeoutMs: 10_000 });
        return frames.find(predicate);
      },
    }));
    ws.on('unexpected-response', (_request, response) => reject(Object.assign(new Error(`HTTP ${response.statusCode}`), { status: response.statusCode })));
    ws.on('error', reject);
  });
}

async function startSink(overrides: Record<string, unknown>): Promise<WebsocketSink> {
  const sink = new WebsocketSink(websocketSinkSchema.parse({ type: 'websocket', port: 0, ...overrides }), 0, logger);
  await sink.start();
  return sink;
}

describe('websocket sink with JWT auth', () => {
  let sink: WebsocketSink;

  before(async () => { sink = await startSink({ auth: { jwtSecret: SECRET }, maxClientQueue: 50, ringSize: 5 }); });
  after(async () => { await sink.close(); });

  it('refuses the upgrade with 401 without a token or with a wrong one', async () => {
    await assert.rejects(open(sink.port), (error: any) => error.status === 401);
    const forged = await new SignJWT({ tables: ['*'] }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-another-secret-12345'));
    await assert.rejects(open(sink.port, `?token=${forged}`), (error: any) => error.status === 401);
    const client = await open(sink.port, '', { authorization: `Bearer ${await token({ tables: ['public.*'] })}` });
    client.ws.close();
  });

  it('answers a subscription to a table the token does not allow with forbidden', async () => {
    const client = await open(sink.port, `?token=${await token({ tables: ['public.orders'] })}`);
    client.send({ type: 'subscribe', id: 's1', table: 'secret.salaries' });
    const error = await client.next((frame) => frame.type === 'error', 'an error frame');
    assert.deepEqual([error.id, error.code], ['s1', 'forbidden']);
    client.send({ type: 'subscribe', id: 's2', table: 'public.orders' });
    await client.next((frame) => frame.type === 'subscribed' && frame.id === 's2', 'subscribed s2');
    client.ws.close();
  });

  it('applies every filter operator and the ops list', async () => {
    const client = await open(sink.port, `?token=${await token({ tables: ['*'] })}`);
    const filters: Record<string, string> = {
      eq: 'status=eq.paid', neq: 'status=neq.paid', lt: 'amount=lt.10', lte: 'amount=lte.10', gt: 'amount=gt.10', gte: 'amount=gte.10', in: 'id=in.(1,3)', big: 'big=gt.9007199254740993',
    };
    for (const [id, filter] of Object.entries(filters)) client.send({ type: 'subscribe', id, table: 'public.orders', filter });
    client.send({ type: 'subscribe', id: 'deletes', table: 'public.*', ops: ['delete'] });
    await client.next((frame) => frame.type === 'subscribed' && frame.id === 'deletes', 'all subscriptions');
    await sink.write([
      event('public.orders', { id: 1, status: 'paid', amount: 5, big: '9007199254740993' }),
      event('public.orders', { id: 2, status: 'new', amount: 10, big: '9007199254740994' }),
      event('public.orders', { id: 3, status: 'paid', amount: 20, big: '1' }),
      event('public.orders', { id: 3, status: 'paid', amount: 20, big: '1' }, 'delete'),
    ]);
    await client.next((frame) => frame.type === 'change' && frame.subscription === 'deletes', 'the delete');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const received = (id: string) => client.frames.filter((frame) => frame.type === 'change' && frame.subscription === id).map((frame) => `${frame.event.op}:${frame.event.new?.id ?? frame.event.old.id}`);
    assert.deepEqual(received('eq'), ['insert:1', 'insert:3', 'delete:3']);
    assert.deepEqual(received('neq'), ['insert:2']);
    assert.deepEqual(received('lt'), ['insert:1']);
    assert.deepEqual(received('lte'), ['insert:1', 'insert:2']);
    assert.deepEqual(received('gt'), ['insert:3', 'delete:3']);
    assert.deepEqual(received('gte'), ['insert:2', 'insert:3', 'delete:3']);
    assert.deepEqual(received('in'), ['insert:1', 'insert:3', 'delete:3']);
    assert.deepEqual(received('big'), ['insert:2'], 'bigint strings compare exactly');
    assert.deepEqual(received('deletes'), ['delete:3']);
    client.ws.close();
  });

  it('enforces the rowFilter claim on every event whatever the subscription asks', async () => {
    const client = await open(sink.port, `?token=${await token({ tables: ['public.*'], rowFilter: { 'public.orders': 'tenant=eq.7' } })}`);
    client.send({ type: 'subscribe', id: 'all', table: 'public.*' });
    await client.next((frame) => frame.type === 'subscribed', 'subscribed');
    await sink.write([event('public.orders', { id: 10, tenant: 7 }), event('public.orders', { id: 11, tenant: 8 }), event('public.items', { id: 12, tenant: 8 }), event('secret.x', { id: 13 })]);
    await client.next((frame) => frame.type === 'change' && frame.event.new.id === 12, 'the items event');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(client.frames.filter((frame) => frame.type === 'change').map((frame) => frame.event.new.id), [10, 12]);
    client.ws.close();
  });

  it('answers malformed frames with errors and stays usable (oversized ones: websocket-limits.test.ts)', async () => {
    const client = await open(sink.port, `?token=${await token({ tables: ['*'] })}`);
    client.send('{not json');
    const malformed = await client.next((frame) => frame.type === 'error', 'an error for malformed JSON');
    assert.equal(malformed.code, 'bad_request');
    client.send({ type: 'subscribe', id: 'x', table: 'public.orders', filter: 'status=like.paid' });
    await client.next((frame) => frame.type === 'error' && frame.id === 'x', 'an error for a bad filter');
    client.send({ type: 'frobnicate' });
    await client.next((frame) => frame.type === 'error' && /unknown frame type/.test(frame.message), 'an error for an unknown type');
    client.send({ type: 'subscribe', id: 'ok', table: 'public.orders' });
    await client.next((frame) => frame.type === 'subscribed' && frame.id === 'ok', 'subscribed after the errors');
    await sink.write([event('public.orders', { id: 99 })]);
    await client.next((frame) => frame.type === 'change', 'a change after the errors');
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    client.ws.close();
  });

  it('disconnects a client that stopped reading while a healthy one keeps receiving', async () => {
    const jwt = await token({ tables: ['*'] });
    const [stalled, healthy] = await Promise.all([open(sink.port, `?token=${jwt}`), open(sink.port, `?token=${jwt}`)]);
    for (const client of [stalled, healthy]) {
      client.send({ type: 'subscribe', id: 's', table: 'public.blobs' });
      await client.next((frame) => frame.type === 'subscribed', 'subscribed');
    }
    (stalled.ws as any)._socket.pause();
    const blob = 'b'.repeat(20_000);
    for (let i = 0; i < 20; i++) {
      await sink.write(Array.from({ length: 20 }, (_, j) => event('public.blobs', { id: i * 20 + j, blob })));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(() => healthy.frames.filter((frame) => frame.type === 'change').length === 400, { what: 'the healthy client to get all 400 changes', timeoutMs: 20_000 });
    (stalled.ws as any)._socket.resume();
    const { code } = await stalled.closed;
    assert.ok(code === 1013 || code === 1006, `closed with ${code}`);
    assert.equal(healthy.ws.readyState, WebSocket.OPEN);
    healthy.ws.close();
  });

  it('resumes from "since" without a gap or duplicate, or reports resume_gap', async () => {
    const jwt = await token({ tables: ['*'] });
    const first = await open(sink.port, `?token=${jwt}`);
    first.send({ type: 'subscribe', id: 'r', table: 'public.resume' });
    await first.next((frame) => frame.type === 'subscribed', 'subscribed');
    const events = [1, 2, 3].map((id) => event('public.resume', { id }));
    await sink.write(events.slice(0, 1));
    await first.next((frame) => frame.type === 'change', 'the first change');
    first.ws.close();
    await sink.write(events.slice(1));
    const again = await open(sink.port, `?token=${jwt}`);
    again.send({ type: 'subscribe', id: 'r', table: 'public.resume', since: events[0].id });
    await again.next((frame) => frame.type === 'change' && frame.event.new.id === 3, 'the replayed changes');
    assert.deepEqual(again.frames.filter((frame) => frame.type === 'change').map((frame) => frame.event.new.id), [2, 3]);
    await sink.write(Array.from({ length: 10 }, (_, i) => event('public.other', { id: i })));
    again.send({ type: 'subscribe', id: 'late', table: 'public.resume', since: events[0].id });
    const gap = await again.next((frame) => frame.type === 'error' && frame.id === 'late', 'a resume_gap error');
    assert.equal(gap.code, 'resume_gap');
    again.ws.close();
  });

  it('closes a connection whose token expires, unless a fresh token arrived in time', async () => {
    const expiring = await open(sink.port, `?token=${await token({ tables: ['*'] }, '2s')}`);
    const refreshed = await open(sink.port, `?token=${await token({ tables: ['*'] }, '2s')}`);
    refreshed.send({ type: 'auth', token: await token({ tables: ['*'] }, '1h') });
    await refreshed.next((frame) => frame.type === 'authenticated', 'the refresh to be accepted');
    const { code, reason } = await expiring.closed;
    assert.equal(code, 4001);
    assert.match(reason, /token expired/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(refreshed.ws.readyState, WebSocket.OPEN);
    refreshed.ws.close();
  });
});

describe('websocket sink without auth', () => {
  let sink: WebsocketSink;

  before(async () => { sink = await startSink({ auth: 'none', maxClientQueue: 1000, maxConnectionsPerIp: 2000 }); }); // 1,000 clients from one address
  after(async () => { await sink.close(); });

  it('conflates a lagging subscription to the newest change per key instead of disconnecting', async () => {
    const client = await open(sink.port);
    client.send({ type: 'subscribe', id: 'c', table: 'public.prices', conflate: true });
    await client.next((frame) => frame.type === 'subscribed', 'subscribed');
    (client.ws as any)._socket.pause();
    const padding = 'p'.repeat(5_000);
    // 5 keys, 600 updates each: far more than maxClientQueue if nothing were conflated.
    for (let round = 0; round < 600; round++) {
      await sink.write([0, 1, 2, 3, 4].map((id) => event('public.prices', { id, price: round, padding }, 'update')));
    }
    (client.ws as any)._socket.resume();
    await waitFor(() => client.frames.filter((frame) => frame.type === 'change' && frame.event.new.price === 599).length === 5, { what: 'the newest price of every key', timeoutMs: 20_000 });
    const changes = client.frames.filter((frame) => frame.type === 'change');
    assert.ok(changes.length < 3000, `${changes.length} changes: nothing was conflated`);
    assert.equal(client.ws.readyState, WebSocket.OPEN);
    console.log(`# conflation: ${changes.length} of 3000 changes delivered to the lagging client`);
    client.ws.close();
  });

  it('fans one event out to 1,000 concurrent clients', async () => {
    const clients: TestClient[] = [];
    for (let i = 0; i < 1000; i += 100) {
      clients.push(...(await Promise.all(Array.from({ length: 100 }, () => open(sink.port)))));
    }
    await Promise.all(clients.map(async (client) => {
      client.send({ type: 'subscribe', id: 'f', table: 'public.fanout' });
      await client.next((frame) => frame.type === 'subscribed', 'subscribed');
    }));
    const started = process.hrtime.bigint();
    const arrivals: number[] = [];
    for (const client of clients) client.ws.on('message', () => arrivals.push(Number(process.hrtime.bigint() - started) / 1e6));
    await sink.write([event('public.fanout', { id: 1 })]);
    await waitFor(() => clients.every((client) => client.frames.some((frame) => frame.type === 'change')), { what: 'every client to receive the event', timeoutMs: 30_000 });
    arrivals.sort((a, b) => a - b);
    console.log(`# fan-out to 1,000 clients on loopback: p50 ${arrivals[499].toFixed(1)} ms, last ${arrivals[arrivals.length - 1].toFixed(1)} ms`);
    clients.forEach((client) => client.ws.terminate());
  });
});

describe('websocket sink with an ES256 public key over TLS', () => {
  let sink: WebsocketSink;
  let privateKey: CryptoKey;
  let ca: Buffer;

  before(async () => {
    const keys = await generateKeyPair('ES256');
    privateKey = keys.privateKey as CryptoKey;
    const dir = mkdtempSync(join(tmpdir(), 'walrelay-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    ca = readFileSync(join(dir, 'cert.pem'));
    sink = await startSink({ auth: { publicKey: await exportSPKI(keys.publicKey), algorithm: 'ES256' }, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } });
  });
  after(async () => { await sink.close(); });

  it('accepts an ES256 token over wss:// and refuses an invalid one', async () => {
    const good = await new SignJWT({ tables: ['public.*'] }).setProtectedHeader({ alg: 'ES256' }).setExpirationTime('1h').sign(privateKey);
    const client = await new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${sink.port}/?token=${good}`, { ca });
      ws.on('open', () => resolve(ws));
      ws.on('error', reject);
    });
    const frames: any[] = [];
    client.on('message', (data) => frames.push(JSON.parse(data.toString())));
    client.send(JSON.stringify({ type: 'subscribe', id: 't', table: 'public.orders' }));
    await waitFor(() => frames.some((frame) => frame.type === 'subscribed'), { what: 'subscribed over TLS' });
    await sink.write([event('public.orders', { id: 1 })]);
    await waitFor(() => frames.some((frame) => frame.type === 'change'), { what: 'a change over TLS' });
    client.close();
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${sink.port}/?token=${'x'}`, { ca });
      ws.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    assert.equal(status, 401);
  });
});

describe('websocket sink with RS256 keys from a JWKS URL', () => {
  let sink: WebsocketSink;
  let jwks: Server;
  let signingKey: CryptoKey;
  let requests = 0;

  before(async () => {
    const keys = await generateKeyPair('RS256');
    signingKey = keys.privateKey as CryptoKey;
    const publicJwk = { ...(await exportJWK(keys.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_request, response) => {
      requests++;
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: [publicJwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const { port } = jwks.address() as AddressInfo;
    sink = await startSink({ auth: { jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json` } });
  });
  after(async () => {
    await sink.close();
    await new Promise((resolve) => jwks.close(resolve));
  });

  it('accepts a token signed by a key in the set and refuses one signed by another key', async () => {
    const good = await new SignJWT({ tables: ['public.orders'] }).setProtectedHeader({ alg: 'RS256', kid: 'key-1' }).setExpirationTime('1h').sign(signingKey);
    const client = await open(sink.port, `?token=${good}`);
    client.send({ type: 'subscribe', id: 'j', table: 'public.orders' });
    await client.next((frame) => frame.type === 'subscribed', 'subscribed with a JWKS-verified token');
    await sink.write([event('public.orders', { id: 7 })]);
    const change = await client.next((frame) => frame.type === 'change', 'a change');
    assert.equal(change.event.new.id, 7);
    client.ws.close();
    assert.ok(requests >= 1, 'the key set was fetched from the URL');

    const stranger = (await generateKeyPair('RS256')).privateKey;
    const forged = await new SignJWT({ tables: ['public.*'] }).setProtectedHeader({ alg: 'RS256', kid: 'key-1' }).setExpirationTime('1h').sign(stranger);
    await assert.rejects(open(sink.port, `?token=${forged}`), (error: { status?: number }) => error.status === 401);
  });
});
