// exactlyOnce: true with format: debezium on Kafka. One event is several
// records there (a delete and its tombstone; a key change is a delete, a
// tombstone and a create), so the exactly-once writer must skip and
// checkpoint by event while it sends by record.
//
// The crash that matters for exactly-once is one between Kafka's commit and
// PostgreSQL's confirmation: PostgreSQL then sends again what Kafka already
// has. That moment is made exact here with a copy of the slot taken before
// any change: walrelay delivers everything from the slot and is killed
// (-9); more changes are made; a walrelay with the same transactional id
// then streams from the copy, which re-sends all of it. Kafka must hold each
// record once, in order.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { consumeToEnd } from './harness/kafka-consume.js';
import { writeConfig, runCli, spawnRelay } from './harness/relay.js';
import { waitUntilConfirmed } from './harness/slot.js';

describe('Kafka exactly-once with the Debezium format (deletes, tombstones, key changes)', () => {
  let pgServer: TestPostgres;
  let kafka: TestKafka;

  const config = (slot: string) => writeConfig({
    source: { url: pgServer.url, slot, publication: 'eo_dbz', tables: ['public.items'] },
    sinks: [{
      type: 'kafka', name: 'dbz-eo', brokers: kafka.brokers, format: 'debezium', debezium: { topicPrefix: 'eo' },
      exactlyOnce: true, transactionalId: 'eo-dbz', createTopics: { partitions: 1, replicationFactor: 1 },
    }],
  });

  /** Until the slot confirmed everything written so far. */
  const confirmedAll = (slot: string) => waitUntilConfirmed(pgServer, slot, { intervalMs: 100 });

  before(async () => {
    [pgServer, kafka] = await Promise.all([startPostgres('pg18'), startKafka()]);
    await pgServer.query(`CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL)`);
  });

  after(async () => {
    await Promise.all([pgServer?.stop(), kafka?.stop()]);
  });

  it('PostgreSQL re-sending what Kafka committed adds nothing: every record once, in order, checkpoints name an event', async () => {
    const first = config('eo_dbz');
    assert.equal((await runCli(['setup', '-c', first])).code, 0);
    // Before any change: this copy re-sends everything, as after a crash before the confirmation.
    await pgServer.query(`SELECT pg_copy_logical_replication_slot('eo_dbz', 'eo_dbz_replay')`);

    await pgServer.query(`INSERT INTO items VALUES (1, 1), (2, 1), (3, 1), (4, 1)`);
    await pgServer.query(`UPDATE items SET id = 101 WHERE id = 1`);
    await pgServer.query(`DELETE FROM items WHERE id = 2`);
    await pgServer.query(`UPDATE items SET v = 2 WHERE id = 3`);

    const relay = spawnRelay(first);
    try {
      await confirmedAll('eo_dbz');
    } finally {
      relay.signal('SIGKILL');
      await relay.exited;
    }

    await pgServer.query(`BEGIN; INSERT INTO items VALUES (5, 1); DELETE FROM items WHERE id = 3; UPDATE items SET id = 104 WHERE id = 4; COMMIT`);

    const replay = spawnRelay(config('eo_dbz_replay'));
    try {
      await confirmedAll('eo_dbz_replay');
    } finally {
      replay.signal('SIGTERM');
      assert.equal(await replay.exited, 0, replay.logs().slice(-2000));
    }
    assert.match(replay.logs(), /skipped events Kafka already has/);

    const records = await consumeToEnd(kafka.brokers, ['eo.public.items'], { readCommitted: true });
    const seen = records.map((record) => `${record.tombstone ? 'tombstone' : JSON.parse(record.value).op} ${record.key}`);
    assert.deepEqual(seen, [
      'c {"id":1}', 'c {"id":2}', 'c {"id":3}', 'c {"id":4}',
      'd {"id":1}', 'tombstone {"id":1}', 'c {"id":101}',
      'd {"id":2}', 'tombstone {"id":2}',
      'u {"id":3}',
      'c {"id":5}', 'd {"id":3}', 'tombstone {"id":3}', 'd {"id":4}', 'tombstone {"id":4}', 'c {"id":104}',
    ]);

    const checkpoints = await consumeToEnd(kafka.brokers, ['walrelay.checkpoints'], { readCommitted: true });
    assert.ok(checkpoints.length > 0);
    for (const checkpoint of checkpoints) assert.equal(typeof JSON.parse(checkpoint.value).lastEventId, 'string', `checkpoint ${checkpoint.value} names no event`);
  });
});
