// Who may connect and read what: JWTs verified with jose (HS256 secret, a
// JWKS URL, or an RS256/ES256 public key), or `auth: none` (explicit).
// docs/websocket-security.md describes the rules; in short: the algorithm is
// pinned by the configured key (no `alg: none`, no HS256 signed with a public
// key), `aud`/`iss` are checked when configured, `exp`/`nbf` hold with a small
// clock tolerance, and `exp` and `tables` are required unless the config says
// otherwise.
import { jwtVerify, createRemoteJWKSet, importSPKI, type JWTPayload, type JWTVerifyGetKey, type KeyObject } from 'jose';
import type { WebsocketSinkConfig } from '../../config/schema.js';
import { compileTablePatterns, compileTablePattern, type TableMatcher } from '../../relay/route/table-pattern.js';
import { parseFilter, type RowPredicate } from './filter.js';
import type { ChangeEvent } from '../../relay/route/event.js';

export interface Claims {
  /** Tables the holder may subscribe to. */
  mayRead: TableMatcher;
  /** The token reads every table (no `tables` claim where allowed, or "*"): it also gets transaction (begin/commit) events. */
  allTables: boolean;
  /** Message prefixes (pg_logical_emit_message) the holder may receive. */
  mayReadMessage: (prefix: string) => boolean;
  /** Server-enforced row filters: every event must pass those whose table pattern matches. */
  rowFilters: { matches: TableMatcher; predicate: RowPredicate }[];
  /** Expiry in ms since the epoch, or null. */
  expiresAt: number | null;
  /** The token's `sub`, which a Realtime walrelay_client name is bound to; null without auth or without sub. */
  subject: string | null;
  /** The token's `role` claim (the PostgreSQL role row-level security checks run as); null without auth or without role. */
  role: string | null;
  /** The verified token's claims as JSON (request.jwt.claims for row-level security); null without auth. */
  claimsJson: string | null;
}

export const OPEN_CLAIMS: Claims = { mayRead: () => true, allTables: true, mayReadMessage: () => true, rowFilters: [], expiresAt: null, subject: null, role: null, claimsJson: null };

export class AuthError extends Error {}

export interface VerifyOptions {
  /** With authorization: rls a Realtime token may omit the tables claim: every table, each row filtered by row-level security. */
  tablesOptional?: boolean;
}

export type Verifier = (token: string | null, options?: VerifyOptions) => Promise<Claims>;

type AuthConfig = Exclude<WebsocketSinkConfig['auth'], 'none'>;

export async function createVerifier(auth: WebsocketSinkConfig['auth']): Promise<Verifier> {
  if (auth === 'none') return async () => OPEN_CLAIMS;
  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if ('jwtSecret' in auth) {
    key = new TextEncoder().encode(auth.jwtSecret);
    algorithms = ['HS256'];
  } else if ('jwksUrl' in auth) {
    // Keys are cached; a token naming an unknown kid (a rotated key) refetches the set, at most once per cooldown.
    key = createRemoteJWKSet(new URL(auth.jwksUrl), { cooldownDuration: auth.jwksCooldownSeconds * 1000, cacheMaxAge: auth.jwksCacheSeconds * 1000, timeoutDuration: 5000 });
    algorithms = ['RS256', 'ES256'];
  } else {
    key = (await importSPKI(auth.publicKey, auth.algorithm)) as KeyObject;
    algorithms = [auth.algorithm];
  }
  // The algorithm list is fixed by the kind of key configured, never taken from the token: "none" and an
  // HS256 token whose secret is the (public) RSA/EC key are refused before any signature check.
  const options = {
    algorithms,
    audience: auth.audience,
    issuer: auth.issuer,
    clockTolerance: auth.clockToleranceSeconds,
    requiredClaims: auth.requireExp ? ['exp'] : [],
  };
  return async (token, verifyOptions = {}) => {
    if (!token) throw new AuthError('a token is required (Authorization: Bearer … or ?token=…)');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key as any, options));
    } catch (error) {
      throw new AuthError(`invalid token: ${(error as Error).message}`);
    }
    return claimsOf(payload, auth, verifyOptions.tablesOptional === true);
  };
}

/** Start-up warnings for the permissive token choices (docs/websocket-security.md). */
export function authWarnings(auth: WebsocketSinkConfig['auth']): string[] {
  if (auth === 'none') return [];
  const warnings: string[] = [];
  if (!auth.requireExp) warnings.push('auth.requireExp is false: a token without exp never expires');
  if (!auth.requireTables) warnings.push('auth.requireTables is false: a token without a tables claim reads every table and every message');
  return warnings;
}

function claimsOf(payload: JWTPayload, auth: AuthConfig, tablesOptional: boolean): Claims {
  const tables = payload.tables;
  if (tables === undefined && auth.requireTables && !tablesOptional) throw new AuthError('the token has no tables claim (auth.requireTables is true)');
  if (tables !== undefined && (!Array.isArray(tables) || !tables.every((table) => typeof table === 'string'))) {
    throw new AuthError('the tables claim must be an array of schema.table patterns');
  }
  const messages = payload.messages;
  if (messages !== undefined && (!Array.isArray(messages) || !messages.every((prefix) => typeof prefix === 'string'))) {
    throw new AuthError('the messages claim must be an array of message prefixes ("*" for all, "orders.*" for those starting with orders.)');
  }
  const rowFilter = payload.rowFilter ?? {};
  if (typeof rowFilter !== 'object' || rowFilter === null || Array.isArray(rowFilter)) throw new AuthError('the rowFilter claim must map table patterns to filters');
  let rowFilters: Claims['rowFilters'];
  try {
    rowFilters = Object.entries(rowFilter as Record<string, unknown>).map(([pattern, filter]) => ({ matches: compileTablePattern(pattern), predicate: parseFilter(String(filter)) }));
  } catch (error) {
    throw new AuthError(`invalid rowFilter claim: ${(error as Error).message}`);
  }
  const allTables = tables === undefined || (tables as string[]).some((pattern) => pattern === '*' || pattern === '*.*');
  return {
    mayRead: compileTablePatterns(tables as string[] | undefined),
    allTables: allTables && rowFilters.length === 0,
    // Without a messages claim a token restricted to tables gets no messages (they bypass table patterns and row filters);
    // one without a tables claim reads everything, messages included.
    mayReadMessage: messageMatcher(messages as string[] | undefined ?? (tables === undefined ? ['*'] : [])),
    rowFilters,
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
    subject: typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : null,
    role: typeof payload.role === 'string' && payload.role !== '' ? payload.role : null,
    claimsJson: JSON.stringify(payload),
  };
}

/** "*" = every prefix, "orders.*" = prefixes starting with "orders.", anything else = that prefix exactly. */
function messageMatcher(patterns: readonly string[]): (prefix: string) => boolean {
  if (patterns.includes('*')) return () => true;
  const exact = new Set(patterns.filter((pattern) => !pattern.endsWith('*')));
  const starts = patterns.filter((pattern) => pattern.endsWith('*')).map((pattern) => pattern.slice(0, -1));
  return (prefix) => exact.has(prefix) || starts.some((start) => prefix.startsWith(start));
}

/** The claims' tables, row filters and message prefixes, applied to one event (`name` is schema.table, null for events of no table). */
export function mayReceive(claims: Claims, event: ChangeEvent, name: string | null): boolean {
  if (name === null) {
    if (event.op === 'message') return claims.mayReadMessage(event.prefix ?? '');
    // A gap carries no row, only the span of WAL whose changes were lost: every reader must learn that it has to reload.
    if (event.op === 'gap') return true;
    // Transaction events name tables and their change counts: only for tokens that read every table unfiltered.
    return claims.allTables;
  }
  if (!claims.mayRead(name)) return false;
  for (const rule of claims.rowFilters) {
    if (rule.matches(name) && !rule.predicate(event)) return false;
  }
  return true;
}
