// A real Kafka Connect standalone worker (org.apache.kafka:connect-runtime,
// JsonConverter with schemas.enable=true for keys and values) with
// Debezium's plugins, from the jars scripts/kafka-connect.sh fetched from
// Maven Central into .cache/kafka-connect. Its REST listener is on a random
// loopback port; connectors are added through it, which is also how the
// tests see their state.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CONNECT_HOME = join(ROOT, '.cache', 'kafka-connect');
/** Connect 4.x and Debezium 3.6's connectors run on Java 17. */
const JAVA = process.env.CONNECT_JAVA_HOME ? join(process.env.CONNECT_JAVA_HOME, 'bin', 'java') : 'java';

export function connectAvailable(): boolean {
  return existsSync(join(CONNECT_HOME, 'runtime')) && existsSync(join(CONNECT_HOME, 'plugins', 'debezium-postgres')) && existsSync(join(CONNECT_HOME, 'plugins', 'debezium-jdbc'));
}

export interface RunningConnect {
  url: string;
  logs(): string;
  /** Adds a connector and waits until it and its tasks run. */
  addConnector(name: string, config: Record<string, string>): Promise<void>;
  /** Stops and removes a connector. */
  removeConnector(name: string): Promise<void>;
  /** The connector's and its tasks' states (with a failed task's trace). */
  status(name: string): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startConnect(brokers: string[]): Promise<RunningConnect> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-connect-'));
  const port = await freePort();
  const worker = {
    'bootstrap.servers': brokers.join(','),
    'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable': 'true',
    'value.converter.schemas.enable': 'true',
    'offset.storage.file.filename': join(dir, 'offsets'),
    'offset.flush.interval.ms': '1000',
    'plugin.path': join(CONNECT_HOME, 'plugins'),
    'plugin.discovery': 'only_scan',
    listeners: `http://127.0.0.1:${port}`,
  };
  writeFileSync(join(dir, 'worker.properties'), Object.entries(worker).map(([key, value]) => `${key}=${value}`).join('\n') + '\n');
  const log4j = join(dir, 'log4j2.properties');
  writeFileSync(log4j, [
    'appender.out.type=Console',
    'appender.out.name=STDOUT',
    'appender.out.layout.type=PatternLayout',
    'appender.out.layout.pattern=[%d] %p %m (%c)%n',
    'rootLogger.level=WARN',
    'rootLogger.appenderRef.out.ref=STDOUT',
    'logger.debezium.name=io.debezium',
    'logger.debezium.level=INFO',
  ].join('\n') + '\n');
  const child: ChildProcess = spawn(JAVA, [
    '-Xmx512m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', `-Dlog4j2.configurationFile=${log4j}`,
    '-cp', join(CONNECT_HOME, 'runtime', '*'), 'org.apache.kafka.connect.cli.ConnectStandalone', join(dir, 'worker.properties'),
  ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => { output = (output + chunk).slice(-400_000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const status = async (name: string) => (await fetch(`${url}/connectors/${name}/status`)).json();
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`kafka connect exited: ${output.slice(-4000)}`);
      return fetch(`${url}/connectors`).then((response) => response.ok, () => false);
    }, { what: 'Kafka Connect REST listener', timeoutMs: 180_000, intervalMs: 250 });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    logs: () => output,
    status,
    async addConnector(name, config) {
      const response = await fetch(`${url}/connectors`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, config }) });
      if (!response.ok) throw new Error(`adding connector ${name}: ${response.status} ${(await response.text()).slice(0, 2000)}\n${output.slice(-8000)}`);
      await waitFor(async () => {
        const state = await status(name) as { connector?: { state: string }; tasks?: { state: string; trace?: string }[] };
        const failed = state.tasks?.find((task) => task.state === 'FAILED');
        if (state.connector?.state === 'FAILED' || failed) throw new Error(`connector ${name} failed: ${JSON.stringify(state).slice(0, 4000)}`);
        return state.connector?.state === 'RUNNING' && (state.tasks?.length ?? 0) > 0 && state.tasks!.every((task) => task.state === 'RUNNING');
      }, { what: `connector ${name} running`, timeoutMs: 180_000, intervalMs: 250 });
    },
    async removeConnector(name) {
      const response = await fetch(`${url}/connectors/${name}`, { method: 'DELETE' });
      if (!response.ok) throw new Error(`removing connector ${name}: ${response.status} ${await response.text()}`);
    },
    stop,
  };
}

/** Debezium's PostgreSQL connector on `postgresUrl`, streaming only (snapshot.mode=no_data), every operation (truncates too). */
export function debeziumPostgresConnector(options: {
  postgresUrl: string; topicPrefix: string; slot: string; publication: string; tables: string[];
  decimalHandlingMode?: string; timePrecisionMode?: string;
}): Record<string, string> {
  const url = new URL(options.postgresUrl);
  return {
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'tasks.max': '1',
    'database.hostname': url.hostname,
    'database.port': url.port,
    'database.user': decodeURIComponent(url.username) || 'postgres',
    'database.password': decodeURIComponent(url.password) || 'unused',
    'database.dbname': url.pathname.slice(1) || 'postgres',
    'topic.prefix': options.topicPrefix,
    'plugin.name': 'pgoutput',
    'slot.name': options.slot,
    'publication.name': options.publication,
    'publication.autocreate.mode': 'filtered',
    'table.include.list': options.tables.join(','),
    'snapshot.mode': 'no_data',
    'skipped.operations': 'none',
    'decimal.handling.mode': options.decimalHandlingMode ?? 'precise',
    'time.precision.mode': options.timePrecisionMode ?? 'adaptive',
    'topic.creation.default.replication.factor': '1',
    'topic.creation.default.partitions': '1',
  };
}
