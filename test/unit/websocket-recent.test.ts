// "recent": a client that subscribes late first gets the newest held events
// that its subscription and token allow, then live ones (the demo page shows
// recent changes at once). Real ws clients against the real sink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import pino from 'pino';
import { WebsocketSink } from '../../sinks/websocket/index.js';
import { websocketSinkSchema } from '../../config/schema.js';
import type { ChangeEvent } from '../../relay/route/event.js';
import { waitFor } from '../harness/wait.js';

let seq = 0;
function event(table: string, id: number): ChangeEvent {
  const [schema, name] = table.split('.');
  const eventId = `${(0x1000000 + seq).toString(16).toUpperCase().padStart(16, '0')}-${String(seq++).padStart(10, '0')}`;
  return { id: eventId, op: 'insert', schema, table: name, key: { id }, new: { id }, old: null, lsn: '0/1', commitLsn: '0/1', xid: 1, commitTime: '2026-11-22T10:00:00.000000Z' };
}

async function frames(port: number, subscribe: Record<string, unknown>, count: number): Promise<any[]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const received: any[] = [];
  ws.on('message', (data) => received.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'subscribe', id: 's', ...subscribe }));
  await waitFor(() => received.length >= count, { what: `${count} frames`, timeoutMs: 5000 });
  await new Promise((resolve) => setTimeout(resolve, 100)); // nothing more arrives
  ws.close();
  return received;
}

test('subscribe with recent: the newest matching held events, oldest first, then live ones', async () => {
  const sink = new WebsocketSink(websocketSinkSchema.parse({ type: 'websocket', port: 0, auth: 'none', ringSize: 100 }), 0, pino({ level: 'silent' }));
  await sink.start();
  try {
    const port = sink.port;
    await sink.write(Array.from({ length: 10 }, (_, i) => event(i % 2 ? 'public.orders' : 'public.items', i)));
    const recent = await frames(port, { table: 'public.orders', recent: 3 }, 4);
    assert.equal(recent[0].type, 'subscribed');
    assert.deepEqual(recent.slice(1).map((frame) => frame.event.key.id), [5, 7, 9], 'the three newest orders, oldest first');
    assert.equal(recent.length, 4);
    const none = await frames(port, { table: 'public.orders' }, 1);
    assert.equal(none.length, 1, 'without recent, nothing is replayed');
    const refused = await frames(port, { table: 'public.orders', recent: 5, since: '0000000001000000-0000000000' }, 1);
    assert.equal(refused[0].code, 'bad_request');
    assert.match(refused[0].message, /not both/);
  } finally {
    await sink.close();
  }
});
