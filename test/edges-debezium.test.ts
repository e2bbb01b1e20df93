// An edge's websocket sink with format: debezium sends the relay's frames:
// the feed sink carries what Debezium's rendering needs (PostgreSQL's text
// values, column types, the previous commit) when `debeziumOrigins` is set.
// Without it an edge cannot render Debezium's values and says so.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { setupAndSpawnRelay, type RelayProcess } from './harness/relay.js';
import { startEdge, connect, subscribe, type Edge } from './harness/edges.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';

const DEBEZIUM = { format: 'debezium', debezium: { decimalHandlingMode: 'precise' } };
/** The envelope's processing time differs between any two renderings; everything else must not. */
const withoutProcessingTime = (frame: string) => frame.replace(/"ts_ms":\d+,"ts_us":\d+,"ts_ns":\d+\}/, '"ts":0}').replace(/"op":"m","ts_ms":\d+/, '"op":"m","ts_ms":0');

describe('walrelay edge, websocket format debezium', () => {
  let pg: TestPostgres;
  let redis: TestRedis;
  let relay: RelayProcess;
  let relayPort: number;
  const edges: Edge[] = [];

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres('pg15'), startRedis()]);
    await pg.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN price AS numeric(12,2);
      CREATE TABLE items (id int PRIMARY KEY, big int8, amount price, feeling mood, tags text[], moods mood[], at timestamptz, doc jsonb, note text);
      ALTER TABLE items ALTER COLUMN note SET STORAGE EXTERNAL;`);
    relayPort = await freePort();
    relay = await setupAndSpawnRelay({
      source: { url: pg.url, slot: 'edges_dbz', publication: 'edges_dbz' },
      sinks: [
        { type: 'websocket', port: relayPort, auth: 'none', ...DEBEZIUM },
        { type: 'feed', redis: { url: redis.url }, name: 'with.origins', debeziumOrigins: true },
        { type: 'feed', redis: { url: redis.url }, name: 'without.origins' },
      ],
    });
    edges.push(await startEdge({ redis: { url: redis.url }, name: 'with.origins' }, DEBEZIUM));
    edges.push(await startEdge({ redis: { url: redis.url }, name: 'without.origins' }, DEBEZIUM));
  });

  after(async () => {
    for (const edge of edges) edge.process.signal('SIGKILL');
    relay?.signal('SIGKILL');
    await Promise.all([pg?.stop(), redis?.stop()]);
  });

  it('sends the relay\'s Debezium frames byte for byte (but for the processing time) when the feed carries origins', async () => {
    const [atRelay, atEdge, atPlainEdge] = await Promise.all([relayPort, edges[0].port, edges[1].port].map(connect));
    for (const client of [atRelay, atEdge, atPlainEdge]) await subscribe(client, {});
    await pg.query(`INSERT INTO items SELECT g, 9223372036854775807 - g, g * 1.25, 'happy', ARRAY['a', 'b"c'], ARRAY['ok', 'sad']::mood[], '2026-12-06 01:02:03.456789+00', '{"k": [1, 2.50]}', repeat('x', 10000) FROM generate_series(1, 5) g`);
    await pg.query(`UPDATE items SET feeling = 'sad' WHERE id <= 2`); // note is TOASTed and unchanged: Debezium's placeholder
    await pg.query(`UPDATE items SET id = 10 WHERE id = 3`); // a key change: delete and create
    await pg.query('DELETE FROM items WHERE id = 4');
    const count = 5 + 2 + 2 + 1;
    for (const client of [atRelay, atEdge]) await waitFor(() => client.changes.length >= count, { what: `${count} changes (have ${client.changes.length})` });
    assert.equal(atRelay.changes.length, count);
    await waitFor(() => /"op":"d"/.test(atPlainEdge.changes.at(-1) ?? ''), { what: 'the delete on the edge without origins' });
    assert.match(atRelay.changes[5], /__debezium_unavailable_value/, 'the relay rendered the unchanged TOASTed value as Debezium does');
    const database = new URL(pg.url).pathname.slice(1);
    assert.equal(JSON.parse(atRelay.changes[0]).event.source.db, database, 'source.db names the database, as Debezium Server writes it');
    assert.deepEqual(atEdge.changes.map(withoutProcessingTime), atRelay.changes.map(withoutProcessingTime));
    // Without origins the values are walrelay's (the numeric as a number, not Debezium's bytes): this comparison could fail.
    assert.notDeepEqual(atPlainEdge.changes.map(withoutProcessingTime), atRelay.changes.map(withoutProcessingTime));
    for (const client of [atRelay, atEdge, atPlainEdge]) client.ws.close();
  });

  it('names the fix on an edge whose feed carries no origins', async () => {
    await edges[1].process.waitForLog(/debeziumOrigins/);
    assert.match(edges[1].process.logs(), /"level":40.*debeziumOrigins: true/);
  });
});
