// The differential test: PostgreSQL's own decoder, test_decoding, is the
// oracle. A logical slot with plugin test_decoding is copied from walrelay's
// slot (same position), a broad corpus of types and DDL is written, and the
// real relay process streams it to the stdout sink twice: live (started
// before the corpus, from a second copy of the slot) and lagging (started
// after it, so every Relation message is handled after all the DDL). Every
// event is compared, field by field, with what test_decoding decoded from the
// same WAL after the README's value mapping is applied to its text values
// (test/harness/documented-mapping.ts, expected-events.ts). Zero mismatches.
// Commit LSNs, which test_decoding does not print, come from pg_walinspect.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { startPostgres, PG_FLAVORS, type TestPostgres } from './harness/postgres.js';
import { runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';
import { parseTestDecoding, type PeekRow } from './harness/test-decoding.js';
import { expectedEvents, lsnHex, type ExpectedEvent } from './harness/expected-events.js';
import { JsonNumber, parseLossless } from './harness/lossless-json.js';
import { minimalJson } from './harness/documented-mapping.js';
import { BULK_ROWS, CORPUS, SCHEMA, TABLES, USER_TYPES } from './harness/differential-corpus.js';

/** The value-formatting settings walrelay's replication session uses (relay/source/replication-stream.ts). */
const SESSION_OPTIONS = '-c datestyle=ISO,YMD -c timezone=UTC -c extra_float_digits=3 -c intervalstyle=iso_8601 -c bytea_output=hex';
const END_PREFIX = 'differential.end';

async function readOracle(url: string): Promise<PeekRow[]> {
  const client = new pg.Client({ connectionString: url, options: SESSION_OPTIONS });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_binary_changes('oracle', NULL, NULL, 'include-xids', '1', 'include-timestamp', '1')`);
    return rows;
  } finally {
    await client.end();
  }
}

/** xid → the LSN where its commit record starts (Begin's final LSN, walrelay's commitLsn). */
async function commitRecords(server: TestPostgres, from: string): Promise<Map<number, string>> {
  const rows = await server.query(`SELECT xid::text AS xid, start_lsn::text AS lsn FROM pg_get_wal_records_info($1, pg_current_wal_flush_lsn())
    WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%'`, [from]);
  return new Map(rows.map((row) => [Number(row.xid), row.lsn]));
}

function show(value: unknown): string {
  const text = JSON.stringify(value, (_key, item) => (item instanceof JsonNumber ? `#${item.text}` : item === undefined ? '(absent)' : item)) ?? '(absent)';
  return text.length > 300 ? text.slice(0, 300) + '…' : text;
}

/** Every difference between one delivered event and its expectation, field by field. */
function compareEvent(index: number, actual: Record<string, unknown>, expected: ExpectedEvent): string[] {
  const where = `event ${index} (${String(expected.op)} ${expected.table !== undefined ? `${String(expected.schema)}.${String(expected.table)}` : String(expected.prefix)} at ${String(expected.lsn)})`;
  const problems: string[] = [];
  if (!isDeepStrictEqual(Object.keys(actual), Object.keys(expected))) problems.push(`${where}: fields ${show(Object.keys(actual))}, expected ${show(Object.keys(expected))}`);
  for (const field of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
    const [got, want] = [actual[field], expected[field]];
    if (!isDeepStrictEqual(got, want)) {
      problems.push(`${where} ${field}: ${show(got)}, expected ${show(want)}`);
    } else if (want && typeof want === 'object' && !Array.isArray(want) && !(want instanceof JsonNumber) && !isDeepStrictEqual(Object.keys(got as object), Object.keys(want))) {
      problems.push(`${where} ${field}: columns in order ${show(Object.keys(got as object))}, expected ${show(Object.keys(want))}`);
    }
  }
  return problems;
}

/** Waits for the end marker on the relay's stdout, stops it with SIGTERM and returns its event lines. */
async function eventLines(relay: RelayProcess): Promise<string[]> {
  try {
    await waitFor(() => relay.stdout().slice(-400).includes(`"prefix":"${END_PREFIX}"`), { what: 'the relay to print the end marker', timeoutMs: 90_000, intervalMs: 200 });
  } finally {
    relay.signal('SIGTERM');
  }
  assert.equal(await relay.exited, 0, relay.logs().slice(-2000));
  const lines = relay.stdout().split('\n');
  assert.equal(lines.pop(), '', 'stdout ends with a newline');
  return lines;
}

/** Every way the delivered lines differ from the expected events; empty when they match. */
function differences(lines: string[], expected: ExpectedEvent[]): string[] {
  const problems: string[] = [];
  const actual = lines.map((line, index) => {
    try {
      const event = parseLossless(line) as Record<string, unknown>;
      if (minimalJson(line) !== line) problems.push(`event ${index} is not minimal JSON: ${line.slice(0, 200)}`);
      return event;
    } catch (error) {
      problems.push(`line ${index} of stdout is not one JSON event (${(error as Error).message})`);
      return {};
    }
  });
  if (actual.length !== expected.length) problems.push(`walrelay delivered ${actual.length} events, test_decoding decoded ${expected.length}`);
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) problems.push(...compareEvent(i, actual[i], expected[i]));
  for (let i = 1; i < actual.length; i++) {
    if (!(String(actual[i - 1].id) < String(actual[i].id))) problems.push(`event ${i}: id ${String(actual[i].id)} does not sort after ${String(actual[i - 1].id)}`);
  }
  return problems;
}

for (const flavor of PG_FLAVORS) {
  describe(`differential test against test_decoding on ${flavor}`, () => {
    let server: TestPostgres;

    before(async () => {
      server = await startPostgres(flavor);
    });

    after(async () => {
      await server?.stop();
    });

    it('delivers what test_decoding decodes from the same WAL, field by field, live and lagging, with zero mismatches', async () => {
      await server.query('CREATE EXTENSION pg_walinspect');
      await server.query(SCHEMA);
      const source = { url: server.url, publication: 'walrelay' };
      const lagging = writeConfig({ source: { ...source, slot: 'walrelay' }, sinks: [{ type: 'stdout' }] });
      const setup = await runCli(['setup', '-c', lagging]);
      assert.equal(setup.code, 0, setup.stderr);
      await server.query(`SELECT pg_copy_logical_replication_slot('walrelay', 'oracle', false, 'test_decoding')`);
      await server.query(`SELECT pg_copy_logical_replication_slot('walrelay', 'live')`);
      const [{ restart }] = await server.query(`SELECT restart_lsn::text AS restart FROM pg_replication_slots WHERE slot_name = 'oracle'`);

      const live = spawnRelay(writeConfig({ source: { ...source, slot: 'live' }, sinks: [{ type: 'stdout' }] }), {}, { keepStdout: true });
      try {
        await live.waitForLog(/"msg":"streaming"/);
        for (const sql of CORPUS) await server.query(sql);
        await server.query(`SELECT pg_logical_emit_message(false, '${END_PREFIX}', 'end')`);
      } catch (error) {
        live.signal('SIGKILL');
        await live.exited;
        throw error;
      }
      const liveLines = await eventLines(live);
      const laggingLines = await eventLines(spawnRelay(lagging, {}, { keepStdout: true }));

      const records = parseTestDecoding(await readOracle(server.url));
      const expected = expectedEvents(records, { tables: TABLES, userTypes: USER_TYPES, commitLsn: await commitRecords(server, restart) });
      for (const [mode, lines] of [['live', liveLines], ['lagging', laggingLines]] as const) {
        const problems = differences(lines, expected);
        assert.deepEqual(problems.slice(0, 40), [], `${mode} relay: ${problems.length} mismatches`);
      }

      // The corpus reached what it is meant to reach (guards the oracle side against an empty or trivial run).
      const count = (predicate: (event: ExpectedEvent) => boolean) => expected.filter(predicate).length;
      assert.ok(count((event) => event.table === 'bulk') === BULK_ROWS, 'the large transaction');
      assert.ok(count((event) => Array.isArray(event.unchanged)) >= 2, 'updates that leave a TOASTed value out');
      assert.ok(count((event) => event.table === 'ri_full_nopk' && event.op === 'update' && typeof (event.new as any)?.big === 'string' && (event.new as any).big.length === 9600) === 1, 'FULL without primary key: the value filled from the old row');
      assert.ok(count((event) => event.op === 'truncate') >= 5, 'truncates');
      assert.ok(count((event) => event.op === 'message' && event.transactional === false) >= 5, 'non-transactional messages');
      assert.ok(!expected.some((event) => event.content === 'rolled back' || event.content === 'never' || (event.table === 'sp' && [2, 100, 101].includes(Number(((event.new as any)?.id as JsonNumber)?.text)))), 'rolled-back work is not decoded');
      const adjacent = expected.filter((event, i) => event.prefix === 'adjacent' && typeof expected[i + 1]?.commitLsn === 'string' && lsnHex(expected[i + 1].commitLsn as string) === event.id);
      assert.ok(adjacent.length >= 1, 'a non-transactional message ends exactly where the next commit record starts');
    });
  });
}
