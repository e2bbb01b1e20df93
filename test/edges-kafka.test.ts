// walrelay edge over a Kafka feed (docs/edges.md): the relay's feed sink
// writes one Kafka topic of one partition (walrelay's own producer); edges
// (real `walrelay edge` processes) read it from the offset they need with
// walrelay's own Fetch code. Frames are compared byte for byte with the
// relay's own websocket sink; `since` survives an edge's kill -9 and works on
// another edge and on an edge started late; realtime-js works on an edge.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Kafka, logLevel } from 'kafkajs';
import { RealtimeClient } from '@supabase/realtime-js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { startEdge as startEdgeOn, connect, subscribe, idOf, rowOf, realtimeResumeAcrossEdges, type Edge } from './harness/edges.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';

const FEED = 'edges.kafka.feed';

describe('walrelay edge served from a Kafka feed', () => {
  let pg: TestPostgres;
  let kafka: TestKafka;
  let relay: RelayProcess;
  let relayPort: number;
  const edges: Edge[] = [];
  const startEdge = () => startEdgeOn({ kafka: { brokers: kafka.brokers }, name: FEED });

  before(async () => {
    [pg, kafka] = await Promise.all([startPostgres('pg15'), startKafka()]);
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, big int8, price numeric(30,10), note text)');
    relayPort = await freePort();
    const file = writeConfig({
      source: { url: pg.url, slot: 'edges_kafka', publication: 'edges_kafka' },
      sinks: [
        { type: 'websocket', port: relayPort, auth: 'none', supabase: true, ringSize: 1000 },
        { type: 'feed', kafka: { brokers: kafka.brokers }, name: FEED },
      ],
    });
    const setup = await runCli(['setup', '-c', file]);
    assert.equal(setup.code, 0, setup.stderr);
    relay = spawnRelay(file);
    await relay.waitForLog(/"msg":"streaming"/);
    edges.push(await startEdge(), await startEdge());
  });

  after(async () => {
    for (const edge of edges) edge.process.signal('SIGKILL');
    relay?.signal('SIGTERM');
    await relay?.exited;
    await Promise.all([pg?.stop(), kafka?.stop()]);
  });

  it('sends the same change frames as the relay\'s own websocket sink, byte for byte, in the same order; the topic has one partition', async () => {
    const clients = await Promise.all([relayPort, edges[0].port, edges[1].port].map(connect));
    for (const client of clients) await subscribe(client, {});
    await pg.query(`INSERT INTO items SELECT g, 9223372036854775807 - g, 12345678901234567890.0123456789, E'line\\n"two"' FROM generate_series(1, 20) g`);
    for (let i = 1; i <= 10; i++) await pg.query(`UPDATE items SET note = 'update ${i}' WHERE id = ${i}`);
    await pg.query('DELETE FROM items WHERE id > 15');
    for (const client of clients) await waitFor(() => client.changes.length >= 35, { what: `35 changes (have ${client.changes.length})` });
    assert.equal(clients[0].changes.length, 35);
    assert.match(clients[0].changes[0], /"big":"9223372036854775806"/);
    assert.deepEqual(clients[1].changes, clients[0].changes, 'edge 1 = relay');
    assert.deepEqual(clients[2].changes, clients[0].changes, 'edge 2 = relay');
    for (const client of clients) client.ws.close();
    const admin = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const [topic] = (await admin.fetchTopicMetadata({ topics: [FEED] })).topics;
    assert.equal(topic.partitions.length, 1, 'one partition: the commit order is total');
    await admin.disconnect();
  });

  it('kill -9 of an edge while writes go on: the client resumes on the other edge with since and gets every missed change once, in order', async () => {
    const client = await connect(edges[0].port);
    await subscribe(client, {});
    let writing = true;
    let next = 100;
    const writer = (async () => {
      while (writing) {
        await pg.query('INSERT INTO items (id, note) VALUES ($1, $2)', [next, `row ${next}`]);
        next++;
      }
    })();
    await waitFor(() => client.changes.length >= 10, { what: '10 changes before the kill' });
    edges[0].process.signal('SIGKILL');
    await edges[0].process.exited;
    const seen = [...client.changes];
    const resumed = await connect(edges[1].port);
    await subscribe(resumed, { since: idOf(seen[seen.length - 1]) });
    await waitFor(() => next > 200, { what: 'writes after the kill', timeoutMs: 60_000 });
    writing = false;
    await writer;
    const written = next - 100;
    await waitFor(() => seen.length + resumed.changes.length >= written, { what: `${written} changes in all (have ${seen.length + resumed.changes.length})` });
    assert.deepEqual([...seen, ...resumed.changes].map(rowOf), Array.from({ length: written }, (_, at) => `insert:${100 + at}`), 'every insert once, in order');
    resumed.ws.close();
  });

  it('an edge started late serves since from the topic, and answers resume_gap beyond it', async () => {
    const reference = await connect(relayPort);
    await subscribe(reference, {});
    await pg.query(`INSERT INTO items (id, note) SELECT g, 'late ' || g FROM generate_series(1000, 1009) g`);
    await waitFor(() => reference.changes.length >= 10, { what: 'the reference changes' });
    edges[0] = await startEdge();
    const client = await connect(edges[0].port);
    await subscribe(client, { since: idOf(reference.changes[2]) });
    await waitFor(() => client.changes.length >= 7, { what: 'the replay of 7 changes' });
    assert.deepEqual(client.changes, reference.changes.slice(3));
    const gap = await connect(edges[0].port);
    gap.send({ type: 'subscribe', id: 's', table: 'public.items', since: '0000000000000001-0000000000' });
    await waitFor(() => gap.other.some((frame) => frame.type === 'error'), { what: 'resume_gap' });
    assert.equal(gap.other.find((frame) => frame.type === 'error').code, 'resume_gap');
    for (const item of [reference, client, gap]) item.ws.close();
  });

  it('serves realtime-js postgres_changes with Realtime\'s values', async () => {
    for (const vsn of ['1.0.0', '2.0.0']) {
      const client = new RealtimeClient(`ws://127.0.0.1:${edges[1].port}/realtime/v1`, { params: { apikey: 'anything' }, vsn, transport: WebSocket as any } as any);
      const changes: any[] = [];
      await new Promise<void>((resolve, reject) => {
        client.channel(`items-${vsn}`).on('postgres_changes' as any, { event: '*', schema: 'public', table: 'items' }, (change: any) => changes.push(change))
          .subscribe((status: string, error?: Error) => (status === 'SUBSCRIBED' ? resolve() : status === 'CHANNEL_ERROR' ? reject(error ?? new Error(status)) : undefined));
      });
      const id = vsn === '1.0.0' ? 5000 : 5001;
      await pg.query(`INSERT INTO items VALUES (${id}, 9223372036854775807, 1.5, 'rt')`);
      await waitFor(() => changes.length >= 1, { what: `realtime change (vsn ${vsn})` });
      assert.equal(changes[0].eventType, 'INSERT');
      assert.deepEqual(changes[0].new, { id, big: Number('9223372036854775807'), price: 1.5, note: 'rt' });
      await client.disconnect();
    }
  });

  it('a realtime-js client named with walrelay_client resumes on another edge after kill -9 of its edge (its point is kept in the compacted topic beside the feed)', async () => {
    await realtimeResumeAcrossEdges(pg, edges[0], edges[1], 7000);
  });

  it('a kill -9 while inserts go on loses nothing; at most the changes sent just before it come again', async () => {
    edges[0] = await startEdge();
    const { repeated } = await realtimeResumeAcrossEdges(pg, edges[0], edges[1], 7100, { killWhileWriting: true });
    console.log(`# changes repeated after the kill: ${repeated}`);
  });

  it('refuses a feed topic with several partitions (its order would not be total), with the code and a hint', async () => {
    const admin = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'edges.kafka.three', numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const file = writeConfig({
      source: { url: pg.url, slot: 'edges_kafka_three', publication: 'edges_kafka_three' },
      sinks: [{ type: 'feed', kafka: { brokers: kafka.brokers }, name: 'edges.kafka.three' }],
    });
    assert.equal((await runCli(['setup', '-c', file])).code, 0);
    const run = await runCli(['run', '-c', file]);
    await pg.query(`SELECT pg_drop_replication_slot('edges_kafka_three')`);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /FEED_KAFKA_PARTITIONS: topic edges\.kafka\.three has 3 partitions/);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  it('an edge started before the feed topic exists serves at once, not ready until the topic is there', async () => {
    const early = await startEdgeOn({ kafka: { brokers: kafka.brokers }, name: 'edges.kafka.later' });
    edges.push(early);
    const ready = async () => {
      const response = await fetch(`http://127.0.0.1:${early.httpPort}/readyz`);
      return { status: response.status, body: await response.text() };
    };
    const before = await ready();
    assert.equal(before.status, 503);
    assert.match(before.body, /edges\.kafka\.later/);
    const admin = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'edges.kafka.later', numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    await waitFor(async () => (await ready()).status === 200, { what: '/readyz 200 once the topic exists', timeoutMs: 20_000 });
  });

  it('edges hold no replication slot, answer /readyz from their feed, report feed lag, and get what was committed during a Kafka outage', async () => {
    const slots = await pg.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots');
    assert.deepEqual(slots.map((slot) => slot.slot_name), ['edges_kafka']);
    const base = `http://127.0.0.1:${edges[1].httpPort}`;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    await waitFor(async () => /walrelay_edge_feed_lag_entries 0\b/.test(await (await fetch(`${base}/metrics`)).text()), { what: 'lag 0 entries' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /walrelay_edge_feed_events_total [1-9]\d*/);
    assert.match(metrics, /walrelay_edge_feed_lag_ms \d+/);
    assert.match(metrics, /walrelay_websocket_frames_sent_total\{sink="websocket#0"\} [1-9]\d*/);
    // Rows committed while Kafka is down wait in the relay (the feed sink retries the batch) and reach the edge once it is back.
    const client = await connect(edges[1].port);
    await subscribe(client, {});
    await kafka.pause();
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 503, { what: '/readyz 503 without Kafka', timeoutMs: 30_000 });
    await pg.query(`INSERT INTO items (id, note) SELECT g, 'outage' FROM generate_series(9000, 9004) g`);
    await kafka.resume();
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { what: '/readyz 200 with Kafka back', timeoutMs: 30_000 });
    await waitFor(() => client.changes.length >= 5, { what: `the 5 rows committed during the outage (have ${client.changes.length})`, timeoutMs: 30_000 });
    assert.deepEqual(client.changes.map(rowOf), ['insert:9000', 'insert:9001', 'insert:9002', 'insert:9003', 'insert:9004']);
    client.ws.close();
  });
});
