// The real Debezium Server 3.6.1 (PostgreSQL connector, pgoutput, Redis
// sink, JSON converter with schemas off) for the live comparison. Its
// distribution is cached in .cache/debezium by scripts/debezium-server.sh;
// it needs Java 21+ (Temurin 25 here, beside the default Java 17).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { waitFor } from './wait.js';

/** Repository root: dist/test/harness → ../../.. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEBEZIUM_HOME = join(ROOT, '.cache', 'debezium', 'debezium-server');
export const JAVA_HOME = process.env.DEBEZIUM_JAVA_HOME ?? '/usr/lib/jvm/temurin-25-jdk-amd64';

export function debeziumAvailable(): boolean {
  return existsSync(join(DEBEZIUM_HOME, 'debezium-server-dist-3.6.1.Final-runner.jar')) && existsSync(join(JAVA_HOME, 'bin', 'java'));
}

export interface DebeziumOptions {
  /** postgres://user@host:port/db */
  postgresUrl: string;
  redisUrl: string;
  topicPrefix: string;
  slot: string;
  publication: string;
  tables: string[];
  decimalHandlingMode?: 'precise' | 'string' | 'double';
  timePrecisionMode?: 'adaptive' | 'adaptive_time_microseconds' | 'connect';
  /** Debezium skips truncates by default (skipped.operations=t); the comparison wants them. */
  skippedOperations?: string;
  /** Extra debezium.* properties. */
  extra?: Record<string, string>;
}

export interface RunningDebezium {
  pid: number;
  logs(): string;
  /** SIGTERM, waits for the exit; kills after 30 s. */
  stop(): Promise<void>;
}

/** The application.properties Debezium Server reads from config/ under its working directory. */
export function debeziumProperties(options: DebeziumOptions, dataDir: string): Record<string, string> {
  const url = new URL(options.postgresUrl);
  const redis = new URL(options.redisUrl);
  return {
    'debezium.sink.type': 'redis',
    'debezium.sink.redis.address': `${redis.hostname}:${redis.port}`,
    'debezium.source.connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'debezium.source.offset.storage.file.filename': join(dataDir, 'offsets.dat'),
    'debezium.source.offset.flush.interval.ms': '0',
    'debezium.source.database.hostname': url.hostname,
    'debezium.source.database.port': url.port,
    'debezium.source.database.user': decodeURIComponent(url.username) || 'postgres',
    'debezium.source.database.password': decodeURIComponent(url.password) || 'unused',
    'debezium.source.database.dbname': url.pathname.slice(1) || 'postgres',
    'debezium.source.topic.prefix': options.topicPrefix,
    'debezium.source.plugin.name': 'pgoutput',
    'debezium.source.slot.name': options.slot,
    'debezium.source.publication.name': options.publication,
    'debezium.source.publication.autocreate.mode': 'filtered',
    'debezium.source.table.include.list': options.tables.join(','),
    'debezium.source.snapshot.mode': 'no_data',
    'debezium.source.skipped.operations': options.skippedOperations ?? 'none',
    'debezium.source.decimal.handling.mode': options.decimalHandlingMode ?? 'precise',
    'debezium.source.time.precision.mode': options.timePrecisionMode ?? 'adaptive',
    'debezium.format.key': 'json',
    'debezium.format.value': 'json',
    'debezium.format.key.schemas.enable': 'false',
    'debezium.format.value.schemas.enable': 'false',
    'quarkus.http.port': '0',
    'quarkus.log.level': 'INFO',
    'quarkus.log.console.json': 'false',
    ...options.extra,
  };
}

/** The JVM command line: the distribution's run.sh, without its shell and relative paths. */
export function debeziumCommand(): { java: string; args: string[] } {
  const classpath = [join(DEBEZIUM_HOME, 'debezium-server-dist-3.6.1.Final-runner.jar'), join(DEBEZIUM_HOME, 'config', 'lib'), join(DEBEZIUM_HOME, 'lib', '*')].join(':');
  return {
    java: join(JAVA_HOME, 'bin', 'java'),
    args: ['--add-opens', 'java.base/java.lang=ALL-UNNAMED', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xshare:auto', '-cp', classpath, 'io.debezium.server.Main'],
  };
}

/**
 * Starts Debezium Server and resolves once its replication slot is active
 * (it streams from then on: snapshot.mode=no_data).
 */
export async function startDebezium(options: DebeziumOptions, jvmOptions: string[] = []): Promise<RunningDebezium> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-debezium-'));
  mkdirSync(join(dir, 'config'));
  const properties = debeziumProperties(options, dir);
  writeFileSync(join(dir, 'config', 'application.properties'), Object.entries(properties).map(([key, value]) => `${key}=${value}`).join('\n') + '\n');
  const { java, args } = debeziumCommand();
  const child: ChildProcess = spawn(java, [...jvmOptions, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, JAVA_HOME } });
  let output = '';
  const keep = (chunk: Buffer) => { output = (output + chunk).slice(-200_000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const client = new pg.Client({ connectionString: options.postgresUrl });
  await client.connect();
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`debezium server exited: ${output.slice(-4000)}`);
      const rows = (await client.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [options.slot])).rows;
      return rows.length === 1 && rows[0].active === true;
    }, { what: `Debezium Server streaming from slot ${options.slot}`, timeoutMs: 240_000, intervalMs: 250 });
  } catch (error) {
    await stop();
    throw error;
  } finally {
    await client.end();
  }
  return { pid: child.pid!, logs: () => output, stop };
}
