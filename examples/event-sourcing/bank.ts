// The application: bank accounts as event streams. Every command appends one
// event to `events` (stream_id, version, type, data) in a transaction, with
// optimistic concurrency on the version, and the same event to `outbox` for
// other services (walrelay routes it as a Debezium-style domain event).
import type pg from 'pg';

export const SCHEMA = `
  CREATE TABLE events (
    stream_id text NOT NULL, version int NOT NULL, type text NOT NULL, data jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (stream_id, version));
  CREATE TABLE outbox (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text NOT NULL, aggregateid text NOT NULL,
    type text NOT NULL, payload jsonb NOT NULL);
`;

export type BankEvent =
  | { type: 'AccountOpened'; data: { owner: string } }
  | { type: 'MoneyDeposited'; data: { amount: number } }
  | { type: 'MoneyWithdrawn'; data: { amount: number } };

/** Appends an event to an account's stream; a concurrent append of the same version fails and is retried by the caller. */
export async function append(pool: pg.Pool, account: string, event: BankEvent): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query('SELECT coalesce(max(version), 0) AS v FROM events WHERE stream_id = $1', [account]);
    const version = Number(rows[0].v) + 1;
    await client.query('INSERT INTO events (stream_id, version, type, data) VALUES ($1, $2, $3, $4)', [account, version, event.type, event.data]);
    await client.query('INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ($1, $2, $3, $4)', ['account', account, event.type, { ...event.data, version }]);
    // The outbox row has done its job once it is in the WAL: walrelay ignores the delete.
    await client.query('DELETE FROM outbox WHERE aggregateid = $1', [account]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** A customer base at work: accounts opened, money in and out. */
export async function runTraffic(pool: pg.Pool, running: () => boolean, accounts = 12): Promise<number> {
  let appended = 0;
  for (let i = 0; i < accounts; i++, appended++) await append(pool, `acc-${i}`, { type: 'AccountOpened', data: { owner: `owner ${i}` } });
  while (running()) {
    const account = `acc-${Math.floor(Math.random() * accounts)}`;
    const amount = 1 + Math.floor(Math.random() * 100);
    await append(pool, account, Math.random() < 0.7 ? { type: 'MoneyDeposited', data: { amount } } : { type: 'MoneyWithdrawn', data: { amount } });
    appended++;
  }
  return appended;
}

/** The truth, computed by the database: what every projection must converge to. */
export async function balancesInDatabase(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query(`
    SELECT stream_id, sum(CASE type WHEN 'MoneyDeposited' THEN (data->>'amount')::int WHEN 'MoneyWithdrawn' THEN -(data->>'amount')::int ELSE 0 END)::int AS balance
    FROM events GROUP BY stream_id ORDER BY stream_id`);
  return Object.fromEntries(rows.map((row) => [row.stream_id, row.balance]));
}
