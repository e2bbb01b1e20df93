#!/usr/bin/env node
// walrelay's command line (contract section 1). Exit codes: 0 success,
// 2 bad configuration or usage, 1 runtime failure.
import { dirname, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { loadConfig, loadEdgeConfig, loadRelayOrEdgeConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger, envLogFormat, envLogLevel } from './log.js';
import { WalrelayError, configError, describeError, exitCodeOf } from './errors.js';
import { backfillTables } from './backfill/backfill.js';
import { readStatus, setupReplication, teardownReplication, type SlotStatus } from './setup/setup.js';
import { startRelay } from './ops/daemon.js';
import { rebuildTarget } from './backfill/rebuild.js';
import { privilegeSql } from './setup/print-sql.js';
import { checkAgainstSource } from './setup/coverage.js';
import { configJsonSchema } from '../config/json-schema.js';

/** package.json sits two folders above dist/relay/cli.js, in a clone and in the installed package. */
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('walrelay')
  .description('PostgreSQL change data capture (pgoutput) to Redis, Kafka, NATS, RabbitMQ, webhooks, WebSockets and stdout')
  .version(version, '-v, --version', 'print the version')
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

const configOption = ['-c, --config <file>', 'configuration file (YAML or JSON); default $WALRELAY_CONFIG'] as const;

program.command('run').description('stream changes to every configured sink until SIGTERM/SIGINT')
  .option(...configOption)
  .action(async (options: { config?: string }) => {
    const config = loadConfig(options.config);
    const logger = createLogger(envLogLevel() ?? config.log.level, envLogFormat() ?? config.log.format);
    const relay = await startRelay(config, logger);
    let first: { signal: string; at: number } | null = null;
    const onSignal = (signal: string) => {
      if (first) {
        // One stop request can arrive twice: GNU timeout and some supervisors signal the process and its group.
        if (signal === 'SIGTERM' && first.signal === 'SIGTERM' && Date.now() - first.at < 1000) return;
        logger.warn({ signal }, 'second signal: exiting without draining (unconfirmed changes will be re-sent)');
        process.exit(1);
      }
      first = { signal, at: Date.now() };
      logger.info({ signal }, 'draining and stopping');
      relay.stop().then(() => logger.flush?.());
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    await relay.done;
  });

program.command('edge').description('serve websocket sinks from the relay\'s feed (no PostgreSQL, no slot) until SIGTERM/SIGINT; docs/edges.md')
  .option(...configOption)
  .action(async (options: { config?: string }) => {
    const config = loadEdgeConfig(options.config);
    const logger = createLogger(envLogLevel() ?? config.log.level, envLogFormat() ?? config.log.format);
    const { startEdge } = await import('./edge/edge.js');
    const edge = await startEdge(config, logger);
    await new Promise<void>((resolve) => {
      const onSignal = (signal: string) => {
        logger.info({ signal }, 'edge stopping');
        edge.stop().then(() => resolve());
      };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
    });
  });

program.command('setup').description('create the publication and slot if missing (idempotent) and check the server')
  .option(...configOption)
  .option('--print-sql', 'print the SQL a superuser runs so that a least-privilege role can use walrelay; connects to nothing')
  .action(async (options: { config?: string; printSql?: boolean }) => {
    const config = loadConfig(options.config);
    if (options.printSql) {
      console.log(privilegeSql(config));
      return;
    }
    const logger = createLogger('warn');
    await setupReplication(config, logger, (line) => console.log(line));
  });

program.command('status').description('slot, confirmed LSN, lag, wal_status and published tables')
  .option(...configOption)
  .option('--json', 'print JSON')
  .action(async (options: { config?: string; json?: boolean }) => {
    const config = loadConfig(options.config);
    const status = await readStatus(config);
    console.log(options.json ? JSON.stringify(status, null, 2) : formatStatus(status));
    if (!status.exists || status.walStatus === 'lost') process.exitCode = 1;
  });

program.command('teardown').description('drop the slot, and the publication if walrelay created it')
  .option(...configOption)
  .action(async (options: { config?: string }) => {
    const config = loadConfig(options.config);
    await teardownReplication(config, (line) => console.log(line));
  });

program.command('validate').description('check the configuration; when PostgreSQL answers, also its tables, patterns and column policies')
  .option(...configOption)
  .action(async (options: { config?: string }) => {
    const loaded = loadRelayOrEdgeConfig(options.config);
    if ('edge' in loaded) {
      const { edge } = loaded;
      console.log(`edge configuration is valid: ${edge.sinks.length} websocket sink(s), feed ${edge.feed.name} in ${edge.feed.redis ? 'Redis' : 'Kafka'}`);
      return;
    }
    const config: Config = loaded.relay;
    console.log(`configuration is valid: ${config.sinks.length} sink(s): ${config.sinks.map((sink) => sink.type).join(', ')}`);
    // Against the database too, when it answers: patterns and tables that match nothing.
    const source = await checkAgainstSource(config);
    if (!source.reached) console.log(`note: tables and patterns not checked against PostgreSQL (${source.reason})`);
    else {
      console.log(`checked against PostgreSQL at ${source.host}: ${source.warnings.length === 0 ? 'tables, patterns and column policies match' : `${source.warnings.length} warning(s)`}`);
      for (const warning of source.warnings) console.log(`warning: ${warning}`);
    }
  });

program.command('config-schema').description('print the JSON Schema of the configuration file (for editors: # yaml-language-server: $schema=FILE)')
  .action(() => {
    console.log(JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...configJsonSchema() }, null, 2));
  });

program.command('backfill').description('re-emit the current rows of tables as op "read" while streaming goes on (no table lock, resumable)')
  .argument('<tables...>', 'schema.table names')
  .option(...configOption)
  .option('--chunk-rows <n>', 'rows per chunk (one transaction each)', '1000')
  .option('--state <file>', 'progress file; an interrupted backfill resumes from it (default: backfill.stateFile, next to the configuration file)')
  .option('--restart', 'backfill the tables from the start, even those the progress file marks as done')
  .option('--sink <name>', 'only this sink receives the read events (a projection rebuild); the others carry on')
  .option('--stream-template <template>', 'with --sink: write the read events to this stream/topic template ({schema}, {table}) instead of the sink\'s own')
  .action(async (tables: string[], options: { config?: string; chunkRows: string; state?: string; restart?: boolean; sink?: string; streamTemplate?: string }) => {
    const chunkRows = Number(options.chunkRows);
    if (!Number.isInteger(chunkRows) || chunkRows < 1) throw configError(`--chunk-rows: expected a positive integer, got '${options.chunkRows}'`);
    const invalid = tables.filter((table) => !/^[^.\s*]+\.[^.\s*]+$/.test(table));
    if (invalid.length > 0) {
      throw new WalrelayError('USAGE', `argument TABLE ${invalid.map((table) => `'${table}'`).join(', ')}: expected schema.table, e.g. public.${invalid[0]}`, { kind: 'config', hint: 'walrelay backfill -c FILE public.orders [schema.table…]' });
    }
    const config = loadConfig(options.config);
    const configFile = options.config ?? process.env.WALRELAY_CONFIG ?? '.';
    const stateFile = options.state ?? resolve(dirname(configFile), config.backfill.stateFile);
    const target = rebuildTarget(config, options.sink, options.streamTemplate);
    await backfillTables(config, tables, { chunkRows, stateFile, restart: options.restart, target, say: (line) => console.log(line) });
  });

program.command('schema').description('print the event shapes of the published tables (JSON Schema or TypeScript) from the live catalog')
  .argument('[tables...]', 'schema.table names (default: every published table)')
  .option(...configOption)
  .option('--format <format>', 'json-schema or typescript', 'json-schema')
  .action(async (tables: string[], options: { config?: string; format: string }) => {
    const config = loadConfig(options.config);
    if (options.format !== 'json-schema' && options.format !== 'typescript') throw configError(`--format: expected json-schema or typescript, got '${options.format}'`);
    const { printEventSchema } = await import('./schema/event-schema.js');
    process.stdout.write(await printEventSchema(config, tables, options.format));
  });

program.command('demo').description('embedded PostgreSQL, a writer, and a live page at http://127.0.0.1:8080')
  .option('-p, --port <port>', 'HTTP port of the page', '8080')
  .action(async (options: { port: string }) => {
    const { runDemo } = await import('./ops/demo.js');
    const logger = createLogger(envLogLevel() ?? 'info');
    const port = Number(options.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new WalrelayError('USAGE', `-p ${options.port}: expected a TCP port number`, { kind: 'config' });
    // Handlers before anything starts: Ctrl-C during start-up also stops and cleans up.
    const controller = new AbortController();
    const interrupted = new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
    let signals = 0;
    const onSignal = () => {
      if (++signals > 1) {
        logger.warn('second signal: exiting now');
        process.exit(1); // the demo's exit hook still stops PostgreSQL and removes its folder
      }
      controller.abort(new WalrelayError('DEMO_INTERRUPTED', 'interrupted'));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let demo: Awaited<ReturnType<typeof runDemo>>;
    try {
      demo = await runDemo({ httpPort: port, logger, signal: controller.signal });
    } catch (error) {
      if (controller.signal.aborted) return; // interrupted while starting: already cleaned up
      throw error;
    }
    console.log(`walrelay demo: open ${demo.pageUrl}  (database: ${demo.databaseUrl}; Ctrl-C stops)`);
    await interrupted;
    await demo.stop();
  });

function formatStatus(status: SlotStatus): string {
  const lines = [
    `slot:                ${status.slot}${status.exists ? '' : ' (missing: run walrelay setup)'}`,
    `active:              ${status.active}${status.activePid ? ` (walsender pid ${status.activePid}, a PostgreSQL process)` : ''}`,
    `confirmed_flush_lsn: ${status.confirmedFlushLsn ?? '-'}`,
    `current wal lsn:     ${status.currentWalLsn}`,
    `lag:                 ${status.lagBytes === null ? '-' : `${status.lagBytes} bytes`}`,
    `wal_status:          ${status.walStatus ?? '-'}`,
    `publication:         ${status.publication}${status.publicationExists ? '' : ' (missing: run walrelay setup)'}`,
    `tables:              ${status.publicationTables.join(', ') || '-'}`,
    `host:                ${status.host}`,
    `failover slot:       ${status.failover}`,
    `synchronized_standby_slots: ${status.synchronizedStandbySlots ?? '-'}`,
    ...status.warnings.map((warning) => `warning: ${warning}`),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  try {
    // `npx walrelay -- --help` and `npm exec walrelay -- --help` pass the `--` on: it only kept npm off the flags.
    const args = process.argv[2] === '--' ? [...process.argv.slice(0, 2), ...process.argv.slice(3)] : process.argv;
    await program.parseAsync(args);
    // Into a pipe stdout is written asynchronously: exiting at once would cut what the reader has not taken yet.
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    process.exit(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') process.exit(0);
      process.exit(2);
    }
    process.stderr.write(`walrelay: ${describeError(error)}\n`);
    process.exit(exitCodeOf(error));
  }
}

main();
