// A Kafka feed over TLS (a client certificate required) and SASL: the
// relay's feed sink (SASL PLAIN) and `walrelay edge` (SASL SCRAM-SHA-256 for
// its feed reader, its catch-up reads and its walrelay_client resume points
// topic) take the kafka sink's `ssl` and `sasl` keys. Changes reach a client
// of the edge, a `since` beyond the edge's ring is served from the feed, and
// an edge with a wrong password is not ready and says why.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { startKafka, type TestKafka } from './harness/kafka.js';
import { runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { startEdge, connect, subscribe, idOf, rowOf, type Edge } from './harness/edges.js';
import { waitFor } from './harness/wait.js';

const USER = { username: 'alice', password: 'alice-secret' };
const FEED = 'edges.secure.feed';

describe('walrelay edge over a Kafka feed with TLS and SASL', () => {
  let pg: TestPostgres;
  let kafka: TestKafka;
  let relay: RelayProcess;
  const edges: Edge[] = [];
  const certDir = mkdtempSync(join(tmpdir(), 'walrelay-edge-tls-'));
  const caFile = join(certDir, 'cert.pem');
  const clientCertFile = join(certDir, 'client-cert.pem');
  const clientKeyFile = join(certDir, 'client-key.pem');
  const ssl = { ca: caFile, cert: clientCertFile, key: clientKeyFile };
  const feed = (mechanism: string, password = USER.password) => ({ kafka: { brokers: kafka.brokers, ssl, sasl: { mechanism, username: USER.username, password } }, name: FEED });
  const selfSigned = (subject: string, keyFile: string, certFile: string, extra: string[] = []) => execFileSync('openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', subject, ...extra, '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });

  before(async () => {
    selfSigned('/CN=127.0.0.1', join(certDir, 'key.pem'), caFile, ['-addext', 'subjectAltName=IP:127.0.0.1']);
    selfSigned('/CN=walrelay', clientKeyFile, clientCertFile);
    const cert = readFileSync(caFile, 'utf8');
    const client = { cert: readFileSync(clientCertFile, 'utf8'), key: readFileSync(clientKeyFile, 'utf8') };
    [pg, kafka] = await Promise.all([startPostgres('pg15'), startKafka({ saslUser: USER, tls: { cert, key: readFileSync(join(certDir, 'key.pem'), 'utf8'), client } })]);
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, note text)');
    const file = writeConfig({
      source: { url: pg.url, slot: 'edges_secure', publication: 'edges_secure' },
      sinks: [{ type: 'feed', ...feed('plain') }],
    });
    const setup = await runCli(['setup', '-c', file]);
    assert.equal(setup.code, 0, setup.stderr);
    relay = spawnRelay(file);
    await relay.waitForLog(/"msg":"streaming"/);
  });

  after(async () => {
    for (const edge of edges) edge.process.signal('SIGKILL');
    relay?.signal('SIGTERM');
    await relay?.exited;
    await Promise.all([pg?.stop(), kafka?.stop()]);
    rmSync(certDir, { recursive: true, force: true });
  });

  it('the relay writes the feed with SASL PLAIN over TLS; an edge reads it with SCRAM-SHA-256 and serves since beyond its ring from it', async () => {
    const edge = await startEdge(feed('scram-sha-256'), { ringSize: 50 });
    edges.push(edge);
    const live = await connect(edge.port);
    await subscribe(live, {});
    await pg.query(`INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 300) g`);
    await waitFor(() => live.changes.length >= 300, { what: `300 changes (have ${live.changes.length})`, timeoutMs: 60_000 });
    assert.deepEqual(live.changes.map(rowOf), Array.from({ length: 300 }, (_, at) => `insert:${at + 1}`));
    const resumed = await connect(edge.port);
    await subscribe(resumed, { since: idOf(live.changes[9]) });
    await waitFor(() => resumed.changes.length >= 290, { what: `the catch-up from the feed (have ${resumed.changes.length})` });
    assert.deepEqual(resumed.changes, live.changes.slice(10));
    assert.equal((await fetch(`http://127.0.0.1:${edge.httpPort}/readyz`)).status, 200);
    for (const client of [live, resumed]) client.ws.close();
  });

  it('an edge with a wrong SASL password is not ready, and /readyz says why', async () => {
    const edge = await startEdge(feed('scram-sha-256', 'wrong'));
    edges.push(edge);
    const response = await fetch(`http://127.0.0.1:${edge.httpPort}/readyz`);
    assert.equal(response.status, 503);
    assert.match(await response.text(), /SASL|authentication/i);
  });
});
