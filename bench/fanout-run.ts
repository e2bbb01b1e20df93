// npm run bench:fanout [-- --quick] [--part sweep|edges] [--out DIR] [--cpu-prof DIR]
//   [--rates 100,200] [--protocols native,realtime] [--clients N] [--relay-cli OTHER/dist/relay/cli.js] [--clients-poll-ms 1] [--clients-processes 1] [--same-session]
//
// The fan-out benchmark alone (bench/fanout.ts), on its own PostgreSQL 15 and
// Redis; `npm run bench` runs it too, beside the other sections. Writes
// FANOUT.md into DIR (default bench/).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import pg from 'pg';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedis } from '../test/harness/redis.js';
import { fanOutBenchmark } from './fanout.js';
import { fanOutReport } from './fanout-report.js';
import { machineDescription } from './report.js';
import { startStealMeter } from './cpu-steal.js';

const SOURCE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const quick = args.includes('--quick');
const part = option('--part') as 'sweep' | 'edges' | undefined;
const outDir = option('--out') ?? SOURCE_DIR;
const profileDir = option('--cpu-prof');
const list = (name: string) => option(name)?.split(',');
const rates = list('--rates')?.map(Number);
const protocols = list('--protocols') as ('native' | 'realtime')[] | undefined;
const clients = option('--clients') === undefined ? undefined : Number(option('--clients'));
const relayCli = option('--relay-cli');
const clientsProcesses = option('--clients-processes') === undefined ? undefined : Number(option('--clients-processes'));
const ownSessions = !args.includes('--same-session');
const clientsPollMs = option('--clients-poll-ms') === undefined ? undefined : Number(option('--clients-poll-ms'));
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function main(): Promise<void> {
  const postgres = await startPostgres('pg15', { synchronous_commit: 'on', max_replication_slots: '20', max_wal_senders: '20', autovacuum: 'off' });
  const redis = await startRedis();
  try {
    const pool = new pg.Pool({ connectionString: postgres.url, max: 1 });
    const version = (await pool.query('SHOW server_version')).rows[0].server_version as string;
    await pool.end();
    const load = loadavg();
    const steal = startStealMeter();
    const results = await fanOutBenchmark(postgres.url, redis.url, { quick, part, log, nodeArgs: profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [], rates, protocols, clients, relayCli, clientsPollMs, clientsProcesses, ownSessions });
    const report = [
      '# walrelay fan-out benchmark',
      '',
      `Produced by \`npm run bench:fanout${quick ? ' -- --quick' : ''}\` on:`,
      '',
      machineDescription(version),
      `- load average at start ${load.map((value) => value.toFixed(2)).join(' / ')}, at end ${loadavg().map((value) => value.toFixed(2)).join(' / ')}; CPU steal ${steal().toFixed(0)}%`,
      '',
      fanOutReport(results),
    ].join('\n');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'FANOUT.md'), report);
    process.stdout.write(report);
  } finally {
    await Promise.all([postgres.stop(), redis.stop()]);
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
