// Mistakes that would otherwise pass in silence: a sink `tables` pattern that
// matches no published table (that sink never receives those changes), a
// table of source.tables that does not exist or is not published. `run` logs
// these at start, `validate` prints them when it can reach PostgreSQL.
import type pg from 'pg';
import type { Config } from '../../config/schema.js';
import { compileTablePattern } from '../route/table-pattern.js';
import { publishedTableNames } from './preflight.js';
import { checkColumnPolicyKeys } from './column-policy-check.js';
import { WalrelayError } from '../errors.js';
import { connectPrimary } from '../source/primary.js';
import { hostLabel } from '../source/hosts.js';

export async function coverageWarnings(client: pg.Client, config: Config): Promise<string[]> {
  const { publication, tables } = config.source;
  const warnings: string[] = [];
  const exists = (await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication])).rowCount === 1;
  if (!exists) return [`publication ${publication} does not exist; run "walrelay setup -c FILE"`];
  const published = await publishedTableNames(client, publication);
  const shown = published.length > 8 ? `${published.slice(0, 8).join(', ')}, …` : published.join(', ') || 'none';

  for (const name of tables ?? []) {
    const dot = name.indexOf('.');
    const found = (await client.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [name.slice(0, dot), name.slice(dot + 1)])).rowCount === 1;
    if (!found) warnings.push(`source.tables: table ${name} does not exist (setup will fail until it does)`);
  }
  config.sinks.forEach((sink, index) => {
    for (const pattern of sink.tables ?? []) {
      const matches = compileTablePattern(pattern);
      if (!published.some((name) => matches(name))) {
        warnings.push(`sinks[${index}].tables: "${pattern}" matches no table of publication ${publication} (published: ${shown}); sink ${sink.name ?? `${sink.type}#${index}`} receives nothing for it`);
      }
    }
  });
  return warnings;
}

export type SourceCheck = { reached: true; host: string; warnings: string[] } | { reached: false; reason: string };

/**
 * For `validate`: the warnings above when PostgreSQL answers within a few
 * seconds, else why it was not checked. A column policy that drops a key
 * column is an error here too, as it is for `run`.
 */
export async function checkAgainstSource(config: Config): Promise<SourceCheck> {
  let client: pg.Client | undefined;
  try {
    const primary = await connectPrimary(config.source.url, { clientConfig: { application_name: 'walrelay-validate', connectionTimeoutMillis: 3000 } });
    client = primary.client;
    await checkColumnPolicyKeys(client, config);
    return { reached: true, host: hostLabel(primary.host), warnings: await coverageWarnings(client, config) };
  } catch (error) {
    if (error instanceof WalrelayError && error.kind === 'config') throw error;
    return { reached: false, reason: (error as Error).message };
  } finally {
    await client?.end().catch(() => undefined);
  }
}
