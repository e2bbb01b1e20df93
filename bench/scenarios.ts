// The backlogs the benchmark drains: each writes rows into its own table and
// says how many change events it produced.
import type pg from 'pg';

export interface Scenario {
  name: string;
  description: string;
  table: string;
  create: string;
  /** Writes the backlog; returns the number of change events. */
  write(client: pg.Client): Promise<number>;
}

/**
 * Statements sent in one round trip, each its own transaction. Without the
 * explicit BEGIN/COMMIT, PostgreSQL runs every statement of one simple Query
 * message in a single transaction: the "10-row transactions" were 1,000-row
 * ones until 2026-12-06.
 */
function asTransactions(statements: readonly string[]): string {
  return statements.map((statement) => `BEGIN; ${statement} COMMIT;`).join('\n');
}

/** `scale`: backlog sizes as a fraction of the full benchmark's (--quick: 0.02). */
export function scenarios(scale: number): Scenario[] {
  const smallTx = Math.round(100_000 * scale);
  const largeRows = Math.round(1_000_000 * scale);
  const wideRows = Math.round(200_000 * scale);
  const toastRows = Math.max(3, Math.round(1_000 * scale));
  const mixedOps = Math.round(300_000 * scale);
  const wideColumns = Array.from({ length: 48 }, (_, i) => `c${i} ${i % 3 === 0 ? 'int' : i % 3 === 1 ? 'text' : 'numeric'}`).join(', ');
  const wideValues = Array.from({ length: 48 }, (_, i) => (i % 3 === 0 ? `i + ${i}` : i % 3 === 1 ? `'value ' || i` : `(i * ${i})::numeric / 7`)).join(', ');
  return [
    {
      name: 'small transactions',
      description: `${smallTx.toLocaleString('en')} transactions × 10 rows`,
      table: 'bench_small',
      create: 'CREATE TABLE bench_small (id bigint PRIMARY KEY, account int, note text, amount numeric, at timestamptz)',
      async write(client) {
        // Ten rows per transaction, many transactions per round trip.
        const perStatement = 100;
        for (let tx = 0; tx < smallTx; tx += perStatement) {
          const statements: string[] = [];
          for (let t = tx; t < Math.min(smallTx, tx + perStatement); t++) {
            statements.push(`INSERT INTO bench_small SELECT i, i % 1000, 'payment ' || i, i * 1.5, now() FROM generate_series(${t * 10 + 1}, ${t * 10 + 10}) i;`);
          }
          await client.query(asTransactions(statements));
        }
        return smallTx * 10;
      },
    },
    {
      name: 'one large transaction',
      description: `${largeRows.toLocaleString('en')} rows in one transaction`,
      table: 'bench_large',
      create: 'CREATE TABLE bench_large (id bigint PRIMARY KEY, account int, note text, amount numeric, at timestamptz)',
      async write(client) {
        await client.query(`INSERT INTO bench_large SELECT i, i % 1000, 'payment ' || i, i * 1.5, now() FROM generate_series(1, ${largeRows}) i`);
        return largeRows;
      },
    },
    {
      name: 'wide rows',
      description: `${wideRows.toLocaleString('en')} rows × 50 columns, 10 per transaction`,
      table: 'bench_wide',
      create: `CREATE TABLE bench_wide (id bigint PRIMARY KEY, at timestamptz, ${wideColumns})`,
      async write(client) {
        for (let start = 1; start <= wideRows; start += 1000) {
          const statements: string[] = [];
          for (let t = start; t < Math.min(wideRows + 1, start + 1000); t += 10) {
            statements.push(`INSERT INTO bench_wide SELECT i, now(), ${wideValues} FROM generate_series(${t}, ${Math.min(wideRows, t + 9)}) i;`);
          }
          await client.query(asTransactions(statements));
        }
        return wideRows;
      },
    },
    {
      name: 'TOASTed values',
      description: `${toastRows.toLocaleString('en')} rows with one value of 100 KiB–1 MiB each (text, jsonb and bytea in turn; ${TOAST_ROWS_PER_TRANSACTION} per transaction)`,
      table: 'bench_toast',
      // Stored out of line uncompressed (STORAGE EXTERNAL): the values repeat a block, which pglz would shrink to almost
      // nothing, and then the walsender would spend its time decompressing instead of sending.
      create: 'CREATE TABLE bench_toast (id bigint PRIMARY KEY, body text, doc jsonb, blob bytea); ' +
        'ALTER TABLE bench_toast ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN doc SET STORAGE EXTERNAL, ALTER COLUMN blob SET STORAGE EXTERNAL',
      async write(client) {
        // One statement (and transaction) per few rows: each transaction stays well below logical_decoding_work_mem (64 MB),
        // so the walsender does not spill it to disk.
        for (let start = 1; start <= toastRows; start += TOAST_ROWS_PER_TRANSACTION) {
          await client.query(toastInsert(start, Math.min(toastRows, start + TOAST_ROWS_PER_TRANSACTION - 1)));
        }
        return toastRows;
      },
    },
    {
      name: 'mixed insert/update/delete',
      description: `${mixedOps.toLocaleString('en')} changes: 50% insert, 35% update, 15% delete`,
      table: 'bench_mixed',
      create: 'CREATE TABLE bench_mixed (id bigint PRIMARY KEY, status text, amount numeric, at timestamptz)',
      async write(client) {
        const inserts = Math.round(mixedOps * 0.5);
        const updates = Math.round(mixedOps * 0.35);
        const deletes = mixedOps - inserts - updates;
        for (let start = 1; start <= inserts; start += 1000) {
          const end = Math.min(inserts, start + 999);
          const statements: string[] = [];
          for (let t = start; t <= end; t += 10) statements.push(`INSERT INTO bench_mixed SELECT i, 'new', i, now() FROM generate_series(${t}, ${Math.min(end, t + 9)}) i;`);
          await client.query(asTransactions(statements));
        }
        for (let start = 1; start <= updates; start += 1000) {
          const end = Math.min(updates, start + 999);
          const statements: string[] = [];
          for (let t = start; t <= end; t += 10) statements.push(`UPDATE bench_mixed SET status = 'paid', amount = amount + 1 WHERE id BETWEEN ${t} AND ${Math.min(end, t + 9)};`);
          await client.query(asTransactions(statements));
        }
        // Deletes take rows from the top of the id range, ten per transaction.
        for (let done = 0; done < deletes; done += 1000) {
          const statements: string[] = [];
          for (let t = done; t < Math.min(deletes, done + 1000); t += 10) {
            const high = inserts - t;
            statements.push(`DELETE FROM bench_mixed WHERE id BETWEEN ${high - Math.min(10, deletes - t) + 1} AND ${high};`);
          }
          await client.query(asTransactions(statements));
        }
        return inserts + updates + deletes;
      },
    },
  ];
}

const TOAST_ROWS_PER_TRANSACTION = 10;

/** The size of row i's TOASTed value: 100 KiB to 1 MiB, spread over the rows (toastInsert computes the same in SQL). */
export function toastValueBytes(i: number): number {
  return 102_400 + ((i * 7919) % 946_177);
}

/**
 * Rows first…last of the TOAST backlog: row i holds one value, of about
 * toastValueBytes(i) bytes (text: exactly; jsonb: in its output form; bytea:
 * as stored, twice that in hex output), in body (text, i % 3 = 0), doc
 * (jsonb, 1) or blob (bytea, 2). Text is lines of hex words with a quoted word (three escapes
 * per 134 bytes in JSON); jsonb an array of small objects; bytea md5 bytes.
 * bench/core-cpu.ts builds the same shapes.
 */
function toastInsert(first: number, last: number): string {
  const size = '(102400 + (i * 7919) % 946177)';
  const line = `md5((i * 64 + j)::text) || ' ' || md5((i * 64 + j + 1)::text) || ' "' || md5((j)::text) || '" ' || md5((i - j)::text) || E'\\n'`;
  const element = `format('{"id": %s, "tags": ["%s", "bench"], "hash": "%s", "note": "a \\"quoted\\" word\\nand a second line", "score": %s.5}', i * 64 + j, left(md5(j::text), 8), md5((i + j)::text), j)`;
  return `INSERT INTO bench_toast (id, body, doc, blob) SELECT i,
    CASE WHEN i % 3 = 0 THEN left(repeat(lines.block, ${size} / length(lines.block) + 1), ${size}) END,
    CASE WHEN i % 3 = 1 THEN ('[' || repeat(elements.block || ', ', ${size} / (length(elements.block) + 2)) || elements.block || ']')::jsonb END,
    CASE WHEN i % 3 = 2 THEN decode(left(repeat(hex.block, 2 * ${size} / length(hex.block) + 1), 2 * ${size}), 'hex') END
    FROM generate_series(${first}, ${last}) i,
    LATERAL (SELECT string_agg(${line}, '') AS block FROM generate_series(1, 60) j) lines,
    LATERAL (SELECT string_agg(${element}, ', ') AS block FROM generate_series(1, 64) j) elements,
    LATERAL (SELECT string_agg(md5((i * 256 + j)::text), '') AS block FROM generate_series(1, 256) j) hex`;
}
