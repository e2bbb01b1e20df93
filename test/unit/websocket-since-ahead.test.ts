// `since` naming an event this process has not received yet: on `walrelay
// edge`, a client that moves from an edge to another one that is a few
// events behind in the feed (docs/edges.md). It is subscribed at once and
// gets the events after that id as they arrive, not resume_gap. Real ws
// clients against the real sink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import pino from 'pino';
import { WebsocketSink } from '../../sinks/websocket/index.js';
import { websocketSinkSchema } from '../../config/schema.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import { waitFor } from '../harness/wait.js';

const events = Array.from({ length: 10 }, (_, n): ChangeEvent => ({
  id: `${(0x1000000 + n).toString(16).toUpperCase().padStart(16, '0')}-${String(n).padStart(10, '0')}`,
  op: 'insert', schema: 'public', table: 'items', key: { id: n }, new: { id: n }, old: null, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-11-22T10:00:00.000000Z',
}));

test('since an id ahead of the ring: subscribed at once, then only the events after it; an id older than the ring is still a gap', async () => {
  const sink = new WebsocketSink(websocketSinkSchema.parse({ type: 'websocket', port: 0, auth: 'none', ringSize: 3 }), 0, pino({ level: 'silent' }));
  await sink.start();
  const ws = new WebSocket(`ws://127.0.0.1:${sink.port}/`);
  try {
    const received: any[] = [];
    ws.on('message', (data) => received.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    // An empty ring (a process that just started) cannot tell a future id from an old one: a gap.
    ws.send(JSON.stringify({ type: 'subscribe', id: 'empty', table: 'public.items', since: events[6].id }));
    await waitFor(() => received.length >= 1, { what: 'the answer on an empty ring' });
    assert.equal(received.shift().code, 'resume_gap');
    await sink.write(events.slice(0, 5));
    ws.send(JSON.stringify({ type: 'subscribe', id: 'ahead', table: 'public.items', since: events[6].id }));
    ws.send(JSON.stringify({ type: 'subscribe', id: 'old', table: 'public.items', since: events[0].id }));
    await waitFor(() => received.length >= 2, { what: 'two answers' });
    assert.deepEqual(received.map((frame) => `${frame.type}:${frame.id}:${frame.code ?? ''}`), ['subscribed:ahead:', 'error:old:resume_gap']);
    await sink.write(events.slice(5));
    await waitFor(() => received.length >= 5, { what: 'three changes' });
    await new Promise((resolve) => setTimeout(resolve, 100)); // nothing more arrives
    assert.deepEqual(received.slice(2).map((frame) => frame.event.key.id), [7, 8, 9]);
    assert.equal(received.length, 5);
  } finally {
    ws.close();
    await sink.close();
  }
});
