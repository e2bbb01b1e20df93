// npm run bench:rls [-- --subscribers 1000 --users 100 --rate 100 --seconds 20]
//
// Row-level security at scale: Realtime subscribers (light raw ws clients
// speaking vsn 2.0.0 as realtime-js does), each with a token of one of
// `users` users, on a table whose policy is owner = auth.uid(); rows are
// inserted at `rate` per second, each owned by a random user. Runs the same
// load with authorization: rls and with claims (a rowFilter claim owner=eq.<sub> giving the same rows), each against its own relay process, and prints p50/p99
// commit→client, deliveries, and the CPU seconds PostgreSQL and the relay
// used during the load. Every subscriber checks that it got exactly its
// user's rows (foreignRows, subscribersWithWrongCount: both 0 when right).
// The clients run in this process, walrelay in its own: the CPU measured is
// walrelay's alone. --profile DIR writes walrelay's V8 CPU profile there.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { WebSocket } from 'ws';
import pg from 'pg';
import { startPostgres, type TestPostgres } from '../test/harness/postgres.js';
import { writeConfig, spawnRelay, runCli } from '../test/harness/relay.js';
import { freePort } from '../test/harness/ports.js';
import { mintKey, SECRET } from '../test/harness/realtime.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const SUBSCRIBERS = option('subscribers', 1000);
const USERS = option('users', 100);
const RATE = option('rate', 100);
const SECONDS = option('seconds', 20);

const uuid = (user: number) => `00000000-0000-4000-8000-${String(user).padStart(12, '0')}`;

/** CPU seconds (user + system) of a process and its children (clock ticks of 1/100 s). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch { /* exited */ }
  }
  return ticks / 100;
}

/**
 * CPU seconds PostgreSQL's processes use from now on, sampled every 250 ms: a backend that starts during the
 * load counts from zero, one that exits loses at most its last 250 ms.
 */
function postgresCpu(server: TestPostgres): { stop(): number } {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let started = false;
  const sample = () => {
    for (const pid of postgresPids(server)) {
      const seconds = cpuSeconds([pid]);
      if (!first.has(pid)) first.set(pid, started ? 0 : seconds);
      last.set(pid, Math.max(seconds, last.get(pid) ?? 0));
    }
    started = true;
  };
  sample();
  const timer = setInterval(sample, 250);
  return {
    stop() {
      clearInterval(timer);
      sample();
      let total = 0;
      for (const [pid, seconds] of last) total += seconds - first.get(pid)!;
      return total;
    },
  };
}

/** The postmaster and every backend it started. */
function postgresPids(server: TestPostgres): number[] {
  const postmaster = Number(readFileSync(join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [postmaster];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(fields[1]) === postmaster) pids.push(Number(entry));
    } catch { /* exited */ }
  }
  return pids;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function run(server: TestPostgres, url: string, mode: 'rls' | 'claims') {
  const port = await freePort();
  const slot = `bench_${mode}`;
  const configFile = writeConfig({
    source: { url, slot, publication: 'bench' },
    sinks: [{ type: 'websocket', port, auth: { jwtSecret: SECRET }, supabase: true, maxConnectionsPerIp: 100_000, ...(mode === 'rls' ? { authorization: 'rls' } : {}) }],
    log: { level: 'warn' },
  });
  const setup = await runCli(['setup', '-c', configFile]);
  if (setup.code !== 0) throw new Error(setup.stderr);
  // --profile DIR: the relay writes a V8 CPU profile there when it exits (node --cpu-prof).
  const profile = args.indexOf('--profile');
  const relay = spawnRelay(configFile, { WALRELAY_LOG_LEVEL: 'info' }, profile >= 0 ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${args[profile + 1]}`] } : {});
  try {
    return await measure(server, relay, port, mode);
  } finally {
    relay.signal('SIGTERM');
    await relay.exited;
  }
}

async function measure(server: TestPostgres, relay: ReturnType<typeof spawnRelay>, port: number, mode: 'rls' | 'claims') {
  await relay.waitForLog(/"msg":"streaming"/);
  // claims mode gets the same rows through a rowFilter claim (owner=eq.<sub>): the same deliveries, decided in the relay.
  const tokens = await Promise.all(Array.from({ length: USERS }, (_, user) => mintKey({ sub: uuid(user), role: 'authenticated', tables: ['public.*'],
    ...(mode === 'claims' ? { rowFilter: { 'public.notes': `owner=eq.${uuid(user)}` } } : {}) })));
  const latencies: number[] = [];
  // Exactly its owner's rows: every subscriber counts what it got and what was not its user's.
  const received = new Array<number>(SUBSCRIBERS).fill(0);
  let foreign = 0;
  let disconnected = 0;
  let stopping = false;
  const join = JSON.stringify(['1', '1', 'realtime:bench', 'phx_join', { config: { postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'notes' }] } }]);
  const sockets: WebSocket[] = [];
  for (let start = 0; start < SUBSCRIBERS; start += 100) {
    sockets.push(...await Promise.all(Array.from({ length: Math.min(100, SUBSCRIBERS - start) }, (_, offset) => new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/realtime/v1/websocket?apikey=${tokens[(start + offset) % USERS]}&vsn=2.0.0`);
      socket.on('error', reject); // later errors (after the join) end in close, counted as disconnects
      socket.once('open', () => socket.send(join));
      socket.on('message', (data) => {
        const text = data.toString();
        if (text.startsWith('["1","1","realtime:bench","phx_reply"')) {
          if (text.includes('"status":"ok"')) resolve(socket);
          else reject(new Error(text));
        } else if (text.includes(',"postgres_changes",{"ids":')) {
          received[start + offset]!++;
          if (!text.includes(`"owner":"${uuid((start + offset) % USERS)}"`)) foreign++;
          const at = text.indexOf('"commit_timestamp":"') + 20;
          latencies.push(Date.now() - Date.parse(text.slice(at, text.indexOf('"', at))));
        }
      });
      socket.once('close', () => { if (!stopping) disconnected++; });
    }))));
  }
  const writer = new pg.Client({ connectionString: server.url });
  await writer.connect();
  const pgCpu = postgresCpu(server);
  const before = { relay: cpuSeconds([relay.child.pid!]) };
  const total = RATE * SECONDS;
  const started = Date.now();
  for (let sent = 0; sent < total; sent++) {
    const due = started + (sent * 1000) / RATE;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    await writer.query('INSERT INTO notes (owner, body) VALUES ($1, $2)', [uuid(sent % USERS), `note ${sent}`]);
  }
  const expected = total * (SUBSCRIBERS / USERS);
  const deadline = Date.now() + 30_000;
  while (latencies.length < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  const after = { pg: pgCpu.stop(), relay: cpuSeconds([relay.child.pid!]) };
  const elapsed = (Date.now() - started) / 1000;
  stopping = true;
  for (const socket of sockets) socket.terminate();
  await writer.end();
  // What went wrong when not everything arrived: the relay's warnings.
  if (latencies.length < expected) console.error(relay.logs().split('\n').filter((line) => line.includes('"level":40') || line.includes('"level":50')).slice(0, 10).join('\n'));
  const sorted = [...latencies].sort((a, b) => a - b);
  // Row i is owned by user i % USERS: a subscriber of user u gets the rows u, u + USERS, …
  const wrongCount = received.filter((count, index) => count !== Math.floor((total - 1 - (index % USERS)) / USERS) + 1).length;
  return {
    mode, changes: total, deliveries: latencies.length, expected, disconnected, foreignRows: foreign, subscribersWithWrongCount: wrongCount,
    p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted.at(-1),
    postgresCpuSeconds: +after.pg.toFixed(2), relayCpuSeconds: +(after.relay - before.relay).toFixed(2), seconds: +elapsed.toFixed(1),
    loadAverage: loadavg().map((value) => +value.toFixed(1)),
  };
}

const server = await startPostgres('pg15');
try {
  await server.query(`
    CREATE ROLE anon NOLOGIN; CREATE ROLE authenticated NOLOGIN;
    CREATE ROLE walrelay LOGIN REPLICATION; GRANT anon, authenticated TO walrelay; GRANT CREATE ON DATABASE postgres TO walrelay;
    CREATE SCHEMA auth; GRANT USAGE ON SCHEMA auth TO anon, authenticated;
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('request.jwt.claims', true)::json->>'sub', '')::uuid $$;
    CREATE TABLE notes (id bigserial PRIMARY KEY, owner uuid NOT NULL, body text);
    CREATE INDEX ON notes (owner);
    ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own ON notes FOR SELECT TO authenticated USING (owner = auth.uid());
    GRANT SELECT ON notes TO authenticated;
    CREATE PUBLICATION bench FOR TABLE notes;
  `);
  const url = server.url.replace('postgres://postgres@', 'postgres://walrelay@');
  console.log(`${SUBSCRIBERS} subscribers, ${USERS} users, ${RATE} inserts/s for ${SECONDS} s, PostgreSQL 15`);
  const modes = args.includes('--only-rls') ? ['rls'] as const : ['rls', 'claims'] as const;
  for (const mode of modes) console.log(JSON.stringify(await run(server, url, mode)));
} finally {
  await server.stop();
}
