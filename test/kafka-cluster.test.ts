// PostgreSQL → a real walrelay process → a real three-node Kafka cluster
// (RF 3, min.insync.replicas=2, unclean election off) while the cluster is
// hurt mid-stream: the leader of the busiest partition is killed (-9); in the
// full run (`npm run test:kafka-cluster`) it is then restarted, a
// preferred-leader election moves leaderships back, and every node is
// restarted in turn. An independent consumer then finds every change exactly
// once (the idempotent producer's retries are recognised by the brokers), in
// per-key order, on the partition the Java client's murmur2 picks; the
// longest commit-to-Kafka delay is printed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafkaCluster, type TestKafkaCluster } from './harness/kafka-cluster.js';
import { consumeToEnd } from './harness/kafka-consume.js';
import { waitUntilConfirmed } from './harness/slot.js';
import { knownErrorCodes } from '../sinks/kafka/protocol/error-codes.js';
import { setupAndSpawnRelay, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';

const FULL = process.env.WALRELAY_KAFKA_CLUSTER === 'full';
const TARGET_ROWS = FULL ? 20_000 : 3_000;
const KEYS = 400;
const PARTITIONS = 6;
const TOPIC = 'cluster.public.accounts';

/** The Java client's partition for each key: Utils.toPositive(Utils.murmur2(key)) % partitions, from the jars. */
function javaPartitions(libs: string, keys: string[]): Map<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-murmur-'));
  try {
    writeFileSync(join(dir, 'Partition.java'), `
import org.apache.kafka.common.utils.Utils;
import java.io.*;
import java.nio.charset.StandardCharsets;
public class Partition {
  public static void main(String[] args) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String key; (key = in.readLine()) != null; )
      System.out.println(Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % ${PARTITIONS});
  }
}`);
    const output = execFileSync('java', ['-cp', join(libs, '*'), join(dir, 'Partition.java')], { input: keys.join('\n') + '\n', encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
    const partitions = output.trim().split('\n').map(Number);
    return new Map(keys.map((key, i) => [key, partitions[i]]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe(`Kafka cluster failover (3 nodes, RF 3, ${FULL ? 'full: leader kill, restart, preferred election, rolling restart' : 'short: leader kill'})`, () => {
  let pgServer: TestPostgres;
  let cluster: TestKafkaCluster;
  let relay: RelayProcess;

  before(async () => {
    [pgServer, cluster] = await Promise.all([startPostgres('pg18'), startKafkaCluster()]);
    await pgServer.query(`CREATE TABLE accounts (id int PRIMARY KEY, version int NOT NULL)`);
    const admin = await cluster.admin();
    try {
      // LogAppendTime: each record carries the moment the leader appended it, to measure commit-to-Kafka delays.
      await admin.createTopics({
        topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3, configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }],
        waitForLeaders: true,
      });
    } finally {
      await admin.disconnect();
    }
    relay = await setupAndSpawnRelay({
      source: { url: pgServer.url, tables: ['public.accounts'] },
      sinks: [{ type: 'kafka', brokers: cluster.brokers, topic: 'cluster.{schema}.{table}' }],
    });
  });

  after(async () => {
    relay?.signal('SIGKILL');
    await Promise.all([pgServer?.stop(), cluster?.stop()]);
  });

  it('delivers every change once, in per-key order, through leader failures', async (t) => {
    const writer = new pg.Client({ connectionString: pgServer.url });
    await writer.connect();
    let written = 0;
    let chaosDone = false;
    let writerError: unknown = null;
    await writer.query(`INSERT INTO accounts SELECT i, 1 FROM generate_series(1, ${KEYS}) i`);
    written += KEYS;
    // Small paced transactions, so the stream is flowing during every step below.
    const writing = (async () => {
      let next = 0;
      while (!chaosDone || written < TARGET_ROWS) {
        const ids = Array.from({ length: 10 }, () => 1 + (next++ * 7919) % KEYS);
        await writer.query('UPDATE accounts SET version = version + 1 WHERE id = ANY($1::int[])', [[...new Set(ids)]]);
        written += new Set(ids).size;
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
    })().catch((error) => { writerError = error; });
    const writtenAtLeast = (rows: number) => waitFor(() => writerError !== null || written >= rows, { what: `${rows} rows written`, timeoutMs: 600_000 });
    const steps: string[] = [];
    let killedAt = 0;
    let electionMs = 0;
    const step = (name: string) => { steps.push(`${new Date().toISOString()} ${name} (${written} rows written)`); };

    try {
      await writtenAtLeast(TARGET_ROWS * 0.15);
      const admin = await cluster.admin();
      const offsets = await admin.fetchTopicOffsets(TOPIC);
      await admin.disconnect();
      const busiest = offsets.reduce((best, offset) => (BigInt(offset.high) > BigInt(best.high) ? offset : best)).partition;
      const victim = (await cluster.leaders(TOPIC)).get(busiest)!;
      step(`kill -9 node ${victim}, leader of the busiest partition ${busiest}`);
      killedAt = Date.now();
      await cluster.kill(victim);
      await waitFor(async () => {
        const leader = (await cluster.leaders(TOPIC)).get(busiest)!;
        return leader >= 0 && leader !== victim;
      }, { what: `a new leader for partition ${busiest}`, timeoutMs: 120_000, intervalMs: 200 });
      step(`partition ${busiest} has a new leader`);
      electionMs = Date.now() - killedAt;
      if (FULL) {
        await writtenAtLeast(TARGET_ROWS * 0.35);
        step(`restart node ${victim}`);
        await cluster.startNode(victim);
        await cluster.waitForFullIsr(TOPIC);
        step('preferred-leader election');
        await cluster.electPreferredLeaders(TOPIC);
        await writtenAtLeast(TARGET_ROWS * 0.55);
        for (const node of cluster.nodes) {
          step(`rolling restart: node ${node.id}`);
          await cluster.stopNode(node.id);
          await cluster.startNode(node.id);
          await cluster.waitForFullIsr(TOPIC);
        }
      }
      step('cluster steps done');
    } finally {
      chaosDone = true;
      await writing;
    }
    if (writerError) throw writerError;
    await writer.end();
    await waitUntilConfirmed(pgServer, 'walrelay', { what: 'walrelay to confirm every change', timeoutMs: 300_000, intervalMs: 500 });

    const records = await consumeToEnd(cluster.brokers, [TOPIC]);
    const versions = new Map<string, number[]>();
    let longestDelay = { ms: 0, at: '' };
    for (const record of records) {
      const event = JSON.parse(record.value);
      const list = versions.get(record.key!) ?? [];
      list.push(event.new.version);
      versions.set(record.key!, list);
      const delay = record.timestamp - Date.parse(event.commitTime);
      if (delay > longestDelay.ms) longestDelay = { ms: delay, at: event.commitTime };
    }
    const ids = new Set(records.map((record) => record.headers['walrelay-id']));
    const duplicates = records.length - ids.size;
    const [{ total }] = await pgServer.query(`SELECT sum(version)::int AS total FROM accounts`);
    for (const line of steps) t.diagnostic(line);
    t.diagnostic(`${written} rows written, ${records.length} records in Kafka, ${duplicates} duplicates; longest commit-to-Kafka delay ${longestDelay.ms} ms (commit at ${longestDelay.at})`);
    const logs = relay.logs();
    const errorsSeen = [...knownErrorCodes().values()].filter((name) => name !== 'NONE' && logs.includes(name));
    t.diagnostic(`Kafka errors named in walrelay's log: ${errorsSeen.join(', ') || 'none'}`);
    console.log(`kafka-cluster: longest commit-to-Kafka stall ${longestDelay.ms} ms (the cluster took ${electionMs} ms to name a new leader after the kill, as seen by polling every 200 ms); ${records.length} records, ${duplicates} duplicates`);

    assert.equal(duplicates, 0, 'duplicates in Kafka');
    assert.equal(records.length, total, 'every committed change (one per version step) is in Kafka once');
    assert.doesNotMatch(relay.logs(), /new producer id/, 'the producer kept its id through the failures');
    assert.doesNotMatch(relay.logs(), /KAFKA_ERROR_\d+/, 'every Kafka error is named');
    // Per key: versions 1, 2, 3, … with no gap, repeat or reordering; the last equals the table.
    const table = new Map((await pgServer.query(`SELECT id, version FROM accounts`)).map((row: { id: number; version: number }) => [JSON.stringify({ id: row.id }), row.version]));
    assert.equal(versions.size, KEYS);
    for (const [key, list] of versions) {
      assert.deepEqual(list, Array.from({ length: list.length }, (_, i) => i + 1), `order of ${key}`);
      assert.equal(list.length, table.get(key), `last version of ${key}`);
    }
    // Partitions as the Java client's default partitioner puts them.
    const java = javaPartitions(cluster.libs, [...versions.keys()]);
    for (const record of records) assert.equal(record.partition, java.get(record.key!), `partition of ${record.key}`);
  });
});
