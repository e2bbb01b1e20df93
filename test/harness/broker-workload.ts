// Workloads and checks shared by the broker sink tests (NATS, RabbitMQ):
// the same keys inserted, updated and deleted across transactions, and a
// writer that keeps committing through faults; then the check that every
// committed change arrived, in commit order per key, and that a change
// delivered twice came as the identical event.
import assert from 'node:assert/strict';
import pg from 'pg';
import type { ChangeEvent } from '../../relay/route/event.js';

/** A delivered event and the message id the broker carried it under. */
export interface Delivered {
  messageId: string;
  body: string;
}

/** Keys 1..keys: inserted, updated `rounds` times in transactions of several keys, a third deleted, the rest updated once more. */
export async function mixedWorkload(url: string, table: string, keys = 60, rounds = 4): Promise<Map<number, string[]>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const expected = new Map<number, string[]>();
  try {
    await client.query(`INSERT INTO ${table} SELECT i, 0 FROM generate_series(1, ${keys}) i`);
    for (let id = 1; id <= keys; id++) expected.set(id, ['insert:0']);
    for (let round = 1; round <= rounds; round++) {
      // Each round in 3 transactions of interleaved keys.
      for (let part = 0; part < 3; part++) {
        await client.query(`UPDATE ${table} SET n = ${round} WHERE id % 3 = ${part}`);
        for (let id = 1; id <= keys; id++) if (id % 3 === part) expected.get(id)!.push(`update:${round}`);
      }
    }
    await client.query(`DELETE FROM ${table} WHERE id % 3 = 0`);
    await client.query(`UPDATE ${table} SET n = ${rounds + 1}`);
    for (let id = 1; id <= keys; id++) expected.get(id)!.push(id % 3 === 0 ? 'delete' : `update:${rounds + 1}`);
  } finally {
    await client.end();
  }
  return expected;
}

/** Each key's changes, in the order of their first arrival, as "op:n" ("delete" for deletes). */
export function historyByKey(delivered: readonly Delivered[]): Map<number, string[]> {
  const seen = new Map<string, string>();
  const history = new Map<number, string[]>();
  for (const { messageId, body } of delivered) {
    const previous = seen.get(messageId);
    if (previous !== undefined) {
      assert.equal(body, previous, `message ${messageId} was delivered twice with different bodies`);
      continue;
    }
    seen.set(messageId, body);
    const event = JSON.parse(body) as ChangeEvent;
    const id = (event.new ?? event.key ?? event.old)!.id as number;
    const list = history.get(id) ?? [];
    list.push(event.op === 'delete' ? 'delete' : `${event.op}:${event.new!.n}`);
    history.set(id, list);
  }
  return history;
}

export interface FaultWriter {
  /** Stops after the transaction in progress; resolves with what PostgreSQL holds: the highest id, and n of the hot keys. */
  stop(): Promise<{ lastId: number; hot: Map<number, number> }>;
  readonly transactions: number;
}

/** Hot keys updated in every transaction (their order is what a resend could break). */
export const HOT_KEYS = [1, 2, 3, 4, 5];

/** Commits, in a loop: 10 new rows and an update of the hot keys, per transaction. */
export function startFaultWriter(url: string, table: string, intervalMs = 5): FaultWriter {
  let stopping = false;
  let transactions = 0;
  const client = new pg.Client({ connectionString: url });
  const loop = (async () => {
    await client.connect();
    await client.query(`INSERT INTO ${table} SELECT i, 0 FROM generate_series(1, ${HOT_KEYS.length}) i`);
    let next = HOT_KEYS.length + 1;
    while (!stopping) {
      await client.query(`BEGIN; INSERT INTO ${table} SELECT i, 0 FROM generate_series(${next}, ${next + 9}) i; UPDATE ${table} SET n = n + 1 WHERE id <= ${HOT_KEYS.length}; COMMIT`);
      next += 10;
      transactions++;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    get transactions() { return transactions; },
    async stop() {
      stopping = true;
      await loop;
      const [{ last }] = (await client.query(`SELECT max(id) AS last FROM ${table}`)).rows;
      const hot = new Map<number, number>((await client.query(`SELECT id, n FROM ${table} WHERE id <= ${HOT_KEYS.length}`)).rows.map((row) => [row.id, row.n]));
      await client.end();
      return { lastId: last, hot };
    },
  };
}

/**
 * Every row 1..lastId arrived, each hot key's values arrived as 0, 1, 2, …
 * up to its committed value (nothing lost, commit order), and first
 * arrivals are in commit order overall. Returns the number of re-deliveries.
 */
export function assertFaultDelivery(delivered: readonly Delivered[], committed: { lastId: number; hot: Map<number, number> }): number {
  const history = historyByKey(delivered);
  const missing: number[] = [];
  for (let id = 1; id <= committed.lastId; id++) if (!history.has(id)) missing.push(id);
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} committed rows never arrived`);
  for (const id of HOT_KEYS) {
    const values = history.get(id)!.map((entry) => Number(entry.split(':')[1]));
    const final = committed.hot.get(id)!;
    assert.deepEqual(values, Array.from({ length: final + 1 }, (_, n) => n), `hot key ${id}: changes lost or out of commit order`);
  }
  let previous = '';
  const firsts = new Set<string>();
  for (const { messageId } of delivered) {
    if (firsts.has(messageId)) continue;
    firsts.add(messageId);
    assert.ok(messageId > previous, `message ${messageId} first arrived after ${previous}`);
    previous = messageId;
  }
  return delivered.length - firsts.size;
}
