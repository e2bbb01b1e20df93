// walrelay edge (docs/edges.md): the relay writes its feed sink to Redis;
// edges (real `walrelay edge` processes, no PostgreSQL) serve websocket
// clients from it. Frames are compared byte for byte with the relay's own
// websocket sink; resume with `since` survives an edge's kill -9 and works
// on another edge and on an edge started late; realtime-js works on an edge;
// edges hold no replication slot.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { startEdge as startEdgeOn, connect, subscribe, idOf, rowOf, type Edge } from './harness/edges.js';
import { edgeScenarios } from './harness/edge-scenarios.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';
import { startRedisCluster, type TestRedisCluster } from './harness/redis-cluster.js';

const FEED = 'edges.test.feed';

/** An edge reading the Redis feed FEED. */
const startEdge = (url: string, cluster = false): Promise<Edge> => startEdgeOn({ redis: { url, cluster }, name: FEED });

describe('walrelay edge served from a Redis feed', () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  let relay: RelayProcess;
  let relayPort: number;
  const edges: Edge[] = [];
  const scenarios = edgeScenarios(() => ({ pg, relayPort, edges, startEdge: () => startEdge(redis.url) }));

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, big int8, price numeric(30,10), note text)');
    relayPort = await freePort();
    const file = writeConfig({
      source: { url: pg.url, slot: 'edges', publication: 'edges' },
      sinks: [
        { type: 'websocket', port: relayPort, auth: 'none', supabase: true, ringSize: 1000 },
        { type: 'feed', redis: { url: redis.url }, name: FEED, maxLen: 1000 },
      ],
    });
    const setup = await runCli(['setup', '-c', file]);
    assert.equal(setup.code, 0, setup.stderr);
    relay = spawnRelay(file);
    await relay.waitForLog(/"msg":"streaming"/);
    edges.push(await startEdge(redis.url), await startEdge(redis.url));
  });

  after(async () => {
    for (const edge of edges) edge.process.signal('SIGKILL');
    relay?.signal('SIGTERM');
    await relay?.exited;
    await Promise.all([pg?.stop(), redis?.stop()]);
  });

  it('sends the same change frames as the relay\'s own websocket sink, byte for byte, in the same order', scenarios.sameFramesAsRelay);

  it('kill -9 of an edge while writes go on: the client resumes on the other edge with since and gets every missed change once, in order', scenarios.resumeOnTheOtherEdgeAfterKill);

  it('an edge started late serves since from the feed, and answers resume_gap beyond it', scenarios.lateEdgeServesSince);

  it('serves realtime-js postgres_changes with Realtime\'s values (column types came through the feed)', scenarios.realtimePostgresChanges);

  it('skips an event the feed holds twice (a batch the relay retried or re-sent after a restart)', async () => {
    const client = await connect(edges[1].port);
    await subscribe(client, {});
    await pg.query(`INSERT INTO items (id, note) VALUES (6000, 'once')`);
    await waitFor(() => client.changes.length >= 1, { what: 'the insert' });
    const admin = redis.client();
    const [[, fields]] = await admin.xrevrange(FEED, '+', '-', 'COUNT', 1);
    await admin.xadd(FEED, '*', ...fields); // the same event again, as a retried XADD would append it
    await pg.query(`INSERT INTO items (id, note) VALUES (6001, 'next')`);
    await waitFor(() => client.changes.length >= 2, { what: 'the next insert' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(client.changes.map(rowOf), ['insert:6000', 'insert:6001']);
    admin.disconnect();
    client.ws.close();
  });

  it('refuses a bad edge configuration with exit code 2 and the key named', async () => {
    const missing = await runCli(['edge', '-c', writeConfig({ feed: { name: 'x' }, sinks: [{ type: 'websocket', auth: 'none' }] })]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /feed: expected exactly one of redis or kafka/);
    const wrongSink = await runCli(['edge', '-c', writeConfig({ feed: { redis: { url: redis.url } }, sinks: [{ type: 'redis' }] })]);
    assert.equal(wrongSink.code, 2, wrongSink.stderr);
    assert.match(wrongSink.stderr, /sinks\[0\]/);
    assert.doesNotMatch(missing.stderr + wrongSink.stderr, /\n\s+at /, 'no stack trace');
  });

  it('a realtime-js client named with walrelay_client resumes on another edge after kill -9 of its edge (its point is kept in the feed\'s Redis)', scenarios.realtimeResumeAfterKill);

  it('a kill -9 while inserts go on loses nothing; at most the changes sent just before it come again', scenarios.killWhileInsertingLosesNothing);

  it('edges hold no replication slot, answer /readyz from their feed, and report feed lag', async () => {
    const slots = await pg.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots');
    assert.deepEqual(slots.map((slot) => slot.slot_name), ['edges']);
    const base = `http://127.0.0.1:${edges[1].httpPort}`;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    // The gauges are set every second: the tests above inserted rows just now.
    await waitFor(async () => /walrelay_edge_feed_lag_entries 0\b/.test(await (await fetch(`${base}/metrics`)).text()), { what: 'lag 0 entries' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /walrelay_edge_feed_events_total \d+/);
    assert.match(metrics, /walrelay_websocket_clients\{sink="websocket#0"\} \d+/);
    assert.match(metrics, /walrelay_websocket_frames_sent_total\{sink="websocket#0"\} [1-9]\d*/, 'the clients of the tests above got frames from this edge');
    await redis.shutdownSaving();
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 503, { what: '/readyz 503 without Redis', timeoutMs: 15_000 });
    await redis.restart();
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { what: '/readyz 200 with Redis back', timeoutMs: 15_000 });
  });
});

describe('walrelay edge served from a feed in Redis Cluster', () => {
  let pg: TestPostgres;
  let cluster: TestRedisCluster;
  let relay: RelayProcess;
  let edge: Edge;
  let relayPort: number;

  before(async () => {
    [pg, cluster] = await Promise.all([startPostgres('pg15'), startRedisCluster()]);
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
    relayPort = await freePort();
    const file = writeConfig({
      source: { url: pg.url, slot: 'edges_cluster', publication: 'edges_cluster' },
      sinks: [
        { type: 'websocket', port: relayPort, auth: 'none', ringSize: 100 },
        { type: 'feed', redis: { url: cluster.url, cluster: true }, name: FEED },
      ],
    });
    const setup = await runCli(['setup', '-c', file]);
    assert.equal(setup.code, 0, setup.stderr);
    relay = spawnRelay(file);
    await relay.waitForLog(/"msg":"streaming"/);
    edge = await startEdge(cluster.url, true);
  });

  after(async () => {
    edge?.process.signal('SIGKILL');
    relay?.signal('SIGTERM');
    await relay?.exited;
    await Promise.all([pg?.stop(), cluster?.stop()]);
  });

  it('serves the relay\'s frames from the one feed stream on its shard, and since on a restarted edge', async () => {
    const clients = await Promise.all([relayPort, edge.port].map(connect));
    for (const client of clients) await subscribe(client, {});
    await pg.query(`INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 20) g`);
    for (const client of clients) await waitFor(() => client.changes.length >= 20, { what: `20 changes (have ${client.changes.length})` });
    assert.deepEqual(clients[1].changes, clients[0].changes);
    edge.process.signal('SIGKILL');
    await edge.process.exited;
    edge = await startEdge(cluster.url, true);
    const resumed = await connect(edge.port);
    await subscribe(resumed, { since: idOf(clients[0].changes[9]) });
    await waitFor(() => resumed.changes.length >= 10, { what: 'the replay' });
    assert.deepEqual(resumed.changes, clients[0].changes.slice(10));
    for (const client of [...clients, resumed]) client.ws.close();
  });
});
