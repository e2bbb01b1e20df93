// A writer that commits numbered rows in a loop and keeps going through
// server restarts (reconnecting), plus the check every fault test ends with:
// each row committed to PostgreSQL arrived, and a row delivered twice came as
// the identical event both times.
import assert from 'node:assert/strict';
import pg from 'pg';
import type { Redis } from 'ioredis';
import type { ChangeEvent } from '../../relay/route/event.js';
import { streamEvents } from './relay.js';
import { waitFor } from './wait.js';

export interface RowWriter {
  /** Rows whose COMMIT PostgreSQL acknowledged. */
  readonly acknowledged: number;
  /** Commits that failed (server gone); the writer reconnected and carried on with new ids. */
  readonly failures: number;
  /** Stops after the transaction in progress; resolves with every acknowledged id. */
  stop(): Promise<Set<number>>;
}

/** Inserts (id, note) rows into `table`, `rowsPerTx` per transaction, a transaction every `intervalMs`. */
export function startRowWriter(url: string, table: string, { rowsPerTx = 10, intervalMs = 10, firstId = 1 } = {}): RowWriter {
  const acknowledged = new Set<number>();
  let failures = 0;
  let stopping = false;
  const loop = (async () => {
    let client: pg.Client | null = null;
    let next = firstId;
    while (!stopping) {
      try {
        if (!client) {
          client = new pg.Client({ connectionString: url });
          client.on('error', () => undefined);
          await client.connect();
        }
        const last = next + rowsPerTx - 1;
        const ids = { from: next, to: last };
        next = last + 1; // a failed commit may still have committed: its ids are never reused
        await client.query(`INSERT INTO ${table} SELECT i, 'row ' || i FROM generate_series(${ids.from}, ${ids.to}) i`);
        for (let id = ids.from; id <= ids.to; id++) acknowledged.add(id);
      } catch {
        failures++;
        await client?.end().catch(() => undefined);
        client = null;
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    await client?.end().catch(() => undefined);
  })();
  return {
    get acknowledged() { return acknowledged.size; },
    get failures() { return failures; },
    async stop() {
      stopping = true;
      await loop;
      return acknowledged;
    },
  };
}

/** Ids of the rows in `table` now: what PostgreSQL holds as committed. */
export async function committedIds(query: (sql: string) => Promise<{ id: number }[]>, table: string): Promise<Set<number>> {
  return new Set((await query(`SELECT id FROM ${table}`)).map((row) => row.id));
}

/**
 * Waits until every id in `committed` has arrived in `stream`, then checks
 * that each row arrived as one event, or as identical re-deliveries.
 */
export async function assertEveryRowDelivered(redis: Redis, stream: string, committed: Set<number>, timeoutMs = 90_000): Promise<{ events: number; duplicates: number }> {
  let byRow = new Map<number, string>();
  let events = 0;
  let duplicates = 0;
  let mismatch: string | null = null;
  await waitFor(async () => {
    byRow = new Map();
    events = 0;
    duplicates = 0;
    for await (const event of streamEvents(redis, stream)) {
      events++;
      const id = (event as ChangeEvent).new!.id as number;
      const body = JSON.stringify(event);
      const seen = byRow.get(id);
      if (seen !== undefined) {
        duplicates++;
        if (body !== seen) mismatch = `row ${id} was delivered twice with different events:\n${seen}\n${body}`;
      }
      byRow.set(id, body);
    }
    if (mismatch) return true;
    for (const id of committed) if (!byRow.has(id)) return false;
    return true;
  }, { what: `all ${committed.size} committed rows in ${stream}`, timeoutMs, intervalMs: 500 }).catch((error) => {
    const missing = [...committed].filter((id) => !byRow.has(id));
    throw new Error(`${(error as Error).message}: ${missing.length} missing, e.g. ${missing.slice(0, 10).join(', ')}`);
  });
  assert.equal(mismatch, null);
  for (const id of byRow.keys()) assert.ok(committed.has(id), `row ${id} was delivered but is not in the table`);
  return { events, duplicates };
}
