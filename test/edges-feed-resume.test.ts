// Resume on `walrelay edge` reaches as far back as the feed holds, not only
// as far as an edge's ring (docs/edges.md): edges with ringSize 50, 2,000
// rows written, a client resumes with `since` from early on on another edge
// (and on a restarted one) while writes go on, and gets every change it
// missed once, in order, the same frames, no gap; a `since` the feed no
// longer holds (trimmed, as maxLen or retention would) gets resume_gap.
// The same for Realtime clients named with walrelay_client. Both feeds:
// Redis and Kafka.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Kafka, logLevel } from 'kafkajs';
import { RealtimeClient } from '@supabase/realtime-js';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { startEdge, connect, subscribe, idOf, rowOf, type Edge, type Client } from './harness/edges.js';
import { waitFor } from './harness/wait.js';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/** CPU seconds (user + system) a process has used, from /proc: a measurement printed beside the tests, never asserted. */
const cpuSeconds = (edge: Edge): number => {
  const fields = readFileSync(`/proc/${edge.process.child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const RING = 50;

interface FeedUnderTest {
  kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The feed sink's transport keys (redis or kafka). */
  transport(): Record<string, unknown>;
  /** Removes every entry but the newest `keep`, as maxLen or the topic's retention would. */
  keepNewest(feed: string, keep: number): Promise<void>;
}

function redisFeed(): FeedUnderTest {
  let redis: TestRedis;
  return {
    kind: 'Redis',
    start: async () => { redis = await startRedis(); },
    stop: async () => { await redis?.stop(); },
    transport: () => ({ redis: { url: redis.url } }),
    keepNewest: async (feed, keep) => {
      const admin = redis.client();
      await admin.xtrim(feed, 'MAXLEN', keep);
      admin.disconnect();
    },
  };
}

function kafkaFeed(): FeedUnderTest {
  let kafka: TestKafka;
  return {
    kind: 'Kafka',
    start: async () => { kafka = await startKafka(); },
    stop: async () => { await kafka?.stop(); },
    transport: () => ({ kafka: { brokers: kafka.brokers } }),
    keepNewest: async (feed, keep) => {
      const admin = new Kafka({ brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const [{ high }] = await admin.fetchTopicOffsets(feed);
      await admin.deleteTopicRecords({ topic: feed, partitions: [{ partition: 0, offset: String(Number(high) - keep) }] });
      await admin.disconnect();
    },
  };
}

for (const feed of [redisFeed(), kafkaFeed()]) {
  describe(`edge resume reaches back as far as the ${feed.kind} feed holds (ringSize ${RING})`, () => {
    const FEED = `edges.reach.${feed.kind.toLowerCase()}`;
    let pg: TestPostgres;
    let relay: RelayProcess;
    const edges: Edge[] = [];
    let watcher: Client;
    const edgeOf = () => startEdge({ ...feed.transport(), name: FEED }, { ringSize: RING });
    let nextId = 1;
    /** Inserts `count` rows in transactions of 100. */
    const insertRows = async (count: number) => {
      for (let done = 0; done < count; done += 100) {
        const rows = Math.min(100, count - done);
        await pg.query(`INSERT INTO items (id, note) SELECT g, 'row ' || g FROM generate_series(${nextId}, ${nextId + rows - 1}) g`);
        nextId += rows;
      }
    };

    before(async () => {
      [pg] = await Promise.all([startPostgres('pg15'), feed.start()]);
      await pg.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
      const slot = `reach_${feed.kind.toLowerCase()}`;
      const file = writeConfig({
        source: { url: pg.url, slot, publication: slot },
        sinks: [{ type: 'feed', ...feed.transport(), name: FEED }],
      });
      const setup = await runCli(['setup', '-c', file]);
      assert.equal(setup.code, 0, setup.stderr);
      relay = spawnRelay(file);
      await relay.waitForLog(/"msg":"streaming"/);
      edges.push(await edgeOf(), await edgeOf());
      watcher = await connect(edges[0].port); // every change, as edge A sent it live
      await subscribe(watcher, {});
    });

    after(async () => {
      watcher?.ws.close();
      for (const edge of edges) edge.process.signal('SIGKILL');
      relay?.signal('SIGTERM');
      await relay?.exited;
      await Promise.all([pg?.stop(), feed.stop()]);
    });

    /** Waits until edge A's live client has every row inserted so far. */
    const watched = () => waitFor(() => watcher.changes.length >= nextId - 1, { what: `${nextId - 1} changes on edge A (have ${watcher.changes.length})`, timeoutMs: 60_000 });

    it('a since from early on, on another edge, while writes go on: every missed change once, in order, the same frames, no gap', async () => {
      const [liveA, liveB] = [cpuSeconds(edges[0]), cpuSeconds(edges[1])];
      await insertRows(2000);
      await watched();
      console.log(`# ${feed.kind}: 2,000 changes live: edge A (one client) ${((cpuSeconds(edges[0]) - liveA) * 1e6 / 2000).toFixed(0)} µs CPU per change, edge B (no client) ${((cpuSeconds(edges[1]) - liveB) * 1e6 / 2000).toFixed(0)}; load ${loadavg()[0].toFixed(1)}`);
      const since = idOf(watcher.changes[99]);
      let writing = true;
      const writer = (async () => {
        while (writing) await insertRows(1);
      })();
      const resumed = await connect(edges[1].port);
      try {
        await subscribe(resumed, { since });
        await waitFor(() => resumed.changes.length >= 1900, { what: `the catch-up (have ${resumed.changes.length})`, timeoutMs: 60_000 });
        const writtenAtCatchUp = nextId;
        await waitFor(() => nextId > writtenAtCatchUp + 50, { what: 'writes after the catch-up' });
      } finally {
        writing = false;
        await writer;
      }
      await watched();
      await waitFor(() => resumed.changes.length >= watcher.changes.length - 100, { what: `every change after since (have ${resumed.changes.length} of ${watcher.changes.length - 100})` });
      assert.deepEqual(resumed.other.filter((frame) => frame.type === 'error'), [], 'no resume_gap');
      assert.equal(resumed.changes.length, watcher.changes.length - 100);
      assert.deepEqual(resumed.changes.map(rowOf), watcher.changes.slice(100).map(rowOf), 'every change once, in order');
      assert.deepEqual(resumed.changes, watcher.changes.slice(100), 'the same frames as edge A sent live');
      resumed.ws.close();
    });

    it('the same after kill -9 and a restart of the edge (its ring holds only the newest 50)', async () => {
      edges[1].process.signal('SIGKILL');
      await edges[1].process.exited;
      edges[1] = await edgeOf();
      const resumed = await connect(edges[1].port);
      const before = cpuSeconds(edges[1]);
      await subscribe(resumed, { since: idOf(watcher.changes[99]) });
      await waitFor(() => resumed.changes.length >= watcher.changes.length - 100, { what: `the catch-up after a restart (have ${resumed.changes.length})`, timeoutMs: 60_000 });
      const caughtUp = resumed.changes.length;
      console.log(`# ${feed.kind}: catch-up of ${caughtUp} changes from the feed: ${((cpuSeconds(edges[1]) - before) * 1e6 / caughtUp).toFixed(0)} µs edge CPU per change (locating included); load ${loadavg()[0].toFixed(1)}`);
      assert.deepEqual(resumed.changes, watcher.changes.slice(100));
      // A filter applies to what is read from the feed as to live changes: the same frames, for the rows it selects.
      const filtered = await connect(edges[1].port);
      await subscribe(filtered, { since: idOf(watcher.changes[99]), filter: 'id=lt.1500' });
      const expected = watcher.changes.slice(100).filter((frame) => JSON.parse(frame).event.new.id < 1500);
      await waitFor(() => filtered.changes.length >= expected.length, { what: `the filtered catch-up (have ${filtered.changes.length} of ${expected.length})` });
      await pg.query(`INSERT INTO items (id, note) VALUES (${nextId++}, 'after the filtered catch-up')`);
      await watched();
      assert.deepEqual(filtered.changes, expected, 'only the rows the filter selects, nothing after them');
      for (const client of [resumed, filtered]) client.ws.close();
    });

    it('a since the feed no longer holds gets resume_gap; one it still holds beyond the ring is served', async () => {
      await feed.keepNewest(FEED, 500);
      const gap = await connect(edges[1].port);
      gap.send({ type: 'subscribe', id: 's', table: 'public.items', since: idOf(watcher.changes[99]) });
      await waitFor(() => gap.other.some((frame) => frame.type === 'error' || frame.type === 'subscribed'), { what: 'an answer to since' });
      assert.equal(gap.other[0].code, 'resume_gap', JSON.stringify(gap.other));
      assert.equal(gap.changes.length, 0);
      const held = await connect(edges[0].port);
      const from = watcher.changes.length - 300;
      await subscribe(held, { since: idOf(watcher.changes[from - 1]) });
      await waitFor(() => held.changes.length >= 300, { what: `300 changes from the trimmed feed (have ${held.changes.length})` });
      assert.deepEqual(held.changes, watcher.changes.slice(from));
      for (const client of [gap, held]) client.ws.close();
    });

    /** A realtime-js client named `name` on `port`, subscribed to inserts of items; its row ids and system messages. */
    const realtime = async (port: number, name: string) => {
      const client = new RealtimeClient(`ws://127.0.0.1:${port}/realtime/v1`, { params: { apikey: 'anything', walrelay_client: name }, transport: WebSocket as any } as any);
      const got: number[] = [];
      const system: string[] = [];
      await new Promise<void>((resolve, reject) => {
        client.channel('reach')
          .on('postgres_changes' as any, { event: 'INSERT', schema: 'public', table: 'items' }, (change: any) => got.push(change.new.id))
          .on('system' as any, {}, (message: any) => { if (message.extension === 'walrelay') system.push(`${message.status}: ${message.message}`); })
          .subscribe((status: string, error?: Error) => (status === 'SUBSCRIBED' ? resolve() : status === 'CHANNEL_ERROR' ? reject(error ?? new Error(status)) : undefined));
      });
      return { client, got, system };
    };

    it('a Realtime client named with walrelay_client rejoins on another edge 1,000 changes later: every one once, in order, then live ones', async () => {
      const first = await realtime(edges[0].port, 'reach');
      const start = nextId;
      await insertRows(5);
      await waitFor(() => first.got.length >= 5, { what: '5 rows on edge A' });
      await first.client.disconnect();
      await insertRows(1000); // edge A saves the point when the socket ends, before these reach it
      await watched();
      const again = await realtime(edges[1].port, 'reach');
      await insertRows(10);
      const expected = Array.from({ length: 1010 }, (_, at) => start + 5 + at);
      await waitFor(() => again.got.length >= 1010, { what: `1,010 rows after the rejoin (have ${again.got.length}; system ${again.system.join(' | ')})`, timeoutMs: 60_000 });
      assert.deepEqual(again.system, []);
      assert.deepEqual(again.got, expected, 'every row once, in order');
      await again.client.disconnect();
    });

    it('a Realtime client whose point the feed no longer holds gets the walrelay system error', async () => {
      const first = await realtime(edges[0].port, 'reach-gap');
      await insertRows(1);
      await waitFor(() => first.got.length >= 1, { what: 'a row on edge A' });
      await first.client.disconnect();
      await insertRows(600);
      await watched();
      await feed.keepNewest(FEED, 300);
      const again = await realtime(edges[1].port, 'reach-gap');
      await waitFor(() => again.system.length >= 1, { what: 'the system error' });
      assert.match(again.system[0], /^error: /);
      assert.equal(again.got.length, 0);
      await again.client.disconnect();
    });
  });
}
