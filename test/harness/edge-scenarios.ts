// The scenarios both feeds must pass (test/edges.test.ts over Redis,
// test/edges-kafka.test.ts over Kafka): each a test body, run against that
// file's relay (with its own websocket sink, for reference frames) and its
// edges. What only one feed has stays in its file.
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RealtimeClient } from '@supabase/realtime-js';
import type { TestPostgres } from './postgres.js';
import { connect, subscribe, idOf, rowOf, realtimeResumeAcrossEdges, type Edge } from './edges.js';
import { waitFor } from './wait.js';

/** The first id the writer of resumeOnTheOtherEdgeAfterKill inserts. */
const WRITER_FIRST_ID = 100_000;

/** What a scenario runs against; read when it runs (the file's `before` sets it up). */
export interface EdgeScenarioSetting {
  pg: TestPostgres;
  /** The relay's own websocket sink. */
  relayPort: number;
  /** Two running edges at [0] and [1]; a scenario that kills one starts another in its place. */
  edges: Edge[];
  /** A new edge reading this file's feed. */
  startEdge(): Promise<Edge>;
}

export function edgeScenarios(setting: () => EdgeScenarioSetting) {
  return {
    async sameFramesAsRelay(): Promise<void> {
      const { pg, relayPort, edges } = setting();
      const clients = await Promise.all([relayPort, edges[0].port, edges[1].port].map(connect));
      for (const client of clients) await subscribe(client, {});
      // Values a parse and re-serialise would change: int8 beyond 2^53, numeric with 30 digits, text with newlines and quotes.
      await pg.query(`INSERT INTO items SELECT g, 9223372036854775807 - g, 12345678901234567890.0123456789, E'line\\n"two"' FROM generate_series(1, 20) g`);
      for (let i = 1; i <= 10; i++) await pg.query(`UPDATE items SET note = 'update ${i}' WHERE id = ${i}`);
      await pg.query('DELETE FROM items WHERE id > 15');
      for (const client of clients) await waitFor(() => client.changes.length >= 35, { what: `35 changes (have ${client.changes.length})` });
      assert.equal(clients[0].changes.length, 35);
      assert.match(clients[0].changes[0], /"big":"9223372036854775806"/);
      assert.deepEqual(clients[1].changes, clients[0].changes, 'edge 1 = relay');
      assert.deepEqual(clients[2].changes, clients[0].changes, 'edge 2 = relay');
      for (const client of clients) client.ws.close();
    },

    /** Kills edges[0] while writes go on; starts another in its place at the end. */
    async resumeOnTheOtherEdgeAfterKill(): Promise<void> {
      const { pg, edges, startEdge } = setting();
      const client = await connect(edges[0].port);
      await subscribe(client, {});
      let writing = true;
      // Ids of their own, far above the other scenarios' fixed ones: on a fast machine the writer gets through
      // hundreds of rows while the edge is killed and the client resumes.
      let next = WRITER_FIRST_ID;
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
      const last = idOf(seen[seen.length - 1]);
      const resumed = await connect(edges[1].port);
      await subscribe(resumed, { since: last });
      await waitFor(() => next > WRITER_FIRST_ID + 100, { what: 'writes after the kill', timeoutMs: 60_000 });
      writing = false;
      await writer;
      const written = next - WRITER_FIRST_ID;
      await waitFor(() => seen.length + resumed.changes.length >= written, { what: `${written} changes in all (have ${seen.length + resumed.changes.length})` });
      const all = [...seen, ...resumed.changes].map(rowOf);
      assert.deepEqual(all, Array.from({ length: written }, (_, at) => `insert:${WRITER_FIRST_ID + at}`), 'every insert once, in order');
      const ids = [...seen, ...resumed.changes].map(idOf);
      assert.deepEqual(ids, [...ids].sort(), 'ids ascend');
      resumed.ws.close();
      edges[0] = await startEdge(); // for the tests below
    },

    /** Starts an edge after the writes (kept in `edges`, after the others). */
    async lateEdgeServesSince(): Promise<void> {
      const { pg, relayPort, edges, startEdge } = setting();
      const reference = await connect(relayPort);
      await subscribe(reference, {});
      await pg.query(`INSERT INTO items (id, note) SELECT g, 'late ' || g FROM generate_series(1000, 1009) g`);
      await waitFor(() => reference.changes.length >= 10, { what: 'the reference changes' });
      const late = await startEdge();
      edges.push(late);
      const client = await connect(late.port);
      await subscribe(client, { since: idOf(reference.changes[2]) });
      await waitFor(() => client.changes.length >= 7, { what: 'the replay of 7 changes' });
      assert.deepEqual(client.changes, reference.changes.slice(3));
      const gap = await connect(late.port);
      gap.send({ type: 'subscribe', id: 's', table: 'public.items', since: '0000000000000001-0000000000' });
      await waitFor(() => gap.other.some((frame) => frame.type === 'error'), { what: 'resume_gap' });
      assert.equal(gap.other.find((frame) => frame.type === 'error').code, 'resume_gap');
      for (const item of [reference, client, gap]) item.ws.close();
    },

    async realtimePostgresChanges(): Promise<void> {
      const { pg, edges } = setting();
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
        // int8 as a JSON number, as Realtime sends it (realtime-js parses it to the nearest double).
        assert.deepEqual(changes[0].new, { id, big: Number('9223372036854775807'), price: 1.5, note: 'rt' });
        await client.disconnect();
      }
    },

    async realtimeResumeAfterKill(): Promise<void> {
      const { pg, edges } = setting();
      await realtimeResumeAcrossEdges(pg, edges[0], edges[1], 7000);
    },

    /** Starts another edges[0] (the scenario above killed it) and kills it while inserts go on. */
    async killWhileInsertingLosesNothing(): Promise<void> {
      const { pg, edges, startEdge } = setting();
      edges[0] = await startEdge();
      const { repeated } = await realtimeResumeAcrossEdges(pg, edges[0], edges[1], 7100, { killWhileWriting: true });
      console.log(`# changes repeated after the kill: ${repeated}`);
    },
  };
}
