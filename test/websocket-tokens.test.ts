// Token rules of the websocket sink (issue 20 part 2, issue 24 item 9):
// alg none and algorithm confusion refused, aud/iss checked when set, nbf
// with a small clock tolerance, exp and tables required unless configured
// otherwise, JWKS keys cached and refetched on an unknown kid at most once
// per cooldown (served by a local http server), messages and transaction
// events only for the tokens allowed them, and a Realtime walrelay_client
// name bound to the token's subject.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SignJWT, generateKeyPair, exportSPKI, exportJWK, type JWK } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { WebsocketSink } from '../sinks/websocket/index.js';
import { websocketSinkSchema } from '../config/schema.js';
import type { ChangeEvent } from '../relay/route/event.js';
import { waitFor } from './harness/wait.js';

const SECRET = 'token-test-secret-of-reasonable-length-12345';
const logger = pino({ level: 'silent' });
let seq = 0;

function nextId(): string {
  return `${(0x2000000 + seq).toString(16).toUpperCase().padStart(16, '0')}-${String(seq++).padStart(10, '0')}`;
}

function row(table: string, id: number): ChangeEvent {
  const [schema, name] = table.split('.');
  return { id: nextId(), op: 'insert', schema, table: name, key: { id }, new: { id }, old: null, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-12-05T10:00:00.000000Z' };
}

function message(prefix: string, content: string): ChangeEvent {
  return { id: nextId(), op: 'message', prefix, content, contentEncoding: 'utf8', transactional: true, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-12-05T10:00:00.000000Z' };
}

function special(op: 'gap' | 'begin'): ChangeEvent {
  return op === 'gap'
    ? { id: nextId(), op, slot: 's', fromLsn: '0/1', toLsn: '0/2', lsn: '0/2', commitLsn: null, xid: null, commitTime: null }
    : { id: nextId(), op, eventCount: null, tables: { 'secret.salaries': 3 }, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-12-05T10:00:00.000000Z' };
}

const hs = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' });
const secretKey = new TextEncoder().encode(SECRET);

async function startSink(overrides: Record<string, unknown>): Promise<WebsocketSink> {
  const sink = new WebsocketSink(websocketSinkSchema.parse({ type: 'websocket', port: 0, ...overrides }), 0, logger);
  await sink.start();
  return sink;
}

/** The HTTP status of an upgrade attempt (101 when it opened; the socket is closed again). */
function status(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('unexpected-response', (_request, response) => { response.resume(); resolve(response.statusCode ?? 0); });
    ws.on('error', (error) => { if (!/Unexpected server response/.test(error.message)) reject(error); });
  });
}

interface Client { ws: WebSocket; frames: any[]; closed: Promise<number> }

async function open(port: number, path: string): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  const frames: any[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { ws, frames, closed };
}

async function subscribed(client: Client, id: string, table: string): Promise<void> {
  client.ws.send(JSON.stringify({ type: 'subscribe', id, table }));
  await waitFor(() => client.frames.some((frame) => (frame.type === 'subscribed' || frame.type === 'error') && frame.id === id), { what: `subscription ${id}` });
  assert.ok(client.frames.some((frame) => frame.type === 'subscribed' && frame.id === id), JSON.stringify(client.frames));
}

describe('HS256 tokens: exp, nbf, aud, iss, tables, alg none', () => {
  let sink: WebsocketSink;
  before(async () => { sink = await startSink({ auth: { jwtSecret: SECRET, audience: 'walrelay-feed', issuer: 'https://auth.example' } }); });
  after(async () => { await sink.close(); });

  const good = () => hs({ tables: ['public.*'] }).setAudience('walrelay-feed').setIssuer('https://auth.example');

  it('accepts a token with every expected claim', async () => {
    assert.equal(await status(sink.port, `/?token=${await good().setExpirationTime('1h').sign(secretKey)}`), 101);
  });

  it('refuses a wrong or missing audience or issuer', async () => {
    const cases = [
      hs({ tables: ['public.*'] }).setAudience('another-app').setIssuer('https://auth.example'),
      hs({ tables: ['public.*'] }).setIssuer('https://auth.example'),
      hs({ tables: ['public.*'] }).setAudience('walrelay-feed').setIssuer('https://evil.example'),
      hs({ tables: ['public.*'] }).setAudience('walrelay-feed'),
    ];
    for (const token of cases) assert.equal(await status(sink.port, `/?token=${await token.setExpirationTime('1h').sign(secretKey)}`), 401);
  });

  it('refuses a token without exp, and honours nbf with a small tolerance', async () => {
    assert.equal(await status(sink.port, `/?token=${await good().sign(secretKey)}`), 401, 'no exp');
    const now = Math.floor(Date.now() / 1000);
    assert.equal(await status(sink.port, `/?token=${await good().setExpirationTime('1h').setNotBefore(now + 60).sign(secretKey)}`), 401, 'nbf a minute ahead');
    assert.equal(await status(sink.port, `/?token=${await good().setExpirationTime('1h').setNotBefore(now + 2).sign(secretKey)}`), 101, 'nbf 2 s ahead: within the clock tolerance');
    assert.equal(await status(sink.port, `/?token=${await good().setExpirationTime(now - 60).sign(secretKey)}`), 401, 'expired a minute ago');
  });

  it('refuses a token without a tables claim', async () => {
    const token = await hs({}).setAudience('walrelay-feed').setIssuer('https://auth.example').setExpirationTime('1h').sign(secretKey);
    assert.equal(await status(sink.port, `/?token=${token}`), 401);
  });

  it('refuses alg none', async () => {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const payload = { tables: ['*'], aud: 'walrelay-feed', iss: 'https://auth.example', exp: Math.floor(Date.now() / 1000) + 3600 };
    for (const alg of ['none', 'None', 'NONE']) {
      assert.equal(await status(sink.port, `/?token=${encode({ alg, typ: 'JWT' })}.${encode(payload)}.`), 401, alg);
    }
  });
});

describe('permissive token choices, when configured', () => {
  let sink: WebsocketSink;
  const warnings: string[] = [];
  before(async () => {
    const recording = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(JSON.parse(line).msg); } });
    sink = new WebsocketSink(websocketSinkSchema.parse({ type: 'websocket', port: 0, auth: { jwtSecret: SECRET, requireExp: false, requireTables: false } }), 0, recording);
    await sink.start();
  });
  after(async () => { await sink.close(); });

  it('warns at start, then accepts a token without exp or tables, which reads every table and every message', async () => {
    assert.ok(warnings.some((warning) => /requireExp is false/.test(warning)), JSON.stringify(warnings));
    assert.ok(warnings.some((warning) => /requireTables is false/.test(warning)), JSON.stringify(warnings));
    const client = await open(sink.port, `/?token=${await hs({}).sign(secretKey)}`);
    await subscribed(client, 'all', '*');
    await sink.write([row('secret.salaries', 1), message('billing.paid', 'x')]);
    await waitFor(() => client.frames.filter((frame) => frame.type === 'change').length === 2, { what: 'the row and the message' });
    client.ws.close();
  });
});

describe('algorithm confusion with a configured public key', () => {
  for (const algorithm of ['RS256', 'ES256'] as const) {
    it(`${algorithm}: an HS256 token signed with the public key as its secret is refused`, async () => {
      const keys = await generateKeyPair(algorithm);
      const pem = await exportSPKI(keys.publicKey);
      const sink = await startSink({ auth: { publicKey: pem, algorithm } });
      try {
        const claims = { tables: ['*'] };
        assert.equal(await status(sink.port, `/?token=${await new SignJWT(claims).setProtectedHeader({ alg: algorithm }).setExpirationTime('1h').sign(keys.privateKey)}`), 101);
        for (const secret of [pem, pem.trim(), Buffer.from(pem).toString('base64')]) {
          const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
          assert.equal(await status(sink.port, `/?token=${forged}`), 401);
        }
      } finally {
        await sink.close();
      }
    });
  }
});

describe('JWKS: cached, refetched on an unknown kid at most once per cooldown', () => {
  let jwks: Server;
  let served: JWK[] = [];
  let fetches = 0;
  let sink: WebsocketSink;
  const signers = new Map<string, CryptoKey | import('node:crypto').KeyObject>();

  async function addKey(kid: string): Promise<void> {
    const keys = await generateKeyPair('RS256');
    signers.set(kid, keys.privateKey);
    served = [...served, { ...(await exportJWK(keys.publicKey)), kid, alg: 'RS256', use: 'sig' }];
  }
  const sign = (kid: string, claims: Record<string, unknown> = { tables: ['*'] }) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).setExpirationTime('1h').sign(signers.get(kid)!);

  before(async () => {
    await addKey('k1');
    jwks = createServer((_request, response) => {
      fetches++;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    sink = await startSink({ auth: { jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`, jwksCooldownSeconds: 1 } });
  });
  after(async () => {
    await sink.close();
    await new Promise((resolve) => jwks.close(resolve));
  });

  it('fetches the set once for many tokens, refetches for a rotated key, and rate-limits unknown kids', async () => {
    for (let i = 0; i < 5; i++) assert.equal(await status(sink.port, `/?token=${await sign('k1')}`), 101);
    assert.equal(fetches, 1, 'one fetch serves every token of a known kid');

    // A flood of made-up kids within the cooldown costs at most one more fetch.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const stranger = await generateKeyPair('RS256');
    const made = await Promise.all(Array.from({ length: 30 }, (_, i) => new SignJWT({ tables: ['*'] }).setProtectedHeader({ alg: 'RS256', kid: `bogus-${i}` }).setExpirationTime('1h').sign(stranger.privateKey)));
    for (const token of made) assert.equal(await status(sink.port, `/?token=${token}`), 401);
    assert.ok(fetches <= 2, `${fetches} fetches for 30 unknown kids`);

    // The issuer rotates to k2: once the cooldown has passed, the first k2 token refetches and is accepted.
    await addKey('k2');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const before = fetches;
    assert.equal(await status(sink.port, `/?token=${await sign('k2')}`), 101);
    assert.equal(fetches, before + 1);
    assert.equal(await status(sink.port, `/?token=${await sign('k2')}`), 101);
    assert.equal(fetches, before + 1, 'cached after the refetch');
  });

  it('refuses an HS256 token whatever its secret (only RS256/ES256 come from a JWKS)', async () => {
    const jwk = served[0];
    for (const secret of [JSON.stringify(jwk), String(jwk.n), SECRET]) {
      const forged = await new SignJWT({ tables: ['*'] }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
      assert.equal(await status(sink.port, `/?token=${forged}`), 401);
    }
  });
});

describe('messages, gaps and transaction events follow the token', () => {
  let sink: WebsocketSink;
  before(async () => { sink = await startSink({ auth: { jwtSecret: SECRET } }); });
  after(async () => { await sink.close(); });

  const token = (claims: Record<string, unknown>) => hs(claims).setExpirationTime('1h').sign(secretKey);

  it('gives messages only to the prefixes a messages claim lists, gaps to every reader, transaction events to unrestricted readers', async () => {
    const restricted = await open(sink.port, `/?token=${await token({ tables: ['public.*'] })}`);
    const orders = await open(sink.port, `/?token=${await token({ tables: ['public.*'], messages: ['orders.*', 'audit'] })}`);
    const everything = await open(sink.port, `/?token=${await token({ tables: ['*'], messages: ['*'] })}`);
    const filtered = await open(sink.port, `/?token=${await token({ tables: ['*'], rowFilter: { 'public.orders': 'id=eq.1' } })}`);
    for (const client of [restricted, orders, everything, filtered]) await subscribed(client, 'all', '*');
    await sink.write([
      message('orders.created', 'o1'), message('billing.charged', 'b1'), message('audit', 'a1'), message('auditx', 'a2'),
      special('begin'), special('gap'), row('public.orders', 1), row('public.done', 2),
    ]);
    for (const client of [restricted, orders, everything, filtered]) {
      await waitFor(() => client.frames.some((frame) => frame.type === 'change' && frame.event.new?.id === 2), { what: 'the last row' });
    }
    const seen = (client: Client) => client.frames.filter((frame) => frame.type === 'change').map((frame) => frame.event.op === 'message' ? `message:${frame.event.prefix}` : frame.event.op === 'insert' ? `row:${frame.event.new.id}` : frame.event.op);
    assert.deepEqual(seen(restricted), ['gap', 'row:1', 'row:2'], 'tables restricted, no messages claim: no messages');
    assert.deepEqual(seen(orders), ['message:orders.created', 'message:audit', 'gap', 'row:1', 'row:2']);
    assert.deepEqual(seen(everything), ['message:orders.created', 'message:billing.charged', 'message:audit', 'message:auditx', 'begin', 'gap', 'row:1', 'row:2']);
    assert.deepEqual(seen(filtered), ['gap', 'row:1', 'row:2'], 'a row filter hides transaction events (they count filtered rows) and messages');
    for (const client of [restricted, orders, everything, filtered]) client.ws.close();
  });
});

describe('walrelay_client belongs to the token subject', () => {
  let sink: WebsocketSink;
  before(async () => { sink = await startSink({ auth: { jwtSecret: SECRET }, supabase: true }); });
  after(async () => { await sink.close(); });

  const key = (sub?: string) => hs(sub ? { sub, tables: ['public.*'] } : { tables: ['public.*'] }).setExpirationTime('1h').sign(secretKey);
  const path = async (sub: string | undefined, name: string) => `/realtime/v1/websocket?vsn=1.0.0&apikey=${await key(sub)}&walrelay_client=${name}`;

  it('another subject using the same name neither closes the owner nor takes its place; a token without sub cannot name a client', async () => {
    const owner = await open(sink.port, await path('alice', 'tab-1'));
    const intruder = await open(sink.port, await path('mallory', 'tab-1'));
    // The owner still answers: a heartbeat goes round after the intruder connected.
    owner.ws.send(JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '1' }));
    await waitFor(() => owner.frames.some((frame) => frame.ref === '1'), { what: 'the heartbeat reply' });
    assert.equal(owner.ws.readyState, WebSocket.OPEN);
    // The same subject reconnecting does replace its own stale connection.
    const again = await open(sink.port, await path('alice', 'tab-1'));
    assert.equal(await owner.closed, 4000);
    assert.equal(await status(sink.port, await path(undefined, 'tab-1')), 400);
    for (const client of [intruder, again]) client.ws.close();
  });
});
