// Runs the comparison scenario and turns Debezium-layout Redis streams into
// comparable text: only what must differ between two runs of the same DML is
// replaced (processing time of the envelope, source.version), byte for byte
// otherwise. For golden files, also the positions a new cluster gives
// differently (LSNs, transaction ids, commit times) become symbols numbered
// in order of appearance, which keeps which events share them.
import pg from 'pg';
import type { Redis } from 'ioredis';
import { SCENARIO_LAST_KEY, SCENARIO_LAST_STREAM_SUFFIX, SCENARIO_SETUP, SCENARIO_STEPS } from '../harness/debezium-scenario.js';
import { waitFor } from '../harness/wait.js';
import { readDebeziumStreams, type StreamEntry } from './capture.js';

/** The Debezium settings compared live and kept as golden files (test/golden/debezium/<name>.json). */
export const COMPARED_SETTINGS = [
  { name: 'precise', decimalHandlingMode: 'precise', timePrecisionMode: 'adaptive' },
  { name: 'string', decimalHandlingMode: 'string', timePrecisionMode: 'adaptive' },
  { name: 'double-connect', decimalHandlingMode: 'double', timePrecisionMode: 'connect' },
  { name: 'precise-adaptive_time_microseconds', decimalHandlingMode: 'precise', timePrecisionMode: 'adaptive_time_microseconds' },
] as const;

/** The database the live comparison of one setting runs in (named in the golden files' source.db). */
export function comparisonDatabase(setting: string): string {
  return `compare_${setting.replace(/-/g, '_')}`;
}

/** A URL of the same server for another database. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = '/' + database;
  return url.toString();
}

export async function createScenarioDatabase(serverUrl: string, database: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(serverUrl, database);
  await withClient(url, async (client) => {
    for (const sql of SCENARIO_SETUP) await client.query(sql);
  });
  return url;
}

export async function runScenarioSteps(url: string): Promise<void> {
  await withClient(url, async (client) => {
    for (const step of SCENARIO_STEPS) {
      await client.query('BEGIN');
      for (const sql of step) await client.query(sql);
      await client.query('COMMIT');
    }
  });
}

async function withClient(url: string, use: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await use(client);
  } finally {
    await client.end();
  }
}

/** Waits for the scenario's last event in the Debezium-layout streams under `prefix`, then reads them all. */
export async function collect(redis: Redis, prefix: string, what: string): Promise<StreamEntry[]> {
  const last = prefix + SCENARIO_LAST_STREAM_SUFFIX;
  await waitFor(async () => {
    const tail = (await redis.xrevrange(last, '+', '-', 'COUNT', 1)) as [string, string[]][];
    return tail.length === 1 && tail[0][1][0] === SCENARIO_LAST_KEY;
  }, { what: `${what}: the scenario's last event in ${last}`, timeoutMs: 120_000 });
  const streams = (await redis.keys(`${prefix}.*`)).sort();
  return readDebeziumStreams(redis, streams);
}

/** Removes what must differ between two producers of the same events: processing time and source.version. */
export function withoutProcessingTime(value: string): string {
  if (value === 'default') return value;
  return value
    .replace(/^\{"op":"m","ts_ms":\d+,/, '{"op":"m","ts_ms":"<processing>",')
    .replace(/"ts_ms":\d+,"ts_us":\d+,"ts_ns":\d+\}$/, '"ts_ms":"<processing>","ts_us":"<processing>","ts_ns":"<processing>"}')
    .replace(/"source":\{"version":"[^"]*"/, '"source":{"version":"<version>"');
}

/** Replaces positions that another cluster gives differently by symbols in order of appearance. */
export function symbolizePositions(entries: StreamEntry[]): StreamEntry[] {
  const symbols = new Map<string, string>();
  const symbol = (kind: string, value: string) => {
    const id = `${kind}:${value}`;
    if (!symbols.has(id)) symbols.set(id, `<${kind}${[...symbols.keys()].filter((key) => key.startsWith(kind + ':')).length + 1}>`);
    return symbols.get(id)!;
  };
  return entries.map((entry) => ({
    ...entry,
    value: entry.value
      .replace(/"source":\{(.*?)\},"(transaction|message)"/, (_all, source: string, next: string) => `"source":{${source
        // One commit time, three units: a symbol per µs value, the others checked against it.
        .replace(/"ts_ms":(\d+)(.*)"ts_us":(\d+),"ts_ns":(\d+)/, (_m, ms: string, between: string, us: string, ns: string) => {
          const commit = symbol('commit', us);
          const consistent = String(Math.floor(Number(us) / 1000)) === ms && ns === us + '000';
          return `"ts_ms":"${consistent ? commit : 'inconsistent ' + ms}"${between}"ts_us":"${commit}","ts_ns":"${consistent ? commit : 'inconsistent ' + ns}"`;
        })
        .replace(/"txId":(\d+)/, (_m, v) => `"txId":"${symbol('tx', v)}"`)
        .replace(/"lsn":(\d+)/, (_m, v) => `"lsn":"${symbol('lsn', v)}"`)
        .replace(/\\"(\d+)\\"/g, (_m, v) => `\\"${symbol('lsn', v)}\\"`)}},"${next}"`),
  }));
}

export function normalize(entries: StreamEntry[], prefix: string): StreamEntry[] {
  return entries.map((entry) => ({ stream: entry.stream.slice(prefix.length), key: entry.key, value: withoutProcessingTime(entry.value) }));
}

/** Field-by-field differences of two normalized entry lists, as readable lines (empty when equal). */
export function differences(expected: StreamEntry[], actual: StreamEntry[]): string[] {
  const found: string[] = [];
  const count = Math.max(expected.length, actual.length);
  for (let i = 0; i < count; i++) {
    const want = expected[i];
    const got = actual[i];
    if (!want || !got) {
      found.push(`#${i}: ${want ? 'missing in walrelay' : 'extra in walrelay'}: ${JSON.stringify(want ?? got)}`);
      continue;
    }
    if (want.stream !== got.stream) found.push(`#${i}: stream ${got.stream}, Debezium ${want.stream}`);
    if (want.key !== got.key) found.push(`#${i} ${want.stream}: key ${got.key}, Debezium ${want.key}`);
    if (want.value !== got.value) {
      let at = 0;
      while (want.value[at] === got.value[at]) at++;
      const around = (text: string) => text.slice(Math.max(0, at - 60), at + 60);
      found.push(`#${i} ${want.stream} ${want.key}: value differs at ${at}\n  walrelay …${around(got.value)}…\n  debezium …${around(want.value)}…`);
    }
  }
  return found;
}
