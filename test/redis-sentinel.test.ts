// The Redis sink following the master that Redis Sentinel names (1 master,
// 2 replicas, 3 sentinels, passwords on both): the master is killed (kill -9)
// under a continuous writer after it dropped its replica links, the sentinels
// promote a replica, and with waitReplicas: 1 nothing committed is lost;
// re-sent events are identical.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { admin, startSentinel, type TestSentinel } from './harness/redis-cluster.js';
import { writeConfig, runCli, spawnRelay } from './harness/relay.js';
import { assertEveryRowDelivered, startRowWriter } from './harness/row-writer.js';
import { waitFor } from './harness/wait.js';

describe('Redis sink behind Redis Sentinel', () => {
  let postgres: TestPostgres;
  let sentinel: TestSentinel;

  before(async () => {
    [postgres, sentinel] = await Promise.all([startPostgres('pg18'), startSentinel()]);
    await postgres.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
  });

  after(async () => {
    await Promise.all([postgres?.stop(), sentinel?.stop()]);
  });

  it('refuses cluster and sentinel together, and a cluster url with a /db path (exit 2, naming the key)', async () => {
    const both = await runCli(['validate', '-c', writeConfig({ source: { url: postgres.url }, sinks: [{ type: 'redis', cluster: true, sentinel: { masterName: 'm', nodes: ['127.0.0.1:26379'] } }] })]);
    assert.equal(both.code, 2);
    assert.match(both.stderr + both.stdout, /sinks\[0\]\.sentinel: cluster: true and sentinel exclude each other/);
    const db = await runCli(['validate', '-c', writeConfig({ source: { url: postgres.url }, sinks: [{ type: 'redis', url: 'redis://127.0.0.1:7000/3', cluster: true }] })]);
    assert.equal(db.code, 2);
    assert.match(db.stderr + db.stdout, /sinks\[0\]\.url: Redis Cluster has database 0 only/);
    const nodes = await runCli(['validate', '-c', writeConfig({ source: { url: postgres.url }, sinks: [{ type: 'redis', sentinel: { masterName: 'm', nodes: ['localhost'] } }] })]);
    assert.equal(nodes.code, 2);
    assert.match(nodes.stderr + nodes.stdout, /sinks\[0\]\.sentinel\.nodes/);
  });

  it('follows the master through a failover (kill -9) with nothing lost (waitReplicas: 1)', async () => {
    const secrets = mkdtempSync(join(tmpdir(), 'walrelay-secret-'));
    writeFileSync(join(secrets, 'sentinel-password'), `${sentinel.sentinelPassword}\n`);
    const configFile = writeConfig({
      source: { url: postgres.url, tables: ['public.items'] },
      sinks: [{
        type: 'redis',
        url: `redis://:${sentinel.password}@127.0.0.1:1`,
        sentinel: { masterName: sentinel.masterName, nodes: sentinel.nodes, passwordFile: join(secrets, 'sentinel-password') },
        waitReplicas: 1,
        waitTimeoutMs: 500,
        timeoutSeconds: 5,
      }],
      pipeline: { batchEvents: 50 },
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    const writer = startRowWriter(postgres.url, 'items', { rowsPerTx: 5, intervalMs: 5 });
    const relay = spawnRelay(configFile);
    const reader = sentinel.client();
    try {
      await relay.waitForLog(/"msg":"streaming"/, 60_000);
      await relay.waitForLog(/redis sentinel: writing to the master/);
      await waitFor(async () => (await reader.xlen('walrelay:public.items')) > 100, { what: 'events in the stream', timeoutMs: 30_000 });
      const master = await sentinel.masterPort();
      const replicas = sentinel.dataPorts.filter((port) => port !== master);
      // The replicas stop and lose their links: the master's next writes reach no replica, only WAIT keeps them from counting as delivered.
      for (const port of replicas) sentinel.freeze(port);
      const link = admin(master, sentinel.password);
      await link.connect();
      await link.call('CLIENT', 'KILL', 'TYPE', 'replica');
      link.disconnect();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await sentinel.kill(master);
      for (const port of replicas) sentinel.thaw(port);
      const promoted = await sentinel.waitForFailover(master);
      await relay.waitForLog(/redis sentinel: following the new master/, 60_000);
      const after = writer.acknowledged + 200;
      await waitFor(() => writer.acknowledged > after, { what: 'the writer to go on', timeoutMs: 30_000 });
      const committed = await writer.stop();
      const { duplicates } = await assertEveryRowDelivered(reader, 'walrelay:public.items', committed).catch((error) => {
        throw new Error(`${error.message}\nrelay logs:\n${relay.logs().slice(-4000)}`);
      });
      process.stderr.write(`# sentinel failover ${master} -> ${promoted}: ${committed.size} rows, ${duplicates} duplicates (identical)\n`);
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    } finally {
      for (const port of sentinel.dataPorts) sentinel.thaw(port);
      reader.disconnect();
      await writer.stop();
      if (relay.child.exitCode === null) relay.signal('SIGKILL');
    }
  });
});
