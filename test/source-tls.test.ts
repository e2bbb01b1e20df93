// The replication connection over TLS (sslmode=require) under a live feed:
// the dispatch window stops and restarts the socket's reads (socket-reads.ts
// touches net.Socket internals), and a TLS socket reads through its own
// handle. Every transaction of a paced feed, window after window, and of a
// second burst after a quiet spell, must arrive once and in order; the
// walsender's connection must really be encrypted.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { runCli, setupAndSpawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { waitUntilConfirmed } from './harness/slot.js';

function ids(relay: RelayProcess): number[] {
  return relay.stdout().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { op: string; new?: { id: number } })
    .filter((event) => event.op === 'insert').map((event) => event.new!.id);
}

/** A self-signed certificate and key PostgreSQL will accept (the key readable by the server's user only). */
function serverCertificate(): { dir: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-pg-tls-'));
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  chmodSync(key, 0o600);
  if (userInfo().uid === 0) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));
    for (const path of [dir, cert, key]) chownSync(path, id('-u'), id('-g'));
  }
  return { dir, cert, key };
}

describe('replication over TLS', () => {
  let pg: TestPostgres;
  let certificate: ReturnType<typeof serverCertificate>;

  before(async () => {
    certificate = serverCertificate();
    pg = await startPostgres('pg15', { ssl: 'on', ssl_cert_file: certificate.cert, ssl_key_file: certificate.key });
    await pg.query('CREATE TABLE tls_feed (id int PRIMARY KEY)');
  });

  after(async () => {
    await pg?.stop();
    if (certificate) rmSync(certificate.dir, { recursive: true, force: true });
  });

  it('a paced live feed and a burst after a quiet spell arrive whole and in order over sslmode=require', async () => {
    const relay = await setupAndSpawnRelay({
      source: { url: `postgres://postgres@127.0.0.1:${pg.port}/postgres?sslmode=require`, slot: 'tls_feed', publication: 'tls_feed', tables: ['public.tls_feed'] },
      sinks: [{ type: 'stdout' }],
    }, {}, { keepStdout: true });
    try {
      assert.match(relay.logs(), /"code":"TLS_UNVERIFIED"/, 'sslmode=require: a warning that the certificate is not checked');
      const encrypted = await pg.query(`SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'walrelay'`);
      assert.deepEqual(encrypted.map((row) => row.ssl), [true], 'the walsender\'s connection is encrypted');
      // A live feed: a transaction every ~2 ms for many dispatch windows (reads held and released each window).
      for (let id = 1; id <= 200; id++) {
        await pg.query(`INSERT INTO tls_feed VALUES (${id})`);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await waitFor(() => ids(relay).length === 200, { what: 'the paced feed on stdout', timeoutMs: 30_000 });
      await new Promise((resolve) => setTimeout(resolve, 300)); // quiet: the windows end
      await pg.query('INSERT INTO tls_feed SELECT generate_series(201, 260)');
      await pg.query('INSERT INTO tls_feed VALUES (261)');
      await waitFor(() => ids(relay).length === 261, { what: 'the burst after the quiet spell', timeoutMs: 30_000 });
      assert.deepEqual(ids(relay), Array.from({ length: 261 }, (_, index) => index + 1), 'every row once, in order');
      await waitUntilConfirmed(pg, 'tls_feed');
    } finally {
      relay.signal('SIGTERM');
      assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
    }
  });

  it('a certificate walrelay does not accept, a missing sslrootcert file and an unknown sslmode: errors that say which and what to do', async () => {
    const url = (query: string) => `postgres://postgres@127.0.0.1:${pg.port}/postgres?${query}`;
    const status = (query: string) => runCli(['status', '-c', writeConfig({ source: { url: url(query), slot: 'tls_feed', publication: 'tls_feed' }, sinks: [{ type: 'stdout' }] })]);
    const selfSigned = await status('sslmode=verify-full');
    assert.notEqual(selfSigned.code, 0);
    assert.match(selfSigned.stderr, /SOURCE_TLS/);
    assert.match(selfSigned.stderr, /sslrootcert/);
    assert.doesNotMatch(selfSigned.stderr, /PostgreSQL log|^\s+at /m);
    const missing = await status('sslmode=verify-full&sslrootcert=/nonexistent/ca.pem');
    assert.match(missing.stderr, /SOURCE_TLS.*\/nonexistent\/ca\.pem/);
    const trusted = await status(`sslmode=verify-ca&sslrootcert=${certificate.cert}`); // the self-signed certificate is its own CA
    assert.equal(trusted.code, 0, trusted.stderr);
    const bogus = await runCli(['validate', '-c', writeConfig({ source: { url: url('sslmode=bogus'), slot: 's', publication: 'p' }, sinks: [{ type: 'stdout' }] })]);
    assert.equal(bogus.code, 2, bogus.stderr);
    assert.match(bogus.stderr, /sslmode=bogus/);
  });
});
