// PostgreSQL 15 → walrelay → a real Kafka broker that requires TLS with a
// client certificate, and SASL (SASL_SSL; the broker's self-signed
// certificate is walrelay's CA, walrelay's self-signed one the broker's only
// trusted client): PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 each deliver,
// gzip-compressed batches read back, a wrong password stops the relay with
// KAFKA_AUTH instead of retrying forever, and without its certificate the
// relay is refused and confirms nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { writeConfig, runCli, spawnRelay } from './harness/relay.js';
import { waitFor } from './harness/wait.js';

const USER = { username: 'alice', password: 'alice-secret' };

describe('Kafka sink with TLS and SASL (PostgreSQL 15, Apache Kafka 4)', () => {
  let pgServer: TestPostgres;
  let kafka: TestKafka;
  const certDir = mkdtempSync(join(tmpdir(), 'walrelay-kafka-tls-'));
  const caFile = join(certDir, 'cert.pem');
  const clientCertFile = join(certDir, 'client-cert.pem');
  const clientKeyFile = join(certDir, 'client-key.pem');
  let ca: string;
  let client: { cert: string; key: string };
  /** The sink's ssl and sasl settings for this broker. */
  const secured = (mechanism: string, password = USER.password) => ({
    ssl: { ca: caFile, cert: clientCertFile, key: clientKeyFile },
    sasl: { mechanism, username: USER.username, password },
  });
  const testClient = () => new Kafka({ brokers: kafka.brokers, ssl: { ca: [ca], ...client }, sasl: { mechanism: 'plain', ...USER }, logLevel: logLevel.NOTHING });
  const selfSigned = (subject: string, keyFile: string, certFile: string, extra: string[] = []) => execFileSync('openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', subject, ...extra, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });

  before(async () => {
    selfSigned('/CN=127.0.0.1', join(certDir, 'key.pem'), caFile, ['-addext', 'subjectAltName=IP:127.0.0.1']);
    selfSigned('/CN=walrelay', clientKeyFile, clientCertFile);
    ca = readFileSync(caFile, 'utf8');
    client = { cert: readFileSync(clientCertFile, 'utf8'), key: readFileSync(clientKeyFile, 'utf8') };
    const tls = { cert: ca, key: readFileSync(join(certDir, 'key.pem'), 'utf8'), client };
    [pgServer, kafka] = await Promise.all([startPostgres('pg15'), startKafka({ saslUser: USER, tls })]);
    await pgServer.query('CREATE TABLE accounts (id int PRIMARY KEY, owner text)');
  });

  after(async () => {
    await Promise.all([pgServer?.stop(), kafka?.stop()]);
    rmSync(certDir, { recursive: true, force: true });
  });

  /** Offsets of `topic` summed over its partitions, read by kafkajs (itself authenticating with PLAIN). */
  const recordsIn = async (topic: string): Promise<number> => {
    const admin = testClient().admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
    } finally {
      await admin.disconnect();
    }
  };

  for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
    it(`delivers with SASL ${mechanism}`, async () => {
      const name = mechanism.replace(/-/g, '_');
      const configFile = writeConfig({
        source: { url: pgServer.url, slot: name, publication: name, tables: ['public.accounts'] },
        sinks: [{ type: 'kafka', brokers: kafka.brokers, topic: `${name}.{table}`, ...secured(mechanism), createTopics: { partitions: 2, replicationFactor: 1 } }],
      });
      assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
      const relay = spawnRelay(configFile);
      try {
        await relay.waitForLog(/"msg":"streaming"/);
        await pgServer.query(`INSERT INTO accounts SELECT i, 'owner ' || i FROM generate_series(1, 100) i`);
        await waitFor(async () => (await recordsIn(`${name}.accounts`)) === 100, { what: `100 records in ${name}.accounts`, timeoutMs: 60_000, intervalMs: 500 });
        await pgServer.query('DELETE FROM accounts');
      } finally {
        relay.signal('SIGTERM');
      }
      assert.equal(await relay.exited, 0);
      await runCli(['teardown', '-c', configFile]);
    });
  }

  it('writes gzip-compressed batches that a consumer reads back', async () => {
    const configFile = writeConfig({
      source: { url: pgServer.url, slot: 'gzipped', publication: 'gzipped', tables: ['public.accounts'] },
      sinks: [{ type: 'kafka', brokers: kafka.brokers, topic: 'gzipped.{table}', compression: 'gzip', ...secured('plain'), createTopics: { partitions: 2, replicationFactor: 1 } }],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    const relay = spawnRelay(configFile);
    try {
      await relay.waitForLog(/"msg":"streaming"/);
      await pgServer.query(`INSERT INTO accounts SELECT i, repeat('compressible ', 50) || i FROM generate_series(1, 300) i`);
      // The relay creates the topic with the first record: subscribe once all 300 are there.
      await waitFor(async () => (await recordsIn('gzipped.accounts')) === 300, { what: '300 records in gzipped.accounts', timeoutMs: 60_000, intervalMs: 500 });
      const consumer = testClient().consumer({ groupId: `gzip-${Date.now()}` });
      const owners = new Map<number, string>();
      await consumer.connect();
      await consumer.subscribe({ topics: ['gzipped.accounts'], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const event = JSON.parse(message.value!.toString());
          owners.set(event.new.id, event.new.owner);
        },
      });
      try {
        await waitFor(() => owners.size === 300, { what: '300 decompressed records', timeoutMs: 60_000 });
      } finally {
        await consumer.disconnect();
      }
      assert.equal(owners.get(300), `${'compressible '.repeat(50)}300`);
      await pgServer.query('DELETE FROM accounts');
    } finally {
      relay.signal('SIGTERM');
    }
    assert.equal(await relay.exited, 0);
    await runCli(['teardown', '-c', configFile]);
  });

  it('stops with KAFKA_AUTH on a wrong password', async () => {
    const configFile = writeConfig({
      source: { url: pgServer.url, slot: 'wrong', publication: 'wrong', tables: ['public.accounts'] },
      sinks: [{ type: 'kafka', brokers: kafka.brokers, topic: 'wrong.{table}', ...secured('scram-sha-256', 'not-the-password'), createTopics: { partitions: 1, replicationFactor: 1 } }],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    const relay = spawnRelay(configFile);
    await relay.waitForLog(/"msg":"streaming"/);
    await pgServer.query(`INSERT INTO accounts VALUES (1000, 'late')`);
    assert.equal(await relay.exited, 1);
    assert.match(relay.logs(), /KAFKA_AUTH/);
    await runCli(['teardown', '-c', configFile]);
  });

  it('is refused without its client certificate, and confirms nothing', async () => {
    const configFile = writeConfig({
      source: { url: pgServer.url, slot: 'nocert', publication: 'nocert', tables: ['public.accounts'] },
      sinks: [{ type: 'kafka', brokers: kafka.brokers, topic: 'nocert.{table}', ssl: { ca: caFile }, sasl: { mechanism: 'plain', ...USER }, createTopics: { partitions: 1, replicationFactor: 1 } }],
      pipeline: { drainTimeoutSeconds: 2 }, // the stop cannot deliver; no need to wait the default 30 s
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    const relay = spawnRelay(configFile);
    try {
      await relay.waitForLog(/"msg":"streaming"/);
      const [{ lsn: before }] = await pgServer.query(`SELECT pg_current_wal_lsn()::text AS lsn`);
      await pgServer.query(`INSERT INTO accounts VALUES (2000, 'unsent')`);
      await relay.waitForLog(/bad certificate[^\n]*ssl.cert and ssl.key[^\n]*sink delivery failed/, 30_000); // the retry of the insert, not the start-up probe
      const [{ behind }] = await pgServer.query(`SELECT confirmed_flush_lsn <= $1::pg_lsn AS behind FROM pg_replication_slots WHERE slot_name = 'nocert'`, [before]);
      assert.equal(behind, true, 'the slot was confirmed past a change Kafka never took');
      console.log(`# without a client certificate: ${/"err":"([^"]*bad certificate[^"]*)"/.exec(relay.logs())?.[1]}`);
    } finally {
      relay.signal('SIGTERM');
      await relay.exited;
      await pgServer.query(`DELETE FROM accounts WHERE id = 2000`);
      await runCli(['teardown', '-c', configFile]);
    }
  });
});
