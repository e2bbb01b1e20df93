// The webhook sink against a real receiver (an HTTP server in this process)
// and a real walrelay process: every change of the same keys arrives, in
// commit order per key, signed as Standard Webhooks verifiers expect; a
// receiver that answers 503 with Retry-After, hangs past timeoutSeconds or
// refuses with a 4xx loses nothing and shows in /readyz; a kill -9 loses
// nothing and re-sends only identical events; concurrency beats serial
// delivery without two requests of one key in flight; events the receiver
// refuses go to the dead-letter sink with the failure, and the slot moves on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { writeConfig, runCli, spawnRelay, type RelayProcess } from './harness/relay.js';
import { startRowWriter, committedIds } from './harness/row-writer.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';
import { startWebhookReceiver, type WebhookReceiver } from './harness/webhook-receiver.js';
import { parseLsn } from '../relay/lsn.js';
import { parseConfig } from '../config/load.js';
import type { WalrelayError } from '../relay/errors.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

async function readiness(port: number): Promise<{ status: number; reasons: string[] }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  const body = await response.json() as { reasons: string[] };
  return { status: response.status, reasons: body.reasons };
}

/** Sets up the slot and publication of `config`, starts walrelay, waits until it streams. */
async function startRelay(config: Record<string, unknown>): Promise<{ relay: RelayProcess; file: string }> {
  const file = writeConfig(config);
  const setup = await runCli(['setup', '-c', file]);
  assert.equal(setup.code, 0, setup.stderr);
  const relay = spawnRelay(file);
  await relay.waitForLog(/"msg":"streaming"/);
  return { relay, file };
}

/**
 * Every committed row arrived (by new.id) and every event delivered more than
 * once came with the identical body: what at-least-once allows.
 */
async function assertEveryRowReceived(receiver: WebhookReceiver, committed: Set<number>, timeoutMs = 60_000): Promise<{ events: number; duplicates: number }> {
  await waitFor(() => {
    const seen = new Set(receiver.accepted().map((event) => event.new?.id));
    return [...committed].every((id) => seen.has(id));
  }, { what: `all ${committed.size} committed rows at the receiver`, timeoutMs, intervalMs: 200 }).catch((error) => {
    const seen = new Set(receiver.accepted().map((event) => event.new?.id));
    const missing = [...committed].filter((id) => !seen.has(id));
    throw new Error(`${(error as Error).message}: ${missing.length} missing, e.g. ${missing.slice(0, 10).join(', ')}`);
  });
  const byId = new Map<string, string>();
  let duplicates = 0;
  for (const event of receiver.accepted()) {
    const text = JSON.stringify(event);
    const earlier = byId.get(event.id);
    if (earlier !== undefined) {
      duplicates++;
      assert.equal(text, earlier, `event ${event.id} was delivered twice with different contents`);
    }
    byId.set(event.id, text);
    assert.ok(committed.has(event.new.id), `row ${event.new.id} arrived but is not in the table`);
  }
  return { events: receiver.accepted().length, duplicates };
}

describe('webhook sink', () => {
  let postgres: TestPostgres;
  let redis: TestRedis;
  const relays: RelayProcess[] = [];
  const receivers: WebhookReceiver[] = [];
  const receiver = async () => {
    const started = await startWebhookReceiver();
    receivers.push(started);
    return started;
  };

  before(async () => {
    [postgres, redis] = await Promise.all([startPostgres('pg15', { synchronous_commit: 'on' }), startRedis()]);
  });

  after(async () => {
    for (const relay of relays) relay.signal('SIGKILL');
    await Promise.all(receivers.map((item) => item.close()));
    await Promise.all([postgres?.stop(), redis?.stop()]);
  });

  it('validate refuses a deadLetter naming no sink, the sink itself or a websocket sink, and a malformed secret (exit 2)', async () => {
    const config = (sinks: unknown[]) => writeConfig({ source: { url: 'postgres://u@127.0.0.1:1/db' }, sinks });
    const hook = { type: 'webhook', name: 'hook', url: 'http://127.0.0.1:9/x' };
    const ok = await runCli(['validate', '-c', config([{ ...hook, secret: SECRET, deadLetter: 'dlq', batchSize: 10, concurrency: 4, maxAttempts: 5 }, { type: 'redis', name: 'dlq' }])]);
    assert.equal(ok.code, 0, ok.stderr);
    const cases: [unknown[], RegExp][] = [
      [[{ ...hook, deadLetter: 'nope' }, { type: 'redis', name: 'dlq' }], /sinks\[0\]\.deadLetter: no sink is named "nope"/],
      [[{ ...hook, deadLetter: 'hook' }], /sinks\[0\]\.deadLetter: a sink cannot be its own dead-letter sink/],
      [[{ ...hook, deadLetter: 'ws' }, { type: 'websocket', name: 'ws', auth: 'none' }], /does not keep what it receives/],
      [[{ ...hook, deadLetter: 'b' }, { ...hook, name: 'b', deadLetter: 'hook' }], /dead-letter sinks form a loop/],
      [[{ ...hook, secret: 'not-a-secret' }], /sinks\[0\]\.secret: expected a secret of the form whsec_/],
      [[{ ...hook, url: 'ftp://x' }], /sinks\[0\]\.url: expected an http/],
      [[{ ...hook, batchsize: 3 }], /sinks\[0\]\.batchsize: unknown key; did you mean batchSize\?/],
    ];
    // The command once (exit code and message), then each case through the same parser in this process (a process each is slow).
    const refused = await runCli(['validate', '-c', config(cases[0][0])]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, cases[0][1]);
    for (const [sinks, message] of cases) {
      assert.throws(() => parseConfig({ source: { url: 'postgres://u@127.0.0.1:1/db' }, sinks }, {}), (error: WalrelayError) => {
        assert.equal(error.code, 'CONFIG_INVALID');
        assert.match(error.message, message);
        return true;
      }, JSON.stringify(sinks));
    }
  });

  it('format debezium: a key change is two requests, the delete of the old key and the create of the new one (webhook-id <id> and <id>+1)', async () => {
    await postgres.query('CREATE TABLE wh_rekey (id int PRIMARY KEY, n int NOT NULL)');
    const hook = await receiver();
    const { relay } = await startRelay({
      source: { url: postgres.url, slot: 'wh_rekey', publication: 'wh_rekey', tables: ['public.wh_rekey'] },
      sinks: [{ type: 'webhook', url: hook.url, format: 'debezium' }],
    });
    relays.push(relay);
    await postgres.query('INSERT INTO wh_rekey VALUES (1, 0)');
    await postgres.query('UPDATE wh_rekey SET id = 2, n = 1 WHERE id = 1');
    await waitFor(() => hook.requests.length >= 3, { what: 'the insert and both records of the key change', timeoutMs: 30_000 })
      .catch((error) => { throw new Error(`${(error as Error).message}: got ${hook.requests.map((request) => request.body).join('\n')}`); });
    const records = hook.requests.map((request) => ({ id: String(request.headers['webhook-id']), record: JSON.parse(request.body) }));
    assert.deepEqual(records.map(({ record }) => [record.op, record.before?.id ?? null, record.after?.id ?? null]), [['c', null, 1], ['d', 1, null], ['c', null, 2]]);
    assert.equal(records[2].id, `${records[1].id}+1`, 'the create is the key change\'s second record');
  });

  it('delivers every insert, update and delete of the same keys in per-key commit order, signed (standardwebhooks verifies; a tampered body fails), as arrays with batchSize, as CloudEvents, and concurrently against a slow receiver', async () => {
    await postgres.query('CREATE TABLE wh_orders (id int PRIMARY KEY, n int NOT NULL)');
    await postgres.query('CREATE TABLE wh_slow (id int PRIMARY KEY, n int NOT NULL)');
    const single = await receiver();
    const batched = await receiver();
    const cloud = await receiver();
    const slow = await receiver();
    const everything = await receiver();
    const debezium = await receiver();
    // Receivers that take their time, so that requests really overlap.
    single.answer = () => ({ status: 200, delayMs: Math.floor(Math.random() * 10) });
    slow.answer = () => ({ status: 200, delayMs: 100 });
    const { relay } = await startRelay({
      source: { url: postgres.url, slot: 'wh_order', publication: 'wh_order', tables: ['public.wh_orders', 'public.wh_slow'] },
      sinks: [
        { type: 'webhook', name: 'single', url: single.url, secret: SECRET, tables: ['public.wh_orders'], headers: { authorization: 'Bearer t0ken' } },
        { type: 'webhook', name: 'batched', url: batched.url, batchSize: 25, tables: ['public.wh_orders'] },
        { type: 'webhook', name: 'cloud', url: cloud.url, format: 'cloudevents', tables: ['public.wh_orders'] },
        { type: 'webhook', name: 'slow', url: slow.url, concurrency: 16, tables: ['public.wh_slow'] },
        // Without tables: also messages, here routed ones (domain events).
        { type: 'webhook', name: 'everything', url: everything.url, batchSize: 10, transactionEvents: true },
        { type: 'webhook', name: 'debezium', url: debezium.url, format: 'debezium', tables: ['public.wh_orders'] },
      ],
      messages: [{ prefix: 'wh', destination: 'orders.{prefix}' }],
    });
    relays.push(relay);

    // Per key: insert, 3 updates (one statement each), 1 update in its own transaction; even keys then deleted and inserted again.
    const KEYS = 30;
    await postgres.query(`INSERT INTO wh_orders SELECT i, 0 FROM generate_series(1, ${KEYS}) i`);
    for (let round = 0; round < 3; round++) await postgres.query('UPDATE wh_orders SET n = n + 1');
    for (const id of [...Array(KEYS).keys()].map((i) => i + 1).sort(() => Math.random() - 0.5)) await postgres.query('UPDATE wh_orders SET n = n + 1 WHERE id = $1', [id]);
    await postgres.query('DELETE FROM wh_orders WHERE id % 2 = 0');
    await postgres.query(`INSERT INTO wh_orders SELECT i, 100 FROM generate_series(2, ${KEYS}, 2) i`);
    const expectedOps = (id: number) => ['insert', 'update', 'update', 'update', 'update', ...(id % 2 === 0 ? ['delete', 'insert'] : [])];
    const total = KEYS * 5 + KEYS;

    const distinct = (item: WebhookReceiver) => new Set(item.accepted().map((event) => event.id)).size;
    await waitFor(() => distinct(single) >= total && distinct(batched) >= total && distinct(cloud) >= total, { what: `${total} events at each receiver`, timeoutMs: 60_000 })
      .catch((error) => { throw new Error(`${(error as Error).message}: single ${distinct(single)}, batched ${distinct(batched)}, cloud ${distinct(cloud)}\n${relay.logs().slice(-3000)}`); });

    // Order per key, in the order the receiver acknowledged them.
    const perKey = new Map<number, { id: string; op: string }[]>();
    for (const event of single.accepted()) {
      const row = (event.new ?? event.old ?? event.key).id as number;
      const list = perKey.get(row) ?? [];
      if (!list.some((item) => item.id === event.id)) list.push({ id: event.id, op: event.op });
      perKey.set(row, list);
    }
    assert.equal(perKey.size, KEYS);
    for (const [row, list] of perKey) {
      assert.deepEqual(list.map((item) => item.op), expectedOps(row), `row ${row}'s events`);
      for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].id < list[i].id, `row ${row}: ${list[i - 1].id} arrived before ${list[i].id}`);
    }
    assert.ok(single.peakInFlight > 1, `requests overlapped (peak ${single.peakInFlight})`);
    assert.deepEqual(single.overlappingKeys, [], 'two requests of the same row key were in flight at once');

    // Signatures: the standardwebhooks package verifies every request, and refuses a body changed by one character.
    const verifier = new Webhook(SECRET);
    for (const request of single.requests) {
      assert.equal(request.headers['webhook-id'], request.events[0].id);
      assert.equal(request.headers.authorization, 'Bearer t0ken');
      assert.equal(request.headers['content-type'], 'application/json');
      verifier.verify(request.body, request.headers as Record<string, string>);
      const tampered = request.body.replace(/"xid":(\d)/, (_, digit: string) => `"xid":${(Number(digit) + 1) % 10}`);
      assert.notEqual(tampered, request.body);
      assert.throws(() => verifier.verify(tampered, request.headers as Record<string, string>), WebhookVerificationError);
    }
    assert.throws(() => new Webhook('whsec_' + Buffer.from('another key of sixteen+').toString('base64')).verify(single.requests[0].body, single.requests[0].headers as Record<string, string>), WebhookVerificationError);
    assert.equal(single.requests[0].headers['webhook-signature']?.toString().startsWith('v1,'), true);

    // batchSize 25: JSON arrays of at most 25 events, webhook-id the first event's id, and every event there.
    for (const request of batched.requests) {
      assert.ok(Array.isArray(JSON.parse(request.body)), 'a batched body is an array');
      assert.ok(request.events.length >= 1 && request.events.length <= 25);
      assert.equal(request.headers['webhook-id'], request.events[0].id);
      assert.equal(request.headers['webhook-signature'], undefined, 'no secret, no signature');
    }
    assert.ok(batched.requests.some((request) => request.events.length > 1), 'some requests carried several events');
    assert.deepEqual(new Set(batched.accepted().map((event) => event.id)), new Set(single.accepted().map((event) => event.id)));

    // CloudEvents, structured content mode.
    for (const request of cloud.requests) {
      assert.equal(request.headers['content-type'], 'application/cloudevents+json');
      const event = JSON.parse(request.body);
      assert.equal(event.specversion, '1.0');
      assert.equal(event.id, request.headers['webhook-id']);
      assert.equal(event.source, '/walrelay/public.wh_orders');
      assert.match(event.type, /^io\.walrelay\.(insert|update|delete)$/);
    }

    // format: debezium, one Debezium record per request (a delete's tombstone is not sent).
    // Debezium records carry no walrelay id: counted by webhook-id, which is the event's id.
    await waitFor(() => new Set(debezium.requests.filter((request) => request.status === 200).map((request) => request.headers['webhook-id'])).size >= total, { what: `${total} Debezium records` });
    for (const request of debezium.requests) {
      const record = JSON.parse(request.body);
      assert.match(record.op, /^[cud]$/);
      assert.equal(record.source.table, 'wh_orders');
      assert.equal((record.after ?? record.before).id > 0, true);
    }

    // transactionEvents: begin before a transaction's rows and commit after them, whatever the concurrency.
    await waitFor(() => everything.accepted().filter((event) => event.op === 'commit').length >= 1 + 3 + KEYS + 2, { what: 'every commit event' });
    const seenAt = new Map<string, number>();
    everything.accepted().forEach((event, index) => { if (!seenAt.has(`${event.xid}:${event.op}:${event.id}`)) seenAt.set(`${event.xid}:${event.op}:${event.id}`, index); });
    const byXid = new Map<number, { begin?: number; commit?: number; rows: number[] }>();
    for (const [key, index] of seenAt) {
      const [xid, op] = key.split(':');
      const entry = byXid.get(Number(xid)) ?? { rows: [] };
      if (op === 'begin') entry.begin = index;
      else if (op === 'commit') entry.commit = index;
      else entry.rows.push(index);
      byXid.set(Number(xid), entry);
    }
    for (const [xid, entry] of byXid) {
      if (entry.rows.length === 0) continue;
      assert.ok(entry.begin !== undefined && entry.commit !== undefined, `transaction ${xid} has begin and commit`);
      assert.ok(entry.rows.every((index) => entry.begin! < index && index < entry.commit!), `transaction ${xid}: a row arrived outside its begin/commit`);
    }

    // A domain event: its value as the body, its destination in walrelay-destination, never batched with row events.
    await postgres.query(`SELECT pg_logical_emit_message(true, 'wh', '{"shipped":42}')`);
    await waitFor(() => everything.requests.some((request) => request.headers['walrelay-destination'] !== undefined), { what: 'the routed message at the receiver' });
    const routed = everything.requests.find((request) => request.headers['walrelay-destination'] !== undefined)!;
    assert.equal(routed.headers['walrelay-destination'], 'orders.wh');
    assert.deepEqual(JSON.parse(routed.body), [{ shipped: 42 }]);

    // Concurrency: 96 rows of distinct keys and 16 updates of one key, against a receiver taking 100 ms per request.
    // One at a time that is at least 11.2 s; the hot key's 16 updates alone take 1.6 s in order.
    const started = Date.now();
    await postgres.query('INSERT INTO wh_slow SELECT i, 0 FROM generate_series(1, 96) i');
    for (let i = 0; i < 16; i++) await postgres.query('UPDATE wh_slow SET n = n + 1 WHERE id = 1');
    await waitFor(() => distinct(slow) >= 112, { what: '112 events at the slow receiver', timeoutMs: 30_000 });
    const elapsed = Date.now() - started;
    console.log(`# slow receiver: 112 events in ${elapsed} ms (serial: >= 11200 ms), peak ${slow.peakInFlight} in flight`);
    assert.ok(elapsed < 5600, `concurrent delivery took ${elapsed} ms, not less than half of serial`);
    assert.ok(slow.peakInFlight > 4 && slow.peakInFlight <= 16, `peak in flight ${slow.peakInFlight}`);
    assert.deepEqual(slow.overlappingKeys, [], 'two requests of the hot key were in flight at once');
    const hot = slow.accepted().filter((event) => event.key.id === 1).map((event) => event.new.n);
    assert.deepEqual(hot, [...Array(17).keys()], 'the hot key\'s updates arrived in commit order');

    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });

  it('loses nothing through 503 with Retry-After, a request hanging past timeoutSeconds and a permanent 400 without a dead-letter sink, with /readyz 503 meanwhile', async () => {
    await postgres.query('CREATE TABLE wh_outage (id int PRIMARY KEY, note text)');
    const hook = await receiver();
    const httpPort = await freePort();
    const { relay } = await startRelay({
      source: { url: postgres.url, slot: 'wh_outage', publication: 'wh_outage', tables: ['public.wh_outage'] },
      sinks: [{ type: 'webhook', name: 'hook', url: hook.url, timeoutSeconds: 2, batchSize: 5 }],
      http: { port: httpPort },
    });
    relays.push(relay);
    const writer = startRowWriter(postgres.url, 'wh_outage', { rowsPerTx: 3, intervalMs: 20 });
    await waitFor(() => hook.accepted().length >= 100, { what: '100 rows before the outage' });
    assert.equal((await readiness(httpPort)).status, 200);

    const outageFrom = hook.requests.length;
    hook.answer = () => ({ status: 503, headers: { 'retry-after': '1' }, body: 'down for maintenance' });
    await waitFor(async () => (await readiness(httpPort)).status === 503, { what: '/readyz 503 while the receiver answers 503', timeoutMs: 10_000 });
    assert.match((await readiness(httpPort)).reasons.join('; '), /sink hook is not delivering: .*answered 503/);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Retry-After: 1 spaces the attempts of each request by a second at least (without it the first come 50-200 ms apart).
    const attemptsById = new Map<string, number[]>();
    for (const request of hook.requests.slice(outageFrom)) {
      const id = String(request.headers['webhook-id']);
      attemptsById.set(id, [...(attemptsById.get(id) ?? []), request.at]);
    }
    const gaps = [...attemptsById.values()].flatMap((times) => times.slice(1).map((time, i) => time - times[i]));
    console.log(`# attempts 503 + Retry-After: 1 apart by ${gaps.join(', ')} ms`);
    assert.ok(gaps.length >= 2, 'requests were retried during the 503 outage');
    assert.ok(gaps.every((gap) => gap >= 950), `a retry came sooner than Retry-After allows: ${gaps.join(', ')} ms`);

    hook.answer = () => 'hang';
    await relay.waitForLog(/no answer within 2 s/, 15_000);
    assert.equal((await readiness(httpPort)).status, 503);

    hook.answer = () => ({ status: 400, body: 'no thanks' });
    await relay.waitForLog(/"level":50[^\n]*no deadLetter sink is configured; retrying/, 20_000);
    await waitFor(async () => /answered 400 .*no deadLetter sink, so walrelay keeps retrying/.test((await readiness(httpPort)).reasons.join('; ')),
      { what: '/readyz to name the refusal and the missing dead-letter sink', timeoutMs: 10_000 });
    assert.equal((await readiness(httpPort)).status, 503);

    hook.answer = () => ({ status: 204 });
    await waitFor(async () => (await readiness(httpPort)).status === 200, { what: '/readyz 200 after the outage', timeoutMs: 30_000 });
    const acknowledged = await writer.stop();
    const committed = await committedIds((sql) => postgres.query(sql), 'wh_outage');
    for (const id of acknowledged) assert.ok(committed.has(id), `acknowledged row ${id} is not in the table`);
    const { events, duplicates } = await assertEveryRowReceived(hook, committed);
    console.log(`# ${committed.size} rows, ${events} events accepted (${duplicates} identical re-deliveries)`);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    assert.match(metrics, /walrelay_sink_retries_total\{sink="hook"\} [1-9]/);
    assert.match(metrics, /walrelay_webhook_request_duration_seconds_count\{sink="hook",outcome="timeout"\} [1-9]/);
    assert.match(metrics, /walrelay_webhook_request_duration_seconds_count\{sink="hook",outcome="503"\} [1-9]/);
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });

  it('after kill -9 of walrelay every committed row arrives, re-deliveries only as identical events (batchSize 1: identical requests with the same webhook-id)', async () => {
    await postgres.query('CREATE TABLE wh_crash (id int PRIMARY KEY, note text)');
    const single = await receiver();
    const batched = await receiver();
    // The secret from a file, as Kubernetes mounts it (with a trailing newline).
    const secretFile = join(mkdtempSync(join(tmpdir(), 'walrelay-secret-')), 'hook-secret');
    writeFileSync(secretFile, `${SECRET}\n`);
    const config = {
      source: { url: postgres.url, slot: 'wh_crash', publication: 'wh_crash', tables: ['public.wh_crash'] },
      sinks: [
        { type: 'webhook', name: 'single', url: single.url, secretFile },
        { type: 'webhook', name: 'batched', url: batched.url, secretFile, batchSize: 10 },
      ],
    };
    const { relay, file } = await startRelay(config);
    relays.push(relay);
    const writer = startRowWriter(postgres.url, 'wh_crash', { rowsPerTx: 7, intervalMs: 5 });
    await waitFor(() => single.accepted().length >= 300, { what: '300 rows before the crash' });
    relay.signal('SIGKILL');
    await relay.exited;
    await waitFor(() => writer.acknowledged >= single.accepted().length + 200, { what: 'rows committed while walrelay is down' });
    const again = spawnRelay(file);
    relays.push(again);
    await again.waitForLog(/"msg":"streaming"/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const acknowledged = await writer.stop();
    const committed = await committedIds((sql) => postgres.query(sql), 'wh_crash');
    for (const id of acknowledged) assert.ok(committed.has(id), `acknowledged row ${id} is not in the table`);
    for (const [name, hook] of [['batchSize 1', single], ['batchSize 10', batched]] as const) {
      const { events, duplicates } = await assertEveryRowReceived(hook, committed);
      console.log(`# ${name}: ${committed.size} rows, ${events} events accepted (${duplicates} identical re-deliveries)`);
    }
    // One event per request: a request sent again is the same request (same webhook-id, same body, valid signature).
    // (A batch re-sent after a restart may hold more or fewer events under the same first id: receivers deduplicate by event id.)
    const verifier = new Webhook(SECRET);
    const bodyById = new Map<string, string>();
    for (const request of single.requests) {
      verifier.verify(request.body, request.headers as Record<string, string>);
      const id = String(request.headers['webhook-id']);
      const earlier = bodyById.get(id);
      if (earlier !== undefined) assert.equal(request.body, earlier, `request ${id} sent again with another body`);
      bodyById.set(id, request.body);
    }
    again.signal('SIGTERM');
    assert.equal(await again.exited, 0);
  });

  it('hands events the receiver refuses (400) or keeps failing (503) after maxAttempts to the dead-letter sink, with the failure, whatever its tables; the slot moves past them', async () => {
    await postgres.query('CREATE TABLE wh_dead (id int PRIMARY KEY, note text)');
    const hook = await receiver();
    hook.answer = (request) => {
      const id = request.events[0].new.id as number;
      if (id % 10 === 0) return { status: 400, body: `row ${id} is invalid: ${'x'.repeat(5000)}` };
      if (id % 10 === 5) return { status: 503 };
      return { status: 200 };
    };
    const httpPort = await freePort();
    const { relay } = await startRelay({
      source: { url: postgres.url, slot: 'wh_dead', publication: 'wh_dead', tables: ['public.wh_dead'] },
      sinks: [
        { type: 'webhook', name: 'hook', url: hook.url, maxAttempts: 3, deadLetter: 'dlq', tables: ['public.wh_dead'] },
        // The dead-letter sink takes no table itself: dead letters reach it all the same.
        { type: 'redis', name: 'dlq', url: redis.url, tables: ['public.nothing_here'] },
      ],
      http: { port: httpPort },
    });
    relays.push(relay);
    await postgres.query("INSERT INTO wh_dead SELECT i, 'row ' || i FROM generate_series(1, 50) i");
    const [{ lsn }] = await postgres.query('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    const client = redis.client();
    try {
      await waitFor(async () => (await client.xlen('walrelay.deadletter')) >= 10, { what: '10 dead letters', timeoutMs: 30_000 });
      const entries = await client.xrange('walrelay.deadletter', '-', '+');
      assert.equal(entries.length, 10);
      const letters = entries.map(([, fields]) => {
        const field = (name: string) => fields[fields.indexOf(name) + 1];
        return { value: JSON.parse(field('event')), key: JSON.parse(field('key')), sinkHeader: field('walrelay-dead-letter-sink') };
      });
      assert.deepEqual(letters.map((letter) => letter.value.event.new.id).sort((a, b) => a - b), [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]);
      for (const letter of letters) {
        const id = letter.value.event.new.id as number;
        assert.equal(letter.value.sink, 'hook');
        assert.equal(letter.sinkHeader, 'hook');
        assert.deepEqual(letter.key, { id });
        assert.equal(letter.value.failure.attempts, 3);
        assert.equal(letter.value.failure.status, id % 10 === 0 ? 400 : 503);
        assert.ok(!Number.isNaN(Date.parse(letter.value.failure.lastAttemptAt)));
        if (id % 10 === 0) {
          assert.match(letter.value.failure.body, new RegExp(`^row ${id} is invalid: x+$`));
          assert.equal(letter.value.failure.body.length, 1024, 'the body excerpt is bounded');
        }
      }
      assert.deepEqual(hook.accepted().map((event) => event.new.id).sort((a, b) => a - b), [...Array(50).keys()].map((i) => i + 1).filter((id) => id % 5 !== 0));
      // Dead-lettered is as good as delivered for the checkpoint: the slot moves past the refused rows.
      await waitFor(async () => {
        const [slot] = await postgres.query("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'wh_dead'");
        return parseLsn(slot.lsn) >= parseLsn(lsn);
      }, { what: 'the slot to be confirmed past the insert', timeoutMs: 20_000 });
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      assert.match(metrics, /walrelay_sink_dead_lettered_total\{sink="hook"\} 10/);
      assert.match(metrics, /walrelay_events_delivered_total\{sink="hook"\} 50/);
      assert.equal((await readiness(httpPort)).status, 200);
    } finally {
      client.disconnect();
    }
    relay.signal('SIGTERM');
    assert.equal(await relay.exited, 0);
  });
});
