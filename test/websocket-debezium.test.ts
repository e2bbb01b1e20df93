// The websocket sink with format debezium, as a Debezium consumer reads a
// primary-key change: the delete of the old key, then the create of the new
// one (two change frames; the tombstone between them matters only to
// compacted Kafka topics and is not sent).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { setupAndSpawnRelay, type RelayProcess } from './harness/relay.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';

describe('websocket sink, format debezium (PostgreSQL 15)', () => {
  let pgServer: TestPostgres;
  let relay: RelayProcess | undefined;
  let socket: WebSocket | undefined;
  const frames: any[] = [];

  before(async () => {
    pgServer = await startPostgres('pg15');
    const port = await freePort();
    await pgServer.query('CREATE TABLE rekey (id int PRIMARY KEY, n int NOT NULL)');
    relay = await setupAndSpawnRelay({
      source: { url: pgServer.url, tables: ['public.rekey'] },
      sinks: [{ type: 'websocket', port, auth: 'none', format: 'debezium' }],
    });
    socket = new WebSocket(`ws://127.0.0.1:${port}/`);
    socket.on('message', (data) => frames.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => { socket!.once('open', resolve); socket!.once('error', reject); });
    socket.send(JSON.stringify({ type: 'subscribe', id: 's', table: 'public.rekey' }));
    await waitFor(() => frames.some((frame) => frame.type === 'subscribed'), { what: 'the subscription' });
  });

  after(async () => {
    socket?.terminate();
    relay?.signal('SIGKILL');
    await pgServer?.stop();
  });

  it('sends a key change as the delete of the old key and the create of the new one', async () => {
    await pgServer.query('INSERT INTO rekey VALUES (1, 0)');
    await pgServer.query('UPDATE rekey SET id = 2, n = 1 WHERE id = 1');
    await pgServer.query('UPDATE rekey SET n = 2 WHERE id = 2');
    const changes = () => frames.filter((frame) => frame.type === 'change').map((frame) => [frame.event.op, frame.event.before?.id ?? null, frame.event.after?.id ?? null]);
    await waitFor(() => changes().length >= 3 && changes().at(-1)![0] === 'u', { what: 'the changes through the last update', timeoutMs: 30_000 })
      .catch((error) => { throw new Error(`${(error as Error).message}: got ${JSON.stringify(changes())}`); });
    assert.deepEqual(changes(), [['c', null, 1], ['d', 1, null], ['c', null, 2], ['u', null, 2]]); // REPLICA IDENTITY DEFAULT: an update has no before
  });
});
