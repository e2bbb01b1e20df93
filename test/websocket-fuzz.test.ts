// Issue 24 item 7: malformed requests sent over raw TCP to a real walrelay
// process (walrelay's protocol, Supabase Realtime and the static files on
// one port) must be refused one by one, never take the process down, and
// never stop a legitimate client from receiving changes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startRealtimeRelay, mintKey, type RealtimeRelay } from './harness/realtime.js';
import { waitFor } from './harness/wait.js';

const UPGRADE = 'connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

/** A small deterministic generator, so that a failure reproduces. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Request targets that broke URL parsing or percent-decoding, plus generated ones made of the characters that do. */
function targets(): string[] {
  const fixed = [
    'http://[', 'http://[/realtime/v1/websocket', '//[', 'http://[::1', 'http://%', '/%', '/%E0%A4%A', '/%ff', '/..%2f..%2fetc/passwd',
    '/realtime/v1/websocket?vsn=%', '/realtime/v1/websocket?apikey=%ZZ&vsn=1.0.0', '/realtime/v1/websocket?walrelay_client=%00',
    '/?token=%', '/' + 'a'.repeat(20_000), '*', 'http://a:b@[x]/', '/\u0000', '/index.html%00', '/%2e%2e/%2e%2e/',
  ];
  const next = random(24);
  const alphabet = ['%', '[', ']', '@', ':', '/', '?', '#', '\\', '%G', '%0', 'http://', '/websocket', '/realtime/v1', '..', 'é', '\t'];
  for (let i = 0; i < 60; i++) {
    let target = next() < 0.5 ? '/' : '';
    const parts = 1 + Math.floor(next() * 6);
    for (let j = 0; j < parts; j++) target += alphabet[Math.floor(next() * alphabet.length)];
    fixed.push(target);
  }
  return fixed;
}

/** Whole requests: each target as a plain GET and as an upgrade, then broken request lines and headers. */
function requests(): string[] {
  const out: string[] = [];
  for (const target of targets()) {
    out.push(`GET ${target} HTTP/1.1\r\nhost: x\r\n\r\n`);
    out.push(`GET ${target} HTTP/1.1\r\nhost: x\r\n${UPGRADE}\r\n`);
  }
  out.push(
    'GET / HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 99\r\nsec-websocket-key: x\r\n\r\n',
    'GET / HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n',
    `GET /realtime/v1/websocket?vsn=2.0.0 HTTP/1.1\r\nhost: x\r\n${UPGRADE}x-api-key: not.a.jwt\r\n\r\n`,
    `GET / HTTP/1.1\r\nhost: x\r\n${UPGRADE}authorization: Bearer \u0000\u0001\r\n\r\n`,
    `GET / HTTP/1.1\r\nhost: x\r\n${UPGRADE}origin: http://[\r\n\r\n`,
    `GET / HTTP/1.1\r\nhost: x\r\n${UPGRADE}x-forwarded-for: [, , ::::, 999.1.1.1\r\n\r\n`,
    `GET / HTTP/1.1\r\nbad header line\r\n${UPGRADE}\r\n`,
    `GET / HTTP/1.1\r\nhost: x\r\nx-big: ${'h'.repeat(20_000)}\r\n${UPGRADE}\r\n`,
    'GARBAGE\r\n\r\n', '\u0016\u0003\u0001\u0002\u0000', 'GET / HTTP/9.9\r\n\r\n', 'GET\r\n\r\n', ' \r\n\r\n',
    `POST /realtime/v1/websocket HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n${UPGRADE}\r\n`,
    `GET / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n${UPGRADE}\r\nzz\r\n`,
  );
  return out;
}

/** Sends `request`, reads until the server closes (or 2 s pass), and returns the status line. */
function send(port: number, request: string, reset = false): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    const timer = setTimeout(() => socket.destroy(), 2000);
    socket.on('connect', () => {
      socket.write(request);
      if (reset) socket.resetAndDestroy();
    });
    socket.on('data', (chunk) => { answer += chunk.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer.split('\r\n')[0]);
    });
  });
}

describe('malformed requests against a running walrelay', () => {
  let relay: RealtimeRelay;

  before(async () => {
    const web = mkdtempSync(join(tmpdir(), 'walrelay-static-'));
    writeFileSync(join(web, 'index.html'), '<p>demo</p>');
    relay = await startRealtimeRelay('pg15', { staticDir: web });
  });
  after(async () => { await relay.stop(); });

  it('refuses each malformed request, stays up and keeps delivering to a legitimate client', async () => {
    const table = await relay.newTable();
    const key = await mintKey({ sub: 'legit', tables: ['public.*'] });
    const legit = new WebSocket(`ws://127.0.0.1:${relay.port}/?token=${key}`);
    const received: number[] = [];
    legit.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'change') received.push(frame.event.new.id);
    });
    await new Promise((resolve, reject) => { legit.once('open', resolve); legit.once('error', reject); });
    legit.send(JSON.stringify({ type: 'subscribe', id: 's', table: `public.${table}` }));
    await new Promise((resolve) => legit.once('message', resolve));

    let exited = false;
    void relay.relay.exited.then(() => { exited = true; });
    const all = requests();
    const statuses = new Map<string, number>();
    for (let i = 0; i < all.length; i += 8) {
      const answers = await Promise.all(all.slice(i, i + 8).map((request, j) => send(relay.port, request, (i + j) % 11 === 0)));
      for (const status of answers) statuses.set(status || '(closed)', (statuses.get(status || '(closed)') ?? 0) + 1);
      assert.equal(exited, false, `walrelay exited after request ${i}..${i + 7}: ${relay.relay.logs().slice(-2000)}`);
      await relay.pg.query(`INSERT INTO ${table} (id) VALUES (${i})`);
    }
    assert.ok(!statuses.has('HTTP/1.1 101 Switching Protocols'), `no malformed request was upgraded: ${JSON.stringify([...statuses])}`);
    await waitFor(() => received.length === Math.ceil(all.length / 8), { what: 'every change at the legitimate client', timeoutMs: 10_000 });
    assert.equal(exited, false);
    assert.equal(legit.readyState, WebSocket.OPEN);
    legit.close();
  });

  it('survives malformed frames on both protocols after the upgrade', async () => {
    const table = await relay.newTable();
    const key = await mintKey({ sub: 'fuzz', tables: ['public.*'] });
    const frames = [
      '', '{', 'null', '[]', '[1,2,3,4,5]', '"x"', '{"type":null}', '{"type":"subscribe","id":{},"table":[]}', '{"type":"subscribe","id":"a","table":"*","filter":"=."}',
      '{"type":"auth","token":"a.b.c"}', '{"topic":"realtime:x","event":"phx_join","payload":null,"ref":"1"}',
      '{"topic":"realtime:x","event":"phx_join","payload":{"config":{"postgres_changes":[null,{"event":"*","schema":{},"table":1,"filter":"id=in.("}]}},"ref":"2"}',
      '["1","2","realtime:y","phx_join",{"config":{"postgres_changes":"all"}}]', '[null,null,"realtime:y","access_token",{"access_token":"x.y.z"}]',
      '{"topic":"realtime:x","event":"access_token","payload":{"access_token":{}},"ref":"3"}', '{"__proto__":{"polluted":1},"topic":"phoenix","event":"heartbeat"}',
      JSON.stringify({ topic: 'realtime:z', event: 'phx_join', payload: { config: { postgres_changes: Array.from({ length: 500 }, () => ({ event: '*', schema: 'public', table: table })) } }, ref: '9' }),
    ];
    const paths = [`/?token=${key}`, `/realtime/v1/websocket?vsn=1.0.0&apikey=${key}`, `/realtime/v1/websocket?vsn=2.0.0&apikey=${key}`];
    const sockets = await Promise.all(paths.map((path) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${relay.port}${path}`);
      ws.on('error', () => {});
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', () => reject(new Error(`refused ${path}`)));
    })));
    for (const frame of frames) {
      for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
      for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(Buffer.from(frame), { binary: true });
    }
    const legit = new WebSocket(`ws://127.0.0.1:${relay.port}/?token=${key}`);
    const received: number[] = [];
    legit.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'change') received.push(frame.event.new.id);
    });
    await new Promise((resolve, reject) => { legit.once('open', resolve); legit.once('error', reject); });
    legit.send(JSON.stringify({ type: 'subscribe', id: 's', table: `public.${table}` }));
    await new Promise((resolve) => legit.once('message', resolve));
    await relay.pg.query(`INSERT INTO ${table} (id) VALUES (1)`);
    await waitFor(() => received.length === 1, { what: 'the change at the legitimate client' });
    assert.equal(relay.relay.child.exitCode, null, 'walrelay is still running');
    for (const ws of [...sockets, legit]) ws.close();
  });
});
