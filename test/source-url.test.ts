// libpq's multi-host source.url (relay/source/hosts.ts): the single-host URLs
// handed to `pg` must carry the same credentials, database and parameters,
// for every form an operator may write. node-postgres' own parser reads the
// result, so these tests check what `pg` will actually use.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'pg-connection-string';
import { parseSourceUrl, singleHostUrl, hostLabel, unverifiedTls } from '../relay/source/hosts.js';
import { parseConfig } from '../config/load.js';
import { WalrelayError } from '../relay/errors.js';

function forPg(url: string) {
  const source = parseSourceUrl(url);
  return source.hosts.map((host) => parse(singleHostUrl(source, host)));
}

describe('source.url: libpq multi-host form', () => {
  it('splits hosts with their own ports, keeping user, password, database and parameters', () => {
    const source = parseSourceUrl('postgres://app:s3cret@db1.internal:5432,db2.internal:5433/orders?sslmode=require&application_name=relay');
    assert.deepEqual(source.hosts, [{ host: 'db1.internal', port: 5432 }, { host: 'db2.internal', port: 5433 }]);
    assert.equal(source.user, 'app');
    assert.equal(source.password, 's3cret');
    assert.equal(source.database, 'orders');
    const [first, second] = forPg('postgres://app:s3cret@db1.internal:5432,db2.internal:5433/orders?sslmode=require&application_name=relay');
    assert.equal(first.host, 'db1.internal');
    assert.equal(first.port, '5432');
    assert.equal(second.host, 'db2.internal');
    assert.equal(second.port, '5433');
    for (const config of [first, second]) {
      assert.equal(config.user, 'app');
      assert.equal(config.password, 's3cret');
      assert.equal(config.database, 'orders');
      assert.equal(config.sslmode, 'require');
      assert.equal(config.application_name, 'relay');
    }
  });

  it('gives hosts without a port 5432, or the ?port= value', () => {
    assert.deepEqual(parseSourceUrl('postgres://u@a,b:6000,c/db').hosts.map((h) => h.port), [5432, 6000, 5432]);
    assert.deepEqual(parseSourceUrl('postgres://u@a,b/db?port=7000').hosts.map((h) => h.port), [7000, 7000]);
  });

  it('reads IPv6 addresses in brackets, with and without a port', () => {
    const source = parseSourceUrl('postgresql://u@[::1]:5433,[fe80::1%25eth0],10.0.0.7:5434/db');
    assert.deepEqual(source.hosts, [{ host: '::1', port: 5433 }, { host: 'fe80::1%25eth0', port: 5432 }, { host: '10.0.0.7', port: 5434 }]);
    assert.equal(hostLabel(source.hosts[0]), '[::1]:5433');
    const [first] = forPg('postgresql://u@[::1]:5433,10.0.0.7/db');
    assert.equal(first.host, '::1');
    assert.equal(first.port, '5433');
  });

  it('decodes percent-encoded credentials and database, and encodes them again for pg', () => {
    const url = 'postgres://us%40er:p%40ss%3Aw%2Fo%23rd%20x@h1:1,h2:2/my%20db';
    const source = parseSourceUrl(url);
    assert.equal(source.user, 'us@er');
    assert.equal(source.password, 'p@ss:w/o#rd x');
    assert.equal(source.database, 'my db');
    for (const config of forPg(url)) {
      assert.equal(config.user, 'us@er');
      assert.equal(config.password, 'p@ss:w/o#rd x');
      assert.equal(config.database, 'my db');
    }
  });

  it('defaults the database to the user name, as libpq does', () => {
    assert.equal(parseSourceUrl('postgres://alice@h1,h2').database, 'alice');
    assert.equal(parseSourceUrl('postgres://alice@h1,h2/').database, 'alice');
  });

  it('takes hosts and ports from ?host=&port= (Unix socket directories too)', () => {
    const source = parseSourceUrl('postgres://u@/db?host=/run/pg,db2&port=5432,5433');
    assert.deepEqual(source.hosts, [{ host: '/run/pg', port: 5432 }, { host: 'db2', port: 5433 }]);
    const [socket, tcp] = forPg('postgres://u@/db?host=/run/pg,db2&port=5432,5433');
    assert.equal(socket.host, '/run/pg');
    assert.equal(socket.database, 'db');
    assert.equal(tcp.host, 'db2');
    assert.equal(tcp.port, '5433');
  });

  it('keeps target_session_attrs=read-write from reaching pg, and refuses the modes walrelay cannot honour', () => {
    const [config] = forPg('postgres://u@h1,h2/db?target_session_attrs=read-write&sslmode=disable');
    assert.equal((config as Record<string, unknown>).target_session_attrs, undefined);
    assert.equal(config.sslmode, 'disable');
    assert.throws(() => parseSourceUrl('postgres://u@h1,h2/db?target_session_attrs=standby'), (error: WalrelayError) =>
      error.code === 'CONFIG_INVALID' && /target_session_attrs=standby/.test(error.message) && /primary/.test(error.hint ?? ''));
  });

  it('names the mistake in a malformed host list', () => {
    const cases: [string, RegExp][] = [
      ['postgres://u@h1:5432,:5433/db', /empty host name/],
      ['postgres://u@h1:99999/db', /port "99999" of h1/],
      ['postgres://u@h1:abc/db', /port "abc"/],
      ['postgres://u@[::1/db', /does not close it/],
      ['postgres://u@::1:5432/db', /IPv6 address without brackets/],
      ['postgres://u@h1,h2/db?port=1,2,3', /3 ports for/],
      ['postgres://u:%zz@h1/db', /password is not valid percent-encoding/],
      ['postgres:///db', /no host/],
    ];
    for (const [url, message] of cases) {
      assert.throws(() => parseSourceUrl(url), (error: WalrelayError) => error instanceof WalrelayError && error.kind === 'config' && message.test(error.message), url);
    }
  });

  it('is checked when the configuration is read, naming source.url', () => {
    assert.throws(() => parseConfig({ source: { url: 'postgres://u@h1:5432,h2:x/db' }, sinks: [{ type: 'stdout' }] }, {}),
      (error: Error) => /source\.url/.test(error.message) && /port "x"/.test(error.message));
    const config = parseConfig({ source: { url: 'postgres://u@h1:5432,[::1]:5433/db' }, sinks: [{ type: 'stdout' }] }, {});
    assert.equal(config.source.failoverSlot, 'auto');
  });

  it('leaves a single-host URL meaning what it meant', () => {
    for (const url of ['postgres://postgres@127.0.0.1:6543/postgres?sslmode=disable', 'postgres://a:b@localhost/x', 'postgresql://u:p%40@db.example.com:5432/app?sslmode=verify-full&connect_timeout=5']) {
      const [config] = forPg(url);
      // With an sslmode, walrelay asks for libpq's meaning of it (uselibpqcompat).
      const expected = parse(/sslmode=(prefer|require|verify-ca)/.test(url) ? `${url}&uselibpqcompat=true` : url);
      assert.deepEqual({ ...config }, { ...expected, port: expected.port || '5432' }, url); // no port: libpq's 5432, said explicitly
    }
  });

  it('reads sslmode as libpq does: require encrypts without checking the certificate, verify-full checks it', () => {
    const [required] = forPg('postgres://u@db1:5432,db2:5432/app?sslmode=require');
    assert.equal((required.ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized, false, 'require: a self-signed certificate is accepted');
    const [full] = forPg('postgres://u@db1:5432/app?sslmode=verify-full');
    assert.notEqual((full.ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized, false, 'verify-full: the certificate is checked');
    const [own] = forPg('postgres://u@db1:5432/app?sslmode=require&uselibpqcompat=false');
    assert.notEqual((own.ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized, false, 'an explicit uselibpqcompat is left alone');
    const [noVerify] = forPg('postgres://u@db1:5432/app?sslmode=no-verify');
    assert.equal((noVerify.ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized, false, 'node-postgres\'s own no-verify keeps working');
  });

  it('refuses sslmode=verify-ca without sslrootcert, and names TLS that checks nothing', () => {
    assert.throws(() => parseConfig({ source: { url: 'postgres://u@db1:5432/app?sslmode=verify-ca' }, sinks: [{ type: 'stdout' }] }, {}),
      (error: Error) => /verify-ca/.test(error.message) && /sslrootcert/.test(error.message));
    assert.equal(unverifiedTls(parseSourceUrl('postgres://u@db1/app?sslmode=require')), 'require');
    assert.equal(unverifiedTls(parseSourceUrl('postgres://u@db1/app?sslmode=no-verify')), 'no-verify');
    assert.equal(unverifiedTls(parseSourceUrl('postgres://u@db1/app?sslmode=require&sslrootcert=/ca.pem')), null, 'require with a CA: verify-ca');
    assert.equal(unverifiedTls(parseSourceUrl('postgres://u@db1/app?sslmode=verify-full')), null);
    assert.equal(unverifiedTls(parseSourceUrl('postgres://u@db1/app')), null);
  });
});
