// PostgreSQL errors as the operator meets them: every error that reaches the
// command line from setup, status, teardown or backfill gets a stable code and
// a hint naming the fix, decided here from its SQLSTATE (and, for network
// failures, Node's errno), never by matching message text elsewhere.
import { WalrelayError } from '../errors.js';

interface Translation {
  code: string;
  hint: string;
  /** Waiting and trying again can help (the server is starting, full, unreachable). */
  retriable?: boolean;
}

/** Exact SQLSTATEs first; then the two-character class. */
const BY_SQLSTATE: Record<string, Translation> = {
  '28P01': { code: 'SOURCE_AUTH', hint: 'check the user and password in source.url (or DATABASE_URL)' },
  '28000': { code: 'SOURCE_AUTH', hint: 'the server refused this user, database or address: add a line for it to pg_hba.conf and reload PostgreSQL' },
  '3D000': { code: 'DATABASE_MISSING', hint: 'check the database name in source.url, or create the database' },
  '42501': { code: 'PERMISSION_DENIED', hint: 'run "walrelay setup --print-sql -c FILE" and have a superuser run what it prints' },
  '42P01': { code: 'TABLE_MISSING', hint: 'create the table first, or correct source.tables (names are schema.table)' },
  '42704': { code: 'OBJECT_MISSING', hint: 'run "walrelay setup -c FILE" to create the publication and slot' },
  '42710': { code: 'ALREADY_EXISTS', hint: 'the object exists already; run "walrelay status -c FILE" to see it' },
  '55006': { code: 'OBJECT_IN_USE', hint: 'another process uses it (a running walrelay holds its slot); stop it first, then try again', retriable: true },
  '55P03': { code: 'LOCK_NOT_AVAILABLE', hint: 'another session holds a lock on it; try again when it has finished', retriable: true },
  '53300': { code: 'TOO_MANY_CONNECTIONS', hint: 'the server is out of connection slots (max_connections / max_wal_senders); close idle sessions or raise the limit', retriable: true },
  '53400': { code: 'CONFIGURATION_LIMIT', hint: 'raise max_replication_slots (or max_wal_senders) and restart PostgreSQL, or drop unused slots', retriable: false },
  '57P03': { code: 'SOURCE_STARTING', hint: 'PostgreSQL is starting up or shutting down; try again in a moment', retriable: true },
  '57P01': { code: 'SOURCE_SHUTDOWN', hint: 'PostgreSQL was shut down by an administrator; start it and try again', retriable: true },
  '0A000': { code: 'NOT_SUPPORTED', hint: 'this PostgreSQL does not support the operation; walrelay needs PostgreSQL 14 or newer with wal_level = logical' },
};

const BY_CLASS: Record<string, Translation> = {
  '08': { code: 'SOURCE_UNREACHABLE', hint: 'the connection to PostgreSQL failed; check that it runs and is reachable at source.url', retriable: true },
  '28': BY_SQLSTATE['28P01'],
  '42': { code: 'SQL_ERROR', hint: 'check source.tables, source.publication and source.slot against the database' },
  '53': { code: 'SOURCE_RESOURCES', hint: 'PostgreSQL is out of a resource (disk, memory, connections); see its log', retriable: true },
  '55': { code: 'OBJECT_STATE', hint: 'the object is not in a usable state; see "walrelay status -c FILE"' },
  '57': { code: 'SOURCE_INTERRUPTED', hint: 'PostgreSQL cancelled the statement or is shutting down; try again', retriable: true },
  '58': { code: 'SOURCE_SYSTEM_ERROR', hint: 'PostgreSQL had a system error (disk, file); see its log' },
  XX: { code: 'SOURCE_INTERNAL_ERROR', hint: 'PostgreSQL reported an internal error; see its log' },
};

const NETWORK_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/**
 * Turns anything thrown by `pg` into a WalrelayError with a code and a hint.
 * `doing` says what walrelay was doing ("creating publication walrelay"), so
 * the message reads as a sentence.
 */
/** Node's codes for a server certificate that TLS verification refused. */
const TLS_CERTIFICATE_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE',
]);

export function fromPgError(error: unknown, doing: string): WalrelayError {
  if (error instanceof WalrelayError) return error;
  const failure = error as Error & { code?: string };
  const message = `${doing}: ${failure?.message ?? String(error)}`;
  const sqlstate = typeof failure?.code === 'string' && /^[0-9A-Z]{5}$/.test(failure.code) ? failure.code : undefined;
  if (sqlstate) {
    const translation = BY_SQLSTATE[sqlstate] ?? BY_CLASS[sqlstate.slice(0, 2)] ?? { code: 'SOURCE_ERROR', hint: 'see the PostgreSQL log for details' };
    return new WalrelayError(translation.code, `${message} (SQLSTATE ${sqlstate})`, { hint: translation.hint, retriable: translation.retriable ?? false, cause: error });
  }
  if (failure?.code && TLS_CERTIFICATE_ERRORS.has(failure.code)) {
    // walrelay refused PostgreSQL's certificate (sslmode=verify-ca / verify-full): the server's log only saw the connection end.
    return new WalrelayError('SOURCE_TLS', `${message} (walrelay did not accept PostgreSQL's TLS certificate)`, {
      hint: 'give the CA that signed it with sslrootcert=/path/to/ca.pem in source.url, connect by a name the certificate lists ' +
        '(sslmode=verify-full checks it), or use sslmode=require to encrypt without checking (docs/security.md)',
      retriable: false, cause: error,
    });
  }
  const path = (failure as { path?: unknown })?.path;
  if ((failure?.code === 'ENOENT' || failure?.code === 'EACCES') && typeof path === 'string') {
    return new WalrelayError('SOURCE_TLS', `${doing}: cannot read ${path} (${failure.code}), named by sslrootcert, sslcert or sslkey in source.url`, {
      hint: 'check the path in source.url and that walrelay\'s user may read the file', retriable: false, cause: error,
    });
  }
  if (failure?.code && NETWORK_ERRNO.has(failure.code)) {
    return new WalrelayError('SOURCE_UNREACHABLE', message, {
      hint: 'check source.url (or DATABASE_URL), that PostgreSQL is running, and that it listens on that address', retriable: true, cause: error,
    });
  }
  return new WalrelayError('SOURCE_ERROR', message, { hint: 'see the PostgreSQL log for details', retriable: true, cause: error });
}

/** Runs one step, translating a PostgreSQL error into a WalrelayError that says which step failed. */
export async function step<T>(doing: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw fromPgError(error, doing);
  }
}
