// Who may connect and read what: JWTs verified with jose (HS256 secret, a
// JWKS URL, or an RS256/ES256 public key), or `auth: none` (explicit).
import { jwtVerify, createRemoteJWKSet, importSPKI, type JWTPayload, type JWTVerifyGetKey, type KeyObject } from 'jose';
import type { WebsocketSinkConfig } from '../../config/schema.js';
import { compileTablePatterns, compileTablePattern, type TableMatcher } from '../../relay/route/table-pattern.js';
import { parseFilter, type RowPredicate } from './filter.js';
import type { ChangeEvent } from '../../relay/route/event.js';

export interface Claims {
  /** Tables the holder may subscribe to. */
  mayRead: TableMatcher;
  /** Server-enforced row filters: every event must pass those whose table pattern matches. */
  rowFilters: { matches: TableMatcher; predicate: RowPredicate }[];
  /** Expiry in ms since the epoch, or null. */
  expiresAt: number | null;
}

export const OPEN_CLAIMS: Claims = { mayRead: () => true, rowFilters: [], expiresAt: null };

export class AuthError extends Error {}

export type Verifier = (token: string | null) => Promise<Claims>;

export async function createVerifier(auth: WebsocketSinkConfig['auth']): Promise<Verifier> {
  if (auth === 'none') return async () => OPEN_CLAIMS;
  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if ('jwtSecret' in auth) {
    key = new TextEncoder().encode(auth.jwtSecret);
    algorithms = ['HS256'];
  } else if ('jwksUrl' in auth) {
    key = createRemoteJWKSet(new URL(auth.jwksUrl));
    algorithms = ['RS256', 'ES256'];
  } else {
    key = (await importSPKI(auth.publicKey, auth.algorithm)) as KeyObject;
    algorithms = [auth.algorithm];
  }
  return async (token) => {
    if (!token) throw new AuthError('a token is required (Authorization: Bearer … or ?token=…)');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key as any, { algorithms }));
    } catch (error) {
      throw new AuthError(`invalid token: ${(error as Error).message}`);
    }
    return claimsOf(payload);
  };
}

function claimsOf(payload: JWTPayload): Claims {
  const tables = payload.tables;
  if (tables !== undefined && (!Array.isArray(tables) || !tables.every((table) => typeof table === 'string'))) {
    throw new AuthError('the tables claim must be an array of schema.table patterns');
  }
  const rowFilter = payload.rowFilter ?? {};
  if (typeof rowFilter !== 'object' || rowFilter === null || Array.isArray(rowFilter)) throw new AuthError('the rowFilter claim must map table patterns to filters');
  let rowFilters: Claims['rowFilters'];
  try {
    rowFilters = Object.entries(rowFilter as Record<string, unknown>).map(([pattern, filter]) => ({ matches: compileTablePattern(pattern), predicate: parseFilter(String(filter)) }));
  } catch (error) {
    throw new AuthError(`invalid rowFilter claim: ${(error as Error).message}`);
  }
  return {
    mayRead: compileTablePatterns(tables as string[] | undefined),
    rowFilters,
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
  };
}

/** The claims' tables and row filters, applied to one event (`name` is schema.table, null for messages). */
export function mayReceive(claims: Claims, event: ChangeEvent, name: string | null): boolean {
  if (name === null) return true;
  if (!claims.mayRead(name)) return false;
  for (const rule of claims.rowFilters) {
    if (rule.matches(name) && !rule.predicate(event)) return false;
  }
  return true;
}
