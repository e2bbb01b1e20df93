// libpq's multi-host connection URL (postgres://u:p@h1:5432,h2:5433/db?…)
// split into one single-host URL per host. node `pg` connects to one host
// only, and its URL parser (WHATWG URL underneath) rejects a host list, so
// walrelay picks the host itself (relay/source/primary.ts) and hands `pg`
// the single-host form of that one.
import { configError } from '../errors.js';

export interface SourceHost {
  /** As written, without brackets: "db1.internal", "10.0.0.5", "::1". */
  host: string;
  port: number;
}

export interface SourceUrl {
  hosts: SourceHost[];
  user: string;
  password: string | null;
  database: string;
  /** Query parameters other than host lists (sslmode, application_name, …), decoded. */
  params: Record<string, string>;
}

const DEFAULT_PORT = 5432;

/** Parameters walrelay handles itself: `pg` must not see them (it would send them to the server as settings). */
const OWN_PARAMS = new Set(['target_session_attrs', 'load_balance_hosts']);

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw configError(`source.url: the ${what} is not valid percent-encoding`, 'encode special characters as %XX (e.g. @ as %40, : as %3A, / as %2F)');
  }
}

function parsePort(text: string, where: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw configError(`source.url: port "${text}" of ${where} is not a TCP port number`, 'write host:port with a port from 1 to 65535, e.g. postgres://u@db1:5432,db2:5433/app');
  }
  return Number(text);
}

/** One `host[:port]` or `[v6]:port` item of the host list. */
function parseHostItem(item: string, defaultPort: number): SourceHost {
  if (item.startsWith('[')) {
    const close = item.indexOf(']');
    if (close < 0) throw configError(`source.url: "${item}" opens an IPv6 address with [ but does not close it`, 'write IPv6 addresses in brackets: postgres://u@[::1]:5432/db');
    const host = item.slice(1, close);
    const rest = item.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw configError(`source.url: unexpected "${rest}" after [${host}]`, 'write [address]:port');
    return { host, port: rest === '' || rest === ':' ? defaultPort : parsePort(rest.slice(1), `[${host}]`) };
  }
  const colon = item.lastIndexOf(':');
  if (colon >= 0 && item.indexOf(':') !== colon) {
    throw configError(`source.url: "${item}" looks like an IPv6 address without brackets`, 'write IPv6 addresses in brackets: postgres://u@[::1]:5432/db');
  }
  const host = decode(colon >= 0 ? item.slice(0, colon) : item, 'host name');
  if (host === '') throw configError(`source.url: an empty host name in the host list`, 'list hosts separated by commas, e.g. postgres://u@db1:5432,db2:5432/app');
  return { host, port: colon >= 0 && colon < item.length - 1 ? parsePort(item.slice(colon + 1), host) : defaultPort };
}

export function parseSourceUrl(url: string): SourceUrl {
  const scheme = /^postgres(?:ql)?:\/\//.exec(url);
  if (!scheme) throw configError('source.url: expected a postgres:// URL');
  let rest = url.slice(scheme[0].length);
  const hashAt = rest.indexOf('#');
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  const queryAt = rest.indexOf('?');
  const query = queryAt >= 0 ? rest.slice(queryAt + 1) : '';
  if (queryAt >= 0) rest = rest.slice(0, queryAt);
  const slash = rest.indexOf('/');
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1) : '';
  // The password may contain an unencoded @ in sloppy URLs; libpq splits at the last one, and so does this.
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostList = at >= 0 ? authority.slice(at + 1) : authority;
  const colon = userinfo.indexOf(':');
  const user = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, 'user name');
  const password = colon >= 0 ? decode(userinfo.slice(colon + 1), 'password') : null;

  const params: Record<string, string> = {};
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = decode(eq >= 0 ? pair.slice(0, eq) : pair, 'query parameter name');
    params[key] = decode((eq >= 0 ? pair.slice(eq + 1) : '').replaceAll('+', ' '), `value of ${key}`);
  }
  // libpq also takes the hosts and ports as ?host=a,b&port=1,2 (the way to name a Unix socket directory).
  const queryHosts = params.host !== undefined ? params.host.split(',') : [];
  const queryPorts = params.port !== undefined ? params.port.split(',') : [];
  delete params.host;
  delete params.port;
  if (queryPorts.length > 1 && queryPorts.length !== Math.max(queryHosts.length, 1)) {
    throw configError(`source.url: ${queryPorts.length} ports for ${queryHosts.length} hosts`, 'give one port, or one port per host');
  }
  const portFor = (index: number): number => {
    const text = queryPorts.length > 1 ? queryPorts[index] : queryPorts[0];
    return text === undefined || text === '' ? DEFAULT_PORT : parsePort(text, 'the port parameter');
  };

  let hosts: SourceHost[];
  if (hostList !== '') {
    if (queryHosts.length > 0) throw configError('source.url: hosts both before the path and in ?host=', 'name the hosts in one place');
    hosts = hostList.split(',').map((item) => parseHostItem(item, portFor(0)));
  } else if (queryHosts.length > 0) {
    hosts = queryHosts.map((host, index) => {
      if (host === '') throw configError('source.url: an empty host in ?host=', 'list hosts separated by commas');
      return { host, port: portFor(index) };
    });
  } else {
    throw configError('source.url: no host', 'write postgres://USER:PASSWORD@HOST:PORT/DATABASE (several hosts: HOST1:PORT1,HOST2:PORT2)');
  }
  const targetSessionAttrs = params.target_session_attrs;
  if (targetSessionAttrs !== undefined && !['any', 'read-write', 'primary'].includes(targetSessionAttrs)) {
    throw configError(`source.url: target_session_attrs=${targetSessionAttrs} is not supported`,
      'walrelay always streams from the primary (as with read-write); omit the parameter or set it to read-write');
  }
  if (params.sslmode !== undefined && !SSLMODES.includes(params.sslmode)) {
    throw configError(`source.url: sslmode=${params.sslmode} is not a TLS mode`, `use one of ${SSLMODES.join(', ')} (docs/security.md)`);
  }
  if (params.sslmode === 'verify-ca' && params.sslrootcert === undefined) {
    throw configError('source.url: sslmode=verify-ca checks the server\'s certificate against a CA, and no sslrootcert= names one',
      'add sslrootcert=/path/to/ca.pem (the CA that signed the server\'s certificate), or use sslmode=verify-full');
  }
  return { hosts, user, password, database: decode(path, 'database name') || user || 'postgres', params };
}

/** libpq's sslmodes (not allow: it would mean verify-full here), and node-postgres's no-verify. */
const SSLMODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/** sslmodes whose meaning node-postgres changes (it reads them as verify-full): given libpq's instead. */
const LIBPQ_SSLMODES = new Set(['prefer', 'require', 'verify-ca']);

/** TLS that does not check the server's certificate (a man in the middle goes unnoticed): worth a warning at start. */
export function unverifiedTls(source: SourceUrl): string | null {
  const mode = source.params.sslmode;
  if (mode === 'no-verify' || ((mode === 'prefer' || mode === 'require') && source.params.sslrootcert === undefined)) return mode;
  return null;
}

/** "db1:5432", "[::1]:5432": how walrelay names a host in logs, errors and `status`. */
export function hostLabel(host: SourceHost): string {
  return host.host.includes(':') ? `[${host.host}]:${host.port}` : `${host.host}:${host.port}`;
}

/** A single-host URL for `pg`, with the credentials, database and parameters of the original. */
export function singleHostUrl(source: SourceUrl, host: SourceHost): string {
  const userinfo = source.user === '' ? '' : `${encodeURIComponent(source.user)}${source.password === null ? '' : `:${encodeURIComponent(source.password)}`}@`;
  const query = Object.entries(source.params).filter(([key]) => !OWN_PARAMS.has(key))
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  // sslmode as libpq (psql, Debezium) means it: require encrypts without checking the certificate, verify-ca checks
  // the CA (sslrootcert), verify-full the host name too. node-postgres alone treats them all as verify-full, so a
  // server's self-signed certificate failed under sslmode=require (with a warning on stderr about the same).
  if (LIBPQ_SSLMODES.has(source.params.sslmode) && !('uselibpqcompat' in source.params)) query.push('uselibpqcompat=true');
  if (host.host.startsWith('/')) {
    // A Unix socket directory cannot stand in the authority: it goes in ?host=.
    query.push(`host=${encodeURIComponent(host.host)}`, `port=${host.port}`);
    return `postgres://${userinfo}/${encodeURIComponent(source.database)}?${query.join('&')}`;
  }
  const hostPart = host.host.includes(':') ? `[${host.host}]` : encodeURIComponent(host.host);
  return `postgres://${userinfo}${hostPart}:${host.port}/${encodeURIComponent(source.database)}${query.length ? `?${query.join('&')}` : ''}`;
}
