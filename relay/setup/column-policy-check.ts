// At startup: a column policy that would drop a key column of a published
// table is a configuration error, reported before any event flows (the
// policy also refuses it on the first such event, for tables published later).
import type pg from 'pg';
import type { Config } from '../../config/schema.js';
import { ColumnPolicy, keyDropError } from '../stages/column-policy.js';

export async function checkColumnPolicyKeys(client: pg.Client, config: Config): Promise<void> {
  const policies = config.sinks.flatMap((sink, index) => {
    const where = `sinks[${index}].columns`;
    return sink.columns && Object.values(sink.columns).includes('drop') ? [{ where, policy: new ColumnPolicy(sink.columns, config.columnHashKey, where) }] : [];
  });
  if (policies.length === 0) return;
  // The event key: replica identity index, else the primary key (also for REPLICA IDENTITY FULL).
  const { rows } = await client.query<{ name: string; column: string }>(`
    SELECT n.nspname || '.' || c.relname AS name, a.attname AS column
    FROM pg_publication_tables pt
    JOIN pg_namespace n ON n.nspname = pt.schemaname
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
    JOIN pg_index i ON i.indrelid = c.oid AND CASE c.relreplident WHEN 'i' THEN i.indisreplident ELSE i.indisprimary END
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
    WHERE pt.pubname = $1 AND c.relreplident <> 'n'`, [config.source.publication]);
  for (const { where, policy } of policies) {
    for (const { name, column } of rows) {
      const rule = policy.dropRuleFor(name, column);
      if (rule !== undefined) throw keyDropError(where, name, column, rule);
    }
  }
}
