// npm run bench [-- --quick] [--scale X] [--out DIR] [--only SCENARIO|live|realtime|fanout] [--sinks stdout,redis,kafka,webhook,webhook-batch,nats,rabbitmq,websocket] [--live-rates 10000,30000] [--cpu-prof DIR]
//
// Starts its own PostgreSQL 15, Redis, nats-server (JetStream) and (when its jars are cached) Kafka, uses the machine's RabbitMQ when it answers,
// writes each scenario's backlog once, and lets every consumer drain the same
// backlog from its own slot: walrelay to stdout, Redis, Kafka and a local
// webhook receiver (batchSize 1 and 100), each just
// after a pg_recvlogical run of its own (the ceiling it is compared with).
// Then measures commit-to-Redis latency under live loads. Writes RESULTS.md
// and ratios.svg.
import { writeFileSync, mkdirSync, existsSync, readdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres } from '../test/harness/postgres.js';
import { startRedis } from '../test/harness/redis.js';
import { startKafka, type TestKafka } from '../test/harness/kafka.js';
import { startBenchReceiver } from './webhook-receiver.js';
import { startNats, createStream, type TestNats } from '../test/harness/nats.js';
import { openRabbit, RABBITMQ_URL, type TestRabbit } from '../test/harness/rabbitmq.js';
import { scenarios } from './scenarios.js';
import { runRecvlogical, startRelayProcess, waitForConfirmed, startWalsenderMeter, cpuSecondsOf, syscallsOf } from './consumers.js';
import { debeziumAvailable, runDebeziumServer } from './debezium.js';
import { measureLatency, redisArrivals, websocketArrivals, describeStages, type LatencyResult } from './latency.js';
import { loadavg } from 'node:os';
import { realtimeArrivals } from './realtime-clients.js';
import { freePort } from '../test/harness/ports.js';
import { waitFor } from '../test/harness/wait.js';
import { connect } from 'node:net';
import { startStealMeter } from './cpu-steal.js';
import { throughputTable, ratioChart, machineDescription, type ThroughputRow } from './report.js';
import { parseLsn } from '../relay/lsn.js';
import { fanOutBenchmark, type FanOutResults } from './fanout.js';
import { fanOutReport } from './fanout-report.js';

const SOURCE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIndex = args.indexOf('--out');
const outDir = outIndex >= 0 ? args[outIndex + 1] : SOURCE_DIR;
const onlyIndex = args.indexOf('--only');
/** --only TEXT: the scenarios whose name contains TEXT (for profiling one of them). */
const only = onlyIndex >= 0 ? args[onlyIndex + 1] : null;
const sinkIndex = args.indexOf('--sinks');
/** --sinks stdout,kafka: only these walrelay consumers (pg_recvlogical always runs). */
const onlySinks = sinkIndex >= 0 ? args[sinkIndex + 1].split(',') : null;
const profileIndex = args.indexOf('--cpu-prof');
/** --cpu-prof DIR: each walrelay process writes a V8 CPU profile into DIR. */
const relayArgs = profileIndex >= 0 ? ['--cpu-prof', '--cpu-prof-dir', args[profileIndex + 1]] : [];
const scaleIndex = args.indexOf('--scale');
/** --scale X: backlog sizes as a fraction of the full run's (profiling a mid-sized drain); --quick is 0.02. */
const scale = scaleIndex >= 0 ? Number(args[scaleIndex + 1]) : quick ? 0.02 : 1;
const ratesIndex = args.indexOf('--live-rates');
/** --live-rates 10000,30000: only these rows/s in the live Redis runs (0: the writer's maximum); with --sinks not naming websocket, no fan-out runs. */
const liveRates = ratesIndex >= 0 ? args[ratesIndex + 1].split(',').map((rate) => (Number(rate) === 0 ? null : Number(rate))) : null;
const kafkaJars = join(SOURCE_DIR, '..', '.cache', 'kafka', 'libs');

/** The largest message the benchmark's Kafka broker and nats-server accept. */
const LARGE_MESSAGE_BYTES = 8 * 1024 * 1024;

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function main(): Promise<void> {
  const postgres = await startPostgres('pg15', { synchronous_commit: 'on', max_replication_slots: '20', max_wal_senders: '20', shared_buffers: '256MB', max_wal_size: '4GB', wal_sender_timeout: '120s',
    // No background vacuum or checkpoint competing with whichever consumer happens to run first after a backlog is written.
    autovacuum: 'off', checkpoint_timeout: '1h' });
  const redis = await startRedis();
  const receiver = await startBenchReceiver();
  let kafka: TestKafka | null = null;
  // Only the servers that --sinks asks for (a broker left idle still costs the shared cores); room for the TOAST
  // scenario's events (up to ~1.4 MB of JSON: a 1 MiB bytea in base64), above Kafka's and NATS's 1 MiB defaults.
  const wanted = (prefix: string) => onlySinks === null || onlySinks.some((name) => name.startsWith(prefix));
  if (wanted('kafka') && existsSync(kafkaJars) && readdirSync(kafkaJars).length > 0) kafka = await startKafka({ messageMaxBytes: LARGE_MESSAGE_BYTES });
  else if (wanted('kafka')) log('no Kafka jars in .cache/kafka/libs (bash scripts/kafka-jars.sh): skipping the Kafka sink');
  const natsConfig = join(mkdtempSync(join(tmpdir(), 'walrelay-bench-nats-')), 'nats.conf');
  writeFileSync(natsConfig, `max_payload: ${LARGE_MESSAGE_BYTES}\n`);
  const nats: TestNats | null = !wanted('nats') ? null : await startNats(['-c', natsConfig]).catch((error: Error) => { log(`no nats-server (${error.message}): skipping the NATS sink`); return null; });
  if (nats) {
    const admin = await nats.client();
    await createStream(admin, 'BENCH', ['bench.>']);
    await admin.close();
  }
  const rabbit: TestRabbit | null = !wanted('rabbitmq') ? null : await openRabbit().catch((error: Error) => { log(`no RabbitMQ at ${RABBITMQ_URL} (${error.message}): skipping the RabbitMQ sink`); return null; });
  const rabbitExchange = rabbit?.unique('bench') ?? 'walrelay';
  const pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  // An idle client's connection ended by the server (PostgreSQL stopping at the end while a client is still open)
  // is reported on the pool: without a listener that event would end the benchmark with a stack trace.
  pool.on('error', (error) => log(`idle PostgreSQL connection: ${error.message}`));
  const rows: ThroughputRow[] = [];
  let live: LiveResults = { redis: [], websocket: [], realtime: [] };
  try {
    const version = (await pool.query('SHOW server_version')).rows[0].server_version as string;
    for (const [index, scenario] of scenarios(scale).entries()) {
      if (only !== null && !scenario.name.includes(only)) continue;
      const publication = `bench_${index}`;
      await pool.query(scenario.create);
      await pool.query(`CREATE PUBLICATION ${publication} FOR TABLE ${scenario.table}`);
      // The exactly-once modes and the @platformatic/kafka producer run in full benchmarks, or with --quick when --sinks names them.
      const exactlyOnce = ['redis-exactly-once', ...(kafka ? ['kafka-exactly-once', 'kafka-platformatic'] : [])].filter((name) => !quick || onlySinks?.includes(name));
      const sinkNames = ['stdout', 'redis', ...(kafka ? ['kafka'] : []), 'webhook', 'webhook-batch', ...(nats ? ['nats'] : []), ...(rabbit ? ['rabbitmq'] : []), ...exactlyOnce].filter((name) => onlySinks === null || onlySinks.includes(name));
      // Each walrelay run is paired with a pg_recvlogical run just before it, on a slot of its own: the
      // host's speed drifts over minutes, and a ratio between neighbouring runs is what that drift spoils least.
      const slots = sinkNames.flatMap((name) => [`recv_${slotPart(name)}_${index}`, `${slotPart(name)}_${index}`]);
      // Debezium Server as a peer (not in --quick: its JVM start alone takes longer than a quick run).
      const withDebezium = !quick && debeziumAvailable() && (onlySinks === null || onlySinks.includes('debezium'));
      if (withDebezium) slots.push(`debezium_${index}`);
      for (const slot of slots) await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
      const start = (await pool.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn as string;
      log(`${scenario.name}: writing ${scenario.description}`);
      const writer = new pg.Client({ connectionString: postgres.url });
      await writer.connect();
      const events = await scenario.write(writer);
      await writer.end();
      const end = (await pool.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn as string;
      await pool.query('CHECKPOINT'); // flush the backlog's dirty pages now, not while a consumer is measured
      const walMb = Number(parseLsn(end) - parseLsn(start)) / 1e6;

      const recvRuns: { seconds: number; steal: number; walsenderCpu: number | null }[] = [];
      const relayRows: ThroughputRow[] = [];
      const sinks: Record<string, unknown> = {
        stdout: { type: 'stdout' },
        redis: { type: 'redis', url: redis.url, stream: `bench:${index}` },
        kafka: kafka && { type: 'kafka', brokers: kafka.brokers, topic: `bench.${index}`, createTopics: { partitions: 3, replicationFactor: 1 } },
        'kafka-platformatic': kafka && { type: 'kafka', brokers: kafka.brokers, topic: `bench-pl.${index}`, createTopics: { partitions: 3, replicationFactor: 1 }, producer: 'platformatic' },
        webhook: { type: 'webhook', url: receiver.url },
        'webhook-batch': { type: 'webhook', url: receiver.url, batchSize: 100 },
        nats: nats && { type: 'nats', servers: [nats.url], subject: `bench.${index}`, messageSubject: 'bench.messages' },
        // A durable queue bound to the exchange: publishes are mandatory, and a confirm then means written to disk.
        rabbitmq: rabbit && { type: 'rabbitmq', url: RABBITMQ_URL, exchange: rabbitExchange, routingKey: `bench.${index}` },
        'redis-exactly-once': { type: 'redis', url: redis.url, stream: `bench-eo:${index}`, exactlyOnce: true, checkpointKey: `bench-eo-checkpoint:${index}` },
        'kafka-exactly-once': kafka && { type: 'kafka', brokers: kafka.brokers, topic: `bench-eo.${index}`, createTopics: { partitions: 3, replicationFactor: 1 }, exactlyOnce: true, transactionalId: `bench-${index}` },
      };
      for (const consumer of sinkNames) {
        const recvSteal = startStealMeter();
        const recvWalsender = startWalsenderMeter(pool, `recv_${slotPart(consumer)}_${index}`);
        const ceiling = await runRecvlogical(postgres.url, `recv_${slotPart(consumer)}_${index}`, publication, end);
        recvRuns.push({ seconds: ceiling.seconds, steal: recvSteal(), walsenderCpu: recvWalsender.finish() });
        log(`${scenario.name}: pg_recvlogical ${ceiling.seconds.toFixed(2)} s`);
        const slot = `${slotPart(consumer)}_${index}`;
        const started = performance.now();
        const steal = startStealMeter();
        let rabbitQueue: string | null = null;
        if (consumer === 'rabbitmq') {
          // Declared as the sink declares it, so that the queue can be bound before the sink starts.
          await rabbit!.channel.assertExchange(rabbitExchange, 'topic', { durable: true });
          rabbitQueue = (await rabbit!.bindQueue(rabbitExchange, `bench.${index}`, { durable: true, consume: false })).queue;
        }
        const relay = startRelayProcess({ source: { url: postgres.url, slot, publication }, sinks: [sinks[consumer]] }, relayArgs);
        // walrelay's CPU when it starts streaming: the ratio to the walsender leaves out Node's and the relay's start-up.
        let relayCpuAtStream: number | null = null;
        const walsender = startWalsenderMeter(pool, slot, () => { relayCpuAtStream = cpuSecondsOf(relay.child.pid!); });
        await waitForConfirmed(pool, slot, end);
        const seconds = (performance.now() - started) / 1000;
        const figures = relay.figures();
        const walsenderCpu = walsender.finish();
        await relay.stop();
        relayRows.push({ scenario: scenario.name, consumer: `walrelay → ${consumer}`, events, walMb, seconds, ratio: ceiling.seconds / seconds, peakRssMb: figures.peakRssMb, cpuSecondsPerMillion: (figures.cpuSeconds / events) * 1e6, stealPercent: steal(), ...walsenderColumns(walsenderCpu, figures.cpuSeconds - (relayCpuAtStream ?? 0), events, seconds) });
        log(`${scenario.name}: walrelay → ${consumer} ${seconds.toFixed(2)} s (${(ceiling.seconds / seconds).toFixed(2)}×, peak RSS ${figures.peakRssMb.toFixed(0)} MB, CPU ${figures.cpuSeconds.toFixed(2)} s, walsender CPU ${walsenderCpu?.toFixed(2) ?? '?'} s)`);
        if (rabbitQueue !== null) await rabbit!.channel.deleteQueue(rabbitQueue);
        if (consumer.startsWith('redis')) {
          const cleaner = redis.client();
          await cleaner.del(`bench:${index}`, `bench-eo:${index}`);
          cleaner.disconnect();
        }
      }
      if (withDebezium) {
        const steal = startStealMeter();
        const cleaner = redis.client();
        try {
          const peer = await runDebeziumServer({ postgresUrl: postgres.url, redisUrl: redis.url, redis: cleaner, slot: `debezium_${index}`, publication, table: `public.${scenario.table}`, events });
          const recvMedian = [...recvRuns.map((run) => run.seconds)].sort((a, b) => a - b)[Math.floor((recvRuns.length - 1) / 2)];
          relayRows.push({ scenario: scenario.name, consumer: 'Debezium Server 3.6.1 → redis (JVM start included)', events, walMb, seconds: peer.seconds, ratio: recvMedian === undefined ? null : recvMedian / peer.seconds, peakRssMb: peer.peakRssMb, cpuSecondsPerMillion: (peer.cpuSeconds / events) * 1e6, stealPercent: steal(), ...walsenderColumns(null, null, events, peer.seconds) });
          log(`${scenario.name}: Debezium Server → redis ${peer.seconds.toFixed(2)} s (peak RSS ${peer.peakRssMb.toFixed(0)} MB, ${peer.cpuSeconds.toFixed(1)} CPU s)`);
        } catch (error) {
          log(`${scenario.name}: Debezium Server failed: ${(error as Error).message}`);
        } finally {
          cleaner.disconnect();
        }
      }
      // The pg_recvlogical row: the median of its paired runs (each walrelay row's ratio is to its own pair).
      const recvSeconds = recvRuns.map((run) => run.seconds).sort((a, b) => a - b);
      const median = recvSeconds[Math.floor((recvSeconds.length - 1) / 2)];
      const recvStealPercent = recvRuns.length === 0 ? 0 : recvRuns.reduce((sum, run) => sum + run.steal, 0) / recvRuns.length;
      const medianRun = recvRuns.find((run) => run.seconds === median);
      rows.push({ scenario: scenario.name, consumer: 'pg_recvlogical', events, walMb, seconds: median, ratio: null, peakRssMb: null, cpuSecondsPerMillion: null, stealPercent: recvStealPercent, ...walsenderColumns(medianRun?.walsenderCpu ?? null, null, events, median) }, ...relayRows);
      for (const slot of slots) await pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
      await pool.query(`DROP TABLE ${scenario.table}`);
    }

    if (only === null || 'live'.includes(only) || only === 'realtime') live = await liveLatency(postgres.url, redis.url, pool);
    // Fan-out with the clients in a process of their own, and 1 relay vs 1 relay + 2 edges (bench/fanout.ts; npm run bench:fanout alone).
    const fanOut: FanOutResults | null = only === null || only === 'fanout' ? await fanOutBenchmark(postgres.url, redis.url, { quick, log }) : null;
    const report = [
      '# walrelay benchmarks',
      '',
      `Produced by \`npm run bench${quick ? ' -- --quick' : ''}\` on:`,
      '',
      machineDescription(version),
      '',
      '## Draining a backlog (same backlog, one slot per consumer, in one run)',
      '',
      'Time runs from starting the consumer until it has every change of the backlog: pg_recvlogical until it reaches the end LSN,',
      'walrelay until the slot\'s confirmed LSN (which moves only after the sink acknowledged) reaches it. Startup is included.',
      'Each walrelay run follows a pg_recvlogical run of its own on the same backlog, and its ratio is to that neighbour; the',
      'pg_recvlogical row shows the median of those runs.',
      'WAL MB/s counts the WAL bytes the backlog occupies. CPU and RSS are walrelay\'s own process. Walsender CPU is the CPU time',
      '(utime + stime from /proc, 10 ms ticks) of the PostgreSQL walsender serving that consumer\'s slot (its PID from',
      'pg_replication_slots.active_pid); relay ÷ walsender divides walrelay\'s CPU from the moment it started streaming (its start-up',
      'left out) by it (both from the same run, so the host\'s speed cancels out); walsender busy % is its CPU time over the drain\'s wall time (100% = the walsender, not the consumer, was the limit). CPU steal is the share of the',
      'machine\'s CPU time the hypervisor gave to other guests during that run: where it is high, that run (and its ratio) was slowed by the host.',
      '',
      throughputTable(rows),
      '',
      '![ratios](ratios.svg)',
      '',
      'What was optimised to get here, and what each step gained: [OPTIMISATIONS.md](OPTIMISATIONS.md).',
      '',
      '## Commit-to-Redis latency under live load (10-row transactions)',
      '',
      'walrelay CPU counts the relay process\'s CPU time over the run (from /proc), per million events delivered.',
      '',
      '| target rows/s | achieved rows/s | events | p50 ms | p99 ms | max ms | walrelay CPU s / M events |',
      '|---:|---:|---:|---:|---:|---:|---:|',
      ...live.redis.map((l) => `| ${l.targetRowsPerSecond === null ? 'writer max' : l.targetRowsPerSecond.toLocaleString('en')} | ${Math.round(l.achievedRowsPerSecond).toLocaleString('en')} | ${l.events.toLocaleString('en')} | ${l.p50} | ${l.p99} | ${l.max} | ${l.relayCpuPerMillion == null ? '–' : l.relayCpuPerMillion.toFixed(1)} |`),
      '',
      `## Commit-to-browser latency: the same load fanned out to ${WEBSOCKET_CLIENTS} websocket clients`,
      '',
      'Every client subscribes to the table and receives every change (frames = rows × clients); the clients run in the benchmark\'s own process.',
      '',
      '| rows/s | frames/s | frames received | p50 ms | p99 ms | max ms | clients disconnected |',
      '|---:|---:|---:|---:|---:|---:|---:|',
      ...live.websocket.map((l) => `| ${Math.round(l.achievedRowsPerSecond).toLocaleString('en')} | ${Math.round(l.achievedRowsPerSecond * WEBSOCKET_CLIENTS).toLocaleString('en')} | ${l.events.toLocaleString('en')} | ${l.p50} | ${l.p99} | ${l.max} | ${l.disconnected} |`),
      '',
      `## Supabase Realtime protocol: ${REALTIME_CLIENTS.toLocaleString('en')} clients on one table`,
      '',
      'Raw vsn 2.0.0 clients (as realtime-js 2.x speaks it) in the benchmark\'s process, each joined to a channel with one',
      'postgres_changes INSERT binding on the table, against the relay process with `supabase: true`; latency from',
      'commit_timestamp (milliseconds) to arrival. Published for Supabase Realtime: 500 clients at 64 changes/s, p95 ≈ 200 ms.',
      '',
      '| clients | rows/s | frames/s | frames received | p50 ms | p99 ms | max ms | clients disconnected |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...live.realtime.map((l) => `| ${REALTIME_CLIENTS.toLocaleString('en')} | ${Math.round(l.achievedRowsPerSecond).toLocaleString('en')} | ${Math.round(l.achievedRowsPerSecond * REALTIME_CLIENTS).toLocaleString('en')} | ${l.events.toLocaleString('en')} | ${l.p50} | ${l.p99} | ${l.max} | ${l.disconnected} |`),
      '',
      ...(fanOut ? [fanOutReport(fanOut)] : []),
    ].join('\n');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'RESULTS.md'), report);
    writeFileSync(join(outDir, 'ratios.svg'), ratioChart(rows));
    process.stdout.write(report);
  } finally {
    await pool.end();
    await rabbit?.cleanUp([rabbitExchange]);
    await Promise.all([postgres.stop(), redis.stop(), kafka?.stop(), nats?.stop(), receiver.close()]);
  }
}

interface LiveResults {
  redis: LatencyResult[];
  websocket: LatencyResult[];
  realtime: LatencyResult[];
}

const WEBSOCKET_CLIENTS = 100;
/** Supabase Realtime protocol clients (published for Supabase Realtime: 500 clients at 64 changes/s, p95 ≈ 200 ms). */
const REALTIME_CLIENTS = quick ? 50 : 1000;

async function liveLatency(url: string, redisUrl: string, pool: pg.Pool): Promise<LiveResults> {
  await pool.query('CREATE TABLE bench_live (id bigint PRIMARY KEY, account int, note text, amount numeric, at timestamptz)');
  await pool.query('CREATE PUBLICATION bench_live FOR TABLE bench_live');
  const results: LiveResults = { redis: [], websocket: [], realtime: [] };
  if (only !== 'realtime') await redisAndFanOut(url, redisUrl, pool, results);
  if (onlySinks === null || onlySinks.includes('websocket')) results.realtime.push(await realtimeLatency(url, pool));
  return results;
}

async function redisAndFanOut(url: string, redisUrl: string, pool: pg.Pool, results: LiveResults): Promise<void> {

  await pool.query(`SELECT pg_create_logical_replication_slot('live', 'pgoutput')`);
  const relay = startRelayProcess({ source: { url, slot: 'live', publication: 'bench_live' }, sinks: [{ type: 'redis', url: redisUrl, stream: 'bench:live' }] }, relayArgs);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  try {
    for (const rate of liveRates ?? (quick ? [5000] : [5000, 10000, 15000, 30000, null])) {
      const arrivals = await redisArrivals(redisUrl, 'bench:live');
      // walrelay's CPU over the run: per-transaction and per-batch costs dominate a live feed (issue 22).
      const cpuBefore = cpuSecondsOf(relay.child.pid!);
      const callsBefore = syscallsOf(relay.child.pid!);
      const result = await measureLatency(url, 'bench_live', rate, quick ? 3 : 20, arrivals);
      const cpuAfter = cpuSecondsOf(relay.child.pid!);
      const callsAfter = syscallsOf(relay.child.pid!);
      result.relayCpuPerMillion = cpuBefore === null || cpuAfter === null || result.events === 0 ? null : (cpuAfter - cpuBefore) / result.events * 1e6;
      // Socket reads and writes per 10-row transaction: what a live feed's wake-ups come down to, and far less noisy than CPU on a shared host.
      const perTransaction = callsBefore && callsAfter && result.events > 0 ? `, syscalls per transaction: ${((callsAfter.reads - callsBefore.reads) / (result.events / 10)).toFixed(2)} reads, ${((callsAfter.writes - callsBefore.writes) / (result.events / 10)).toFixed(2)} writes, ${((callsAfter.wakeUps - callsBefore.wakeUps) / (result.events / 10)).toFixed(2)} wake-ups` : '';
      log(`live → redis ${rate ?? 'max'} rows/s: achieved ${Math.round(result.achievedRowsPerSecond)}, p50 ${result.p50} ms, p99 ${result.p99} ms, walrelay CPU ${result.relayCpuPerMillion?.toFixed(1) ?? '?'} s / M events${perTransaction}; p50/p99 ms: ${describeStages(result)}; load ${loadavg()[0].toFixed(1)}`);
      results.redis.push(result);
    }
  } finally {
    await relay.stop();
    await pool.query(`SELECT pg_drop_replication_slot('live')`);
  }

  if (onlySinks !== null && !onlySinks.includes('websocket')) return;
  // Fan-out: the same load to 100 websocket clients subscribed to the table.
  await pool.query(`SELECT pg_create_logical_replication_slot('live_ws', 'pgoutput')`);
  const port = await freePort();
  const fanOut = startRelayProcess({ source: { url, slot: 'live_ws', publication: 'bench_live' }, sinks: [{ type: 'websocket', port, auth: 'none' }] });
  try {
    await waitFor(() => new Promise<boolean>((resolve) => {
      const probe = connect(port, '127.0.0.1', () => { probe.destroy(); resolve(true); });
      probe.once('error', () => resolve(false));
    }), { what: 'the websocket sink to listen', timeoutMs: 30_000, intervalMs: 100 });
    for (const rate of quick ? [500] : [1000, 2500]) {
      const arrivals = await websocketArrivals(`ws://127.0.0.1:${port}/`, 'public.bench_live', WEBSOCKET_CLIENTS);
      const result = await measureLatency(url, 'bench_live', rate, quick ? 3 : 10, arrivals);
      log(`live → ${WEBSOCKET_CLIENTS} websocket clients ${rate} rows/s: p50 ${result.p50} ms, p99 ${result.p99} ms, ${result.disconnected} disconnected`);
      results.websocket.push(result);
    }
  } finally {
    await fanOut.stop();
    await pool.query(`SELECT pg_drop_replication_slot('live_ws')`);
  }

}

/** Supabase Realtime protocol clients, one table at 100 rows/s, on a relay of its own (no backlog left by the runs before it). */
async function realtimeLatency(url: string, pool: pg.Pool): Promise<LatencyResult> {
  await pool.query(`SELECT pg_create_logical_replication_slot('live_rt', 'pgoutput')`);
  const realtimePort = await freePort();
  const realtimeRelay = startRelayProcess({ source: { url, slot: 'live_rt', publication: 'bench_live' }, sinks: [{ type: 'websocket', port: realtimePort, auth: 'none', supabase: true, maxConnectionsPerIp: 5000 }] });
  try {
    await listening(realtimePort);
    const realtime = await realtimeArrivals(`ws://127.0.0.1:${realtimePort}/realtime/v1`, 'public', 'bench_live', REALTIME_CLIENTS);
    const result = await measureLatency(url, 'bench_live', 100, quick ? 3 : 20, realtime);
    log(`live → ${REALTIME_CLIENTS} Realtime clients 100 rows/s: p50 ${result.p50} ms, p99 ${result.p99} ms, ${result.disconnected} disconnected`);
    return result;
  } finally {
    await realtimeRelay.stop();
    await pool.query(`SELECT pg_drop_replication_slot('live_rt')`);
  }
}

function listening(port: number): Promise<void> {
  return waitFor(() => new Promise<boolean>((resolve) => {
    const probe = connect(port, '127.0.0.1', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  }), { what: 'the websocket sink to listen', timeoutMs: 30_000, intervalMs: 100 });
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});

/** The walsender's figures for one drain: its CPU per million events, the consumer's CPU over it, and its busy share of the drain's wall time. */
function walsenderColumns(walsenderCpu: number | null, consumerCpu: number | null, events: number, seconds: number): Pick<ThroughputRow, 'walsenderCpuSecondsPerMillion' | 'cpuOverWalsender' | 'walsenderBusyPercent'> {
  if (walsenderCpu === null || walsenderCpu <= 0) return { walsenderCpuSecondsPerMillion: null, cpuOverWalsender: null, walsenderBusyPercent: null };
  return {
    walsenderCpuSecondsPerMillion: (walsenderCpu / events) * 1e6,
    cpuOverWalsender: consumerCpu === null ? null : consumerCpu / walsenderCpu,
    walsenderBusyPercent: (walsenderCpu / seconds) * 100,
  };
}

/** Slot names allow lower-case letters, digits and underscores only. */
function slotPart(consumer: string): string {
  return consumer.replace(/-/g, '_');
}
