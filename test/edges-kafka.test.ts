// walrelay edge over a Kafka feed (docs/edges.md): the relay's feed sink
// writes one Kafka topic of one partition (walrelay's own producer); edges
// (real `walrelay edge` processes) read it from the offset they need with
// walrelay's own Fetch code. Frames are compared byte for byte with the
// relay's own websocket sink; `since` survives an edge's kill -9 and works on
// another edge and on an edge started late; realtime-js works on an edge.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel } from 'kafkajs';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { startEdge as startEdgeOn, connect, subscribe, rowOf, type Edge } from './harness/edges.js';
import { edgeScenarios } from './harness/edge-scenarios.js';
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
  const scenarios = edgeScenarios(() => ({ pg, relayPort, edges, startEdge }));

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
    await scenarios.sameFramesAsRelay();
    const admin = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const [topic] = (await admin.fetchTopicMetadata({ topics: [FEED] })).topics;
    assert.equal(topic.partitions.length, 1, 'one partition: the commit order is total');
    await admin.disconnect();
  });

  it('kill -9 of an edge while writes go on: the client resumes on the other edge with since and gets every missed change once, in order', scenarios.resumeOnTheOtherEdgeAfterKill);

  it('an edge started late serves since from the topic, and answers resume_gap beyond it', scenarios.lateEdgeServesSince);

  it('serves realtime-js postgres_changes with Realtime\'s values', scenarios.realtimePostgresChanges);

  it('a realtime-js client named with walrelay_client resumes on another edge after kill -9 of its edge (its point is kept in the compacted topic beside the feed)', scenarios.realtimeResumeAfterKill);

  it('a kill -9 while inserts go on loses nothing; at most the changes sent just before it come again', scenarios.killWhileInsertingLosesNothing);

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
