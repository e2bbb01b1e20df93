// Supabase's own Realtime clients, unmodified, against a walrelay process
// with `supabase: true` on PostgreSQL 15: @supabase/realtime-js 2.x with
// both serializers (vsn 2.0.0 arrays and 1.0.0 objects), its 1.x line and
// the 0.x legacy client (realtime:<schema>:<table>[:<filter>] topics).
// Each: every event of a table, a filter, INSERT only, two bindings in one
// channel, a token refresh, a leave, an expired token, a bad filter. Also:
// heartbeats over 60 s, the 401 at the upgrade, and the walrelay_client
// resume across a dropped connection.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient, type RealtimeChannel } from '@supabase/realtime-js';
import { RealtimeClient as RealtimeClientV1 } from 'realtime-js-v1';
import { createRequire } from 'node:module';
import { startRealtimeRelay, startCutter, mintKey, type RealtimeRelay } from './harness/realtime.js';
import { waitFor } from './harness/wait.js';

const require = createRequire(import.meta.url);
const { Socket: LegacySocket } = require('realtime-js-v0') as { Socket: any };

let rt: RealtimeRelay;
let apikey: string;
/** Connected at the start, checked at the end: over 60 s of heartbeats without a reconnect. */
let heartbeat: { client: RealtimeClient; started: number; replies: string[]; statuses: string[]; rows: unknown[]; table: string };

before(async () => {
  rt = await startRealtimeRelay('pg15');
  apikey = await mintKey();
  const table = await rt.newTable();
  const client = new RealtimeClient(rt.endpoint, { params: { apikey }, transport: WebSocket as any });
  heartbeat = { client, started: Date.now(), replies: [], statuses: [], rows: [], table };
  client.onHeartbeat((status) => heartbeat.replies.push(status));
  const channel = client.channel('heartbeat').on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table }, (change: any) => heartbeat.rows.push(change.new));
  await new Promise<void>((resolve) => channel.subscribe((status) => { heartbeat.statuses.push(status); if (status === 'SUBSCRIBED') resolve(); }));
});

after(async () => {
  await heartbeat?.client.disconnect();
  await rt?.stop();
});

function subscribed(channel: RealtimeChannel): Promise<RealtimeChannel> {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, error) => {
      if (status === 'SUBSCRIBED') resolve(channel);
      else if (status !== 'CLOSED') reject(new Error(`${status}: ${error?.message}`));
    });
  });
}

async function until<T>(list: T[], count: number, what: string): Promise<T[]> {
  await waitFor(() => list.length >= count, { what: `${count} ${what} (got ${list.length})`, timeoutMs: 15_000 });
  return list;
}

/** Commits rows with ids, one transaction, then a marker row 999 that every test's catch-all sees last. */
async function insert(table: string, ...ids: number[]): Promise<void> {
  await rt.pg.query(`INSERT INTO ${table} (id, task, done, big, price, at, span, raw, tags) SELECT i, 'task ' || i, i % 2 = 0, 9223372036854775807, 129.90, '2026-11-22 08:00:00.123456+00', '1 day 2 hours', '\\x0102', '{1,2,null}' FROM unnest($1::int[]) i`, [ids]);
}

for (const vsn of ['2.0.0', '1.0.0'] as const) {
  describe(`@supabase/realtime-js 2.x, vsn ${vsn}`, () => {
    let client: RealtimeClient;

    before(() => { client = new RealtimeClient(rt.endpoint, { params: { apikey }, vsn, transport: WebSocket as any } as any); });
    after(async () => { await client.disconnect(); });

    it('streams every event of a table, values as Realtime renders them', async () => {
      const table = await rt.newTable();
      const changes: any[] = [];
      const channel = await subscribed(client.channel(`all-${vsn}`).on('postgres_changes' as any, { event: '*', schema: 'public', table }, (change: any) => changes.push(change)));
      await insert(table, 1);
      await rt.pg.query(`UPDATE ${table} SET done = true WHERE id = 1`);
      await rt.pg.query(`DELETE FROM ${table} WHERE id = 1`);
      await until(changes, 3, 'changes');
      assert.deepEqual(changes.map((change) => change.eventType), ['INSERT', 'UPDATE', 'DELETE']);
      const [inserted, updated, deleted] = changes;
      assert.equal(inserted.schema, 'public');
      assert.equal(inserted.table, table);
      assert.match(inserted.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // biome-ignore lint/correctness/noPrecisionLoss: realtime-js parses bigint as a JS number, as Supabase sends it
      assert.deepEqual(inserted.new, { id: 1, task: 'task 1', done: false, big: 9223372036854775807, price: 129.9, at: '2026-11-22T08:00:00.123456+00:00', span: '1 day 02:00:00', raw: '0102', tags: [1, 2, null] });
      assert.deepEqual(inserted.old, {});
      assert.equal(updated.new.done, true);
      assert.deepEqual(updated.old, { id: 1 });
      assert.deepEqual(deleted.new, {});
      assert.deepEqual(deleted.old, { id: 1 });
      await client.removeChannel(channel);
    });

    it('delivers only the rows a filter (id=eq.2) selects', async () => {
      const table = await rt.newTable();
      const ids: number[] = [];
      const channel = await subscribed(client.channel(`filter-${vsn}`).on('postgres_changes' as any, { event: '*', schema: 'public', table, filter: 'id=eq.2' }, (change: any) => ids.push(change.new.id ?? change.old.id)));
      await insert(table, 1, 2, 3);
      await rt.pg.query(`UPDATE ${table} SET task = 'x'`);
      await rt.pg.query(`DELETE FROM ${table}`);
      await until(ids, 3, 'changes of row 2');
      await insert(table, 999, 2); // row 2 again after the marker: nothing else came between
      await until(ids, 4, 'the second insert of row 2');
      assert.deepEqual(ids, [2, 2, 2, 2]);
      await client.removeChannel(channel);
    });

    it('delivers INSERT only when asked for INSERT', async () => {
      const table = await rt.newTable();
      const types: string[] = [];
      const channel = await subscribed(client.channel(`insert-${vsn}`).on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table }, (change: any) => types.push(`${change.eventType} ${change.new.id}`)));
      await insert(table, 1);
      await rt.pg.query(`UPDATE ${table} SET done = true; DELETE FROM ${table}`);
      await insert(table, 2);
      await until(types, 2, 'inserts');
      assert.deepEqual(types, ['INSERT 1', 'INSERT 2']);
      await client.removeChannel(channel);
    });

    it('routes two bindings of one channel to their own callbacks', async () => {
      const [orders, notes] = [await rt.newTable(), await rt.newTable()];
      const seen: string[] = [];
      const channel = await subscribed(client.channel(`two-${vsn}`)
        .on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table: orders }, (change: any) => seen.push(`orders ${change.eventType} ${change.new.id}`))
        .on('postgres_changes' as any, { event: 'DELETE', schema: 'public', table: notes }, (change: any) => seen.push(`notes ${change.eventType} ${change.old.id}`)));
      await insert(orders, 1);
      await insert(notes, 2);
      await rt.pg.query(`DELETE FROM ${orders}; DELETE FROM ${notes}`);
      await until(seen, 2, 'changes');
      await insert(orders, 3);
      await until(seen, 3, 'changes');
      assert.deepEqual(seen, ['orders INSERT 1', 'notes DELETE 2', 'orders INSERT 3']);
      await client.removeChannel(channel);
    });

    it('applies a refreshed access_token: its row filter from then on', async () => {
      const table = await rt.newTable();
      const ids: number[] = [];
      const channel = await subscribed(client.channel(`refresh-${vsn}`).on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table }, (change: any) => ids.push(change.new.id)));
      await insert(table, 1);
      await until(ids, 1, 'the first insert');
      await client.setAuth(await mintKey({ tables: ['public.*'], rowFilter: { [`public.${table}`]: 'id=gte.10' } }));
      await waitFor(async () => {
        await insert(table, ids.length + 100);
        return ids.length >= 2;
      }, { what: 'the refreshed token to be in use', timeoutMs: 15_000 });
      await insert(table, 3, 11);
      await waitFor(() => ids.includes(11), { what: 'row 11' });
      assert.ok(!ids.includes(3), 'row 3 is hidden by the new token');
      await client.removeChannel(channel);
      await client.setAuth(apikey);
    });

    it('stops delivering after a leave, and reports CLOSED', async () => {
      const table = await rt.newTable();
      const left: number[] = [];
      const stayed: number[] = [];
      const statuses: string[] = [];
      const leaving = client.channel(`leave-${vsn}`).on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table }, (change: any) => left.push(change.new.id));
      await new Promise<void>((resolve) => leaving.subscribe((status) => { statuses.push(status); if (status === 'SUBSCRIBED') resolve(); }));
      const staying = await subscribed(client.channel(`stay-${vsn}`).on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table }, (change: any) => stayed.push(change.new.id)));
      await insert(table, 1);
      await until(left, 1, 'insert before leaving');
      assert.equal(await leaving.unsubscribe(), 'ok');
      await waitFor(() => statuses.includes('CLOSED'), { what: 'CLOSED' });
      await insert(table, 2);
      await until(stayed, 2, 'the staying channel to get row 2');
      assert.deepEqual(left, [1]);
      await client.removeChannel(staying);
    });

    it('ends a channel whose token expires: system error, then phx_close (CLOSED)', async () => {
      const table = await rt.newTable();
      const expiring = new RealtimeClient(rt.endpoint, { params: { apikey }, vsn, transport: WebSocket as any } as any);
      await expiring.setAuth(await mintKey({ tables: ['public.*'] }, 2));
      const events: string[] = [];
      const channel = expiring.channel(`expiry-${vsn}`)
        .on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table }, () => undefined)
        .on('system' as any, {}, (message: any) => events.push(`system ${message.status} ${message.extension}: ${message.message}`));
      channel.subscribe((status) => events.push(status));
      await waitFor(() => events.includes('CLOSED'), { what: 'CLOSED after expiry', timeoutMs: 15_000 });
      const systemError = events.findIndex((event) => event.startsWith('system error system: Token has expired'));
      assert.ok(systemError >= 0 && systemError < events.indexOf('CLOSED'), events.join(' | '));
      await expiring.disconnect();
    });

    it('reports a bad filter as a system error after an ok join', async () => {
      const table = await rt.newTable();
      const messages: any[] = [];
      const channel = await subscribed(client.channel(`bad-${vsn}`)
        .on('postgres_changes' as any, { event: '*', schema: 'public', table, filter: 'id=zz.1' }, () => assert.fail('nothing is delivered'))
        .on('system' as any, {}, (message: any) => messages.push(message)));
      await until(messages, 1, 'system message');
      assert.equal(messages[0].status, 'error');
      assert.equal(messages[0].extension, 'postgres_changes');
      assert.match(messages[0].message, /Error parsing `filter` params/);
      await client.removeChannel(channel);
    });
  });
}

describe('realtime-js 1.x (legacy topics)', () => {
  let client: any;

  before(() => {
    client = new RealtimeClientV1(rt.endpoint, { params: { apikey } });
    client.connect();
  });
  after(async () => { await client.disconnect(); });

  async function subscribe(channel: any): Promise<any> {
    await new Promise<void>((resolve, reject) => channel.subscribe().receive('ok', () => resolve()).receive('error', (error: unknown) => reject(new Error(JSON.stringify(error)))));
    return channel;
  }

  it('streams every event of realtime:public:<table> to a * binding, each once', async () => {
    const table = await rt.newTable();
    const changes: any[] = [];
    const channel = client.channel(`realtime:public:${table}`);
    channel.on('*', (change: any) => changes.push(change));
    await subscribe(channel);
    await insert(table, 1);
    await rt.pg.query(`UPDATE ${table} SET done = true WHERE id = 1; DELETE FROM ${table} WHERE id = 1`);
    await until(changes, 3, 'changes');
    await insert(table, 2);
    await until(changes, 4, 'changes');
    assert.deepEqual(changes.map((change) => change.type), ['INSERT', 'UPDATE', 'DELETE', 'INSERT']);
    assert.equal(changes[0].record.id, 1);
    assert.equal(changes[0].record.at, '2026-11-22T08:00:00.123456+00:00');
    assert.deepEqual(changes[2].old_record, { id: 1 });
    channel.unsubscribe();
  });

  it('streams realtime:public (a schema) and realtime:* (everything)', async () => {
    const table = await rt.newTable();
    const schema: string[] = [];
    const all: string[] = [];
    const bySchema = client.channel('realtime:public');
    bySchema.on('INSERT', (change: any) => schema.push(`${change.table} ${change.record.id}`));
    const everything = client.channel('realtime:*');
    everything.on('INSERT', (change: any) => all.push(`${change.table} ${change.record.id}`));
    await Promise.all([subscribe(bySchema), subscribe(everything)]);
    await insert(table, 5);
    await until(schema, 1, 'schema insert');
    await until(all, 1, 'insert');
    assert.deepEqual(schema, [`${table} 5`]);
    assert.deepEqual(all, [`${table} 5`]);
    bySchema.unsubscribe();
    everything.unsubscribe();
  });

  it('filters with realtime:public:<table>:id=eq.2', async () => {
    const table = await rt.newTable();
    const ids: number[] = [];
    const channel = client.channel(`realtime:public:${table}:id=eq.2`);
    channel.on('*', (change: any) => ids.push(change.record.id));
    await subscribe(channel);
    await insert(table, 1, 2, 3);
    await until(ids, 1, 'row 2');
    await insert(table, 4, 999);
    await rt.pg.query(`UPDATE ${table} SET task = 'y' WHERE id = 2`);
    await until(ids, 2, 'row 2 updated');
    assert.deepEqual(ids, [2, 2]);
    channel.unsubscribe();
  });

  it('INSERT only, and two bindings on one channel', async () => {
    const table = await rt.newTable();
    const seen: string[] = [];
    const channel = client.channel(`realtime:public:${table}`);
    channel.on('INSERT', (change: any) => seen.push(`insert ${change.record.id}`));
    channel.on('DELETE', (change: any) => seen.push(`delete ${change.old_record.id}`));
    await subscribe(channel);
    await insert(table, 1);
    await rt.pg.query(`UPDATE ${table} SET done = true; DELETE FROM ${table}`);
    await insert(table, 2);
    await until(seen, 3, 'changes');
    assert.deepEqual(seen, ['insert 1', 'delete 1', 'insert 2']);
    channel.unsubscribe();
  });

  it('applies setAuth (access_token), ends on expiry with system error and phx_close, reports a bad filter', async () => {
    const table = await rt.newTable();
    const ids: number[] = [];
    const events: string[] = [];
    const channel = client.channel(`realtime:public:${table}`);
    channel.on('INSERT', (change: any) => ids.push(change.record.id));
    channel.on('system', (message: any) => events.push(`system ${message.status}: ${message.message}`));
    channel.onClose(() => events.push('closed'));
    await subscribe(channel);
    client.setAuth(await mintKey({ tables: ['public.*'], rowFilter: { [`public.${table}`]: 'id=gte.10' } }, 3));
    await waitFor(async () => {
      await insert(table, ids.length + 100);
      return ids.length >= 1;
    }, { what: 'the refreshed token to be in use', timeoutMs: 15_000 });
    await insert(table, 3, 11);
    await waitFor(() => ids.includes(11), { what: 'row 11' });
    assert.ok(!ids.includes(3));
    await waitFor(() => events.includes('closed'), { what: 'the channel to close at expiry', timeoutMs: 15_000 });
    assert.match(events[events.length - 2], /^system error: Token has expired/);
    client.setAuth(null);

    const bad = client.channel(`realtime:public:${table}:id=zz.2`);
    const messages: any[] = [];
    bad.on('system', (message: any) => messages.push(message));
    await subscribe(bad);
    await until(messages, 1, 'system message');
    assert.equal(messages[0].status, 'error');
    assert.match(messages[0].message, /Error parsing `filter` params/);
    bad.unsubscribe();
  });

  it('stops delivering after unsubscribe (phx_leave)', async () => {
    const table = await rt.newTable();
    const left: number[] = [];
    const stayed: number[] = [];
    const leaving = client.channel(`realtime:public:${table}`);
    leaving.on('INSERT', (change: any) => left.push(change.record.id));
    const closed = new Promise<void>((resolve) => leaving.onClose(() => resolve()));
    await subscribe(leaving);
    const staying = client.channel(`realtime:public:${table}:id=gte.0`);
    staying.on('INSERT', (change: any) => stayed.push(change.record.id));
    await subscribe(staying);
    await insert(table, 1);
    await until(left, 1, 'row 1');
    leaving.unsubscribe();
    await closed;
    await insert(table, 2);
    await until(stayed, 2, 'row 2 on the staying channel');
    assert.deepEqual(left, [1]);
    staying.unsubscribe();
  });
});

describe('realtime-js 0.9.0 (the legacy Socket of the founding document)', () => {
  let socket: any;

  before(() => {
    socket = new LegacySocket(rt.endpoint, { params: { apikey } });
    socket.connect();
  });
  after(() => { socket.disconnect(); });

  function joined(channel: any): Promise<any> {
    return new Promise((resolve, reject) => channel.join().receive('ok', () => resolve(channel)).receive('error', (error: unknown) => reject(new Error(JSON.stringify(error)))));
  }

  it('streams every change of realtime:public to on("*"), once each', async () => {
    const table = await rt.newTable();
    const changes: any[] = [];
    const channel = socket.channel('realtime:public');
    channel.on('*', (change: any) => changes.push(change));
    await joined(channel);
    await insert(table, 1);
    await rt.pg.query(`UPDATE ${table} SET done = true WHERE id = 1; DELETE FROM ${table} WHERE id = 1`);
    await until(changes, 3, 'changes');
    await insert(table, 2);
    await until(changes, 4, 'changes');
    assert.deepEqual(changes.map((change) => `${change.type} ${(change.record ?? change.old_record).id}`), ['INSERT 1', 'UPDATE 1', 'DELETE 1', 'INSERT 2']);
    assert.equal(changes[0].table, table);
    channel.leave();
  });

  it('filters (realtime:public:<table>:id=eq.2), INSERT only, two bindings on one channel', async () => {
    const table = await rt.newTable();
    const filtered: number[] = [];
    const seen: string[] = [];
    const byId = socket.channel(`realtime:public:${table}:id=eq.2`);
    byId.on('*', (change: any) => filtered.push(change.record.id));
    const typed = socket.channel(`realtime:public:${table}`);
    typed.on('INSERT', (change: any) => seen.push(`insert ${change.record.id}`));
    typed.on('UPDATE', (change: any) => seen.push(`update ${change.record.id}`));
    await Promise.all([joined(byId), joined(typed)]);
    await insert(table, 1, 2, 3);
    await rt.pg.query(`UPDATE ${table} SET done = true WHERE id = 3; DELETE FROM ${table} WHERE id = 3`);
    await until(seen, 4, 'changes');
    await until(filtered, 1, 'row 2');
    assert.deepEqual(seen, ['insert 1', 'insert 2', 'insert 3', 'update 3']);
    assert.deepEqual(filtered, [2]);
    byId.leave();
    typed.leave();
  });

  it('takes a pushed access_token, ends on expiry, reports a bad filter, stops after leave', async () => {
    const table = await rt.newTable();
    const ids: number[] = [];
    const events: string[] = [];
    const channel = socket.channel(`realtime:public:${table}`);
    channel.on('INSERT', (change: any) => ids.push(change.record.id));
    channel.on('system', (message: any) => events.push(`system ${message.status}: ${message.message}`));
    channel.onClose(() => events.push('closed'));
    await joined(channel);
    channel.push('access_token', { access_token: await mintKey({ tables: ['public.*'], rowFilter: { [`public.${table}`]: 'id=gte.10' } }, 3) });
    await waitFor(async () => {
      await insert(table, ids.length + 100);
      return ids.length >= 1;
    }, { what: 'the refreshed token to be in use', timeoutMs: 15_000 });
    await insert(table, 3, 11);
    await waitFor(() => ids.includes(11), { what: 'row 11' });
    assert.ok(!ids.includes(3));
    await waitFor(() => events.includes('closed'), { what: 'the channel to close at expiry', timeoutMs: 15_000 });
    assert.match(events[events.length - 2], /^system error: Token has expired/);

    const bad = socket.channel(`realtime:public:${table}:id=zz.2`);
    const messages: any[] = [];
    bad.on('system', (message: any) => messages.push(message));
    await joined(bad);
    await until(messages, 1, 'system message');
    assert.equal(messages[0].status, 'error');
    bad.leave();

    const leaving = socket.channel(`realtime:public:${table}`);
    const left: number[] = [];
    leaving.on('INSERT', (change: any) => left.push(change.record.id));
    const staying = socket.channel(`realtime:public:${table}:id=gte.0`);
    const stayed: number[] = [];
    staying.on('INSERT', (change: any) => stayed.push(change.record.id));
    await Promise.all([joined(leaving), joined(staying)]);
    await insert(table, 20);
    await until(left, 1, 'row 20');
    await new Promise<void>((resolve) => leaving.leave().receive('ok', () => resolve()));
    await insert(table, 21);
    await until(stayed, 2, 'row 21 on the staying channel');
    assert.deepEqual(left, [20]);
    staying.leave();
  });
});

describe('Realtime upgrade', () => {
  it('refuses a missing, forged or expired apikey with 401, and serves walrelay\'s own protocol on the same port', async () => {
    const status = (query: string) => new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${rt.port}/socket/websocket${query}`);
      ws.on('unexpected-response', (_request, response) => { resolve(response.statusCode ?? 0); ws.terminate(); });
      ws.on('open', () => { resolve(101); ws.close(); });
      ws.on('error', () => undefined);
    });
    assert.equal(await status('?vsn=1.0.0'), 401);
    assert.equal(await status('?apikey=not-a-jwt&vsn=1.0.0'), 401);
    assert.equal(await status(`?apikey=${await mintKey({ tables: ['public.*'] }, -10)}&vsn=1.0.0`), 401);
    assert.equal(await status(`?apikey=${apikey}&vsn=2.0.0`), 101);
    const native = new WebSocket(`ws://127.0.0.1:${rt.port}/?token=${apikey}`);
    await new Promise<void>((resolve, reject) => { native.on('open', () => resolve()); native.on('error', reject); });
    native.send(JSON.stringify({ type: 'subscribe', id: 's', table: 'public.*' }));
    await new Promise<void>((resolve) => native.on('message', (data) => { if (String(data).includes('"subscribed"')) resolve(); }));
    native.close();
  });
});

describe('Realtime protocol details (raw vsn 2.0.0 frames)', () => {
  it('answers what the clients rarely send: forbidden tables, unknown filter columns, unjoined topics, a second join', async () => {
    const [allowed, forbidden] = [await rt.newTable(), await rt.newTable()];
    const key = await mintKey({ tables: [`public.${allowed}`] });
    const ws = new WebSocket(`ws://127.0.0.1:${rt.port}/socket/websocket?apikey=${key}&vsn=2.0.0`);
    const frames: any[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data))));
    await new Promise<void>((resolve, reject) => { ws.on('open', () => resolve()); ws.on('error', reject); });
    const send = (frame: unknown[]) => ws.send(JSON.stringify(frame));
    const next = async (predicate: (frame: any[]) => boolean, what: string) => {
      await waitFor(() => frames.some(predicate), { what });
      return frames.splice(frames.findIndex(predicate), 1)[0];
    };
    const join = (ref: string, topic: string, entries: object[]) => send([ref, ref, topic, 'phx_join', { config: { postgres_changes: entries } }]);

    // A second join of a topic closes the first; walrelay learns the table's columns from the change it streams.
    join('1', 'realtime:c', [{ event: 'INSERT', schema: 'public', table: allowed }]);
    await next((f) => f[1] === '1', 'reply 1');
    join('2', 'realtime:c', [{ event: 'INSERT', schema: 'public', table: allowed }]);
    assert.deepEqual(await next((f) => f[3] === 'phx_close' && f[2] === 'realtime:c', 'the first join closed'), ['1', '1', 'realtime:c', 'phx_close', {}]);
    await next((f) => f[1] === '2', 'reply 2');
    await insert(allowed, 1);
    const change = await next((f) => f[3] === 'postgres_changes', 'a change on the second join');
    assert.equal(change[2], 'realtime:c');
    assert.equal(change[4].data.record.id, 1);
    assert.deepEqual(change[4].data.columns.slice(0, 3), [{ name: 'id', type: 'int4' }, { name: 'task', type: 'text' }, { name: 'done', type: 'bool' }]);

    join('3', 'realtime:a', [{ event: '*', schema: 'public', table: forbidden }]);
    assert.equal((await next((f) => f[1] === '3', 'reply 3'))[4].status, 'ok');
    assert.match((await next((f) => f[3] === 'system' && f[2] === 'realtime:a', 'system a'))[4].message, /^Unauthorized: your token does not allow reading public\.todos_\d+$/);

    join('4', 'realtime:b', [{ event: '*', schema: 'public', table: allowed, filter: 'nope=eq.1' }]);
    const reply = await next((f) => f[1] === '4', 'reply 4');
    assert.deepEqual(reply[4].response.postgres_changes.map(({ id, ...entry }: any) => { assert.ok(id > 0); return entry; }), [{ event: '*', schema: 'public', table: allowed, filter: 'nope=eq.1' }]);
    assert.match((await next((f) => f[3] === 'system' && f[2] === 'realtime:b', 'system b'))[4].message, /column nope does not exist/);

    send([null, '5', 'realtime:never-joined', 'access_token', { access_token: key }]);
    assert.deepEqual((await next((f) => f[1] === '5', 'reply 5'))[4], { status: 'error', response: { reason: 'unmatched topic' } });

    await insert(allowed, 2, 3);
    await waitFor(() => frames.filter((f) => f[3] === 'postgres_changes').length === 2, { what: 'rows 2 and 3 on realtime:c' });
    assert.ok(frames.every((f) => f[3] !== 'postgres_changes' || f[2] === 'realtime:c'), 'nothing on the refused channels');
    ws.close();
  });
});

describe('walrelay_client: resume after a dropped connection', () => {
  it('replays what was committed while the client was away; a client without the parameter loses it, as with Realtime', async () => {
    const table = await rt.newTable();
    const cutter = await startCutter(rt.port);
    const endpoint = `ws://127.0.0.1:${cutter.port}/realtime/v1`;
    const resuming = new RealtimeClient(endpoint, { params: { apikey: await mintKey({ sub: 'resume-user', tables: ['public.*'] }), walrelay_client: 'test-resume' }, transport: WebSocket as any, reconnectAfterMs: () => 200 } as any);
    const plain = new RealtimeClient(endpoint, { params: { apikey }, transport: WebSocket as any, reconnectAfterMs: () => 200 } as any);
    const witness = new RealtimeClient(rt.endpoint, { params: { apikey }, transport: WebSocket as any });
    try {
      const got = { resuming: [] as number[], plain: [] as number[], witness: [] as number[] };
      const statuses = { resuming: [] as string[], plain: [] as string[] };
      for (const [name, client] of [['resuming', resuming], ['plain', plain], ['witness', witness]] as const) {
        const channel = client.channel('orders').on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table }, (change: any) => got[name].push(change.new.id));
        if (name === 'witness') await subscribed(channel);
        else await new Promise<void>((resolve) => channel.subscribe((status) => { statuses[name].push(status); if (status === 'SUBSCRIBED') resolve(); }));
      }
      await insert(table, 1);
      await Promise.all([until(got.resuming, 1, 'row 1'), until(got.plain, 1, 'row 1')]);
      cutter.cut();
      await waitFor(() => statuses.resuming.includes('CHANNEL_ERROR') && statuses.plain.includes('CHANNEL_ERROR'), { what: 'both channels to see the drop' });
      await insert(table, 2, 3);
      await until(got.witness, 3, 'the witness to see rows 2 and 3 (the relay has sent them)');
      cutter.restore();
      const joins = (list: string[]) => list.filter((status) => status === 'SUBSCRIBED').length;
      await waitFor(() => joins(statuses.resuming) >= 2 && joins(statuses.plain) >= 2, { what: 'both clients to rejoin', timeoutMs: 20_000 });
      await insert(table, 4);
      await Promise.all([until(got.resuming, 4, 'rows 1-4 on the resuming client'), until(got.plain, 2, 'row 4 on the plain client')]);
      assert.deepEqual(got.resuming, [1, 2, 3, 4]);
      assert.deepEqual(got.plain, [1, 4]);
    } finally {
      await Promise.all([resuming.disconnect(), plain.disconnect(), witness.disconnect()]);
      await cutter.close();
    }
  });
});

describe('heartbeats', () => {
  it('keeps a 2.x client connected over 60 s of heartbeats (25 s apart), still delivering', async () => {
    const remaining = heartbeat.started + 65_000 - Date.now();
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
    // A heartbeat without a reply closes the socket at the next one, which errors and rejoins the channel.
    assert.ok(heartbeat.replies.filter((status) => status === 'ok').length >= 2, `heartbeat statuses: ${heartbeat.replies.join(' ')}`);
    assert.ok(!heartbeat.replies.includes('timeout'), `heartbeat statuses: ${heartbeat.replies.join(' ')}`);
    assert.deepEqual(heartbeat.statuses, ['SUBSCRIBED']);
    assert.ok(heartbeat.client.isConnected());
    await insert(heartbeat.table, 7);
    await until(heartbeat.rows, 1, 'a change after 65 s');
    assert.equal((heartbeat.rows[0] as any).id, 7);
  });
});
