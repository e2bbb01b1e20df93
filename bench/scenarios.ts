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

/** `scale`: backlog sizes as a fraction of the full benchmark's (--quick: 0.02). */
export function scenarios(scale: number): Scenario[] {
  const smallTx = Math.round(100_000 * scale);
  const largeRows = Math.round(1_000_000 * scale);
  const wideRows = Math.round(200_000 * scale);
  const toastRows = Math.round(5_000 * scale);
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
          await client.query(statements.join('\n'));
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
          await client.query(statements.join('\n'));
        }
        return wideRows;
      },
    },
    {
      name: 'TOASTed values',
      description: `${toastRows.toLocaleString('en')} rows with a 16 kB text value`,
      table: 'bench_toast',
      create: 'CREATE TABLE bench_toast (id bigint PRIMARY KEY, body text)',
      async write(client) {
        for (let start = 1; start <= toastRows; start += 100) {
          await client.query(`INSERT INTO bench_toast SELECT i, (SELECT string_agg(md5((i * 1000 + j)::text), '') FROM generate_series(1, 512) j) FROM generate_series(${start}, ${Math.min(toastRows, start + 99)}) i`);
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
          await client.query(statements.join('\n'));
        }
        for (let start = 1; start <= updates; start += 1000) {
          const end = Math.min(updates, start + 999);
          const statements: string[] = [];
          for (let t = start; t <= end; t += 10) statements.push(`UPDATE bench_mixed SET status = 'paid', amount = amount + 1 WHERE id BETWEEN ${t} AND ${Math.min(end, t + 9)};`);
          await client.query(statements.join('\n'));
        }
        // Deletes take rows from the top of the id range, ten per transaction.
        for (let done = 0; done < deletes; done += 1000) {
          const statements: string[] = [];
          for (let t = done; t < Math.min(deletes, done + 1000); t += 10) {
            const high = inserts - t;
            statements.push(`DELETE FROM bench_mixed WHERE id BETWEEN ${high - Math.min(10, deletes - t) + 1} AND ${high};`);
          }
          await client.query(statements.join('\n'));
        }
        return inserts + updates + deletes;
      },
    },
  ];
}
