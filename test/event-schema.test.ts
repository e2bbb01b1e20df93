// walrelay schema against a real PostgreSQL and real events: the JSON Schema
// it prints validates every event a running relay delivered (checked with
// ajv, draft 2020-12) and rejects wrong ones; the TypeScript it prints
// compiles (tsc --strict) with a consumer and with the delivered events as
// typed literals, and refuses a consumer that misuses a column's type.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { PG_FLAVORS, startPostgres, type TestPostgres } from './harness/postgres.js';
import { runCli, spawnRelay, writeConfig, type RelayProcess } from './harness/relay.js';
import { waitFor } from './harness/wait.js';

const TSC = join(process.cwd(), 'node_modules', '.bin', 'tsc');

for (const flavor of PG_FLAVORS) describe(`walrelay schema (${flavor})`, () => {
  let pg: TestPostgres;
  let relay: RelayProcess | undefined;
  let configFile: string;
  let events: any[] = [];

  before(async () => {
    pg = await startPostgres(flavor);
    await pg.query(`CREATE TYPE mood AS ENUM ('happy', 'sad')`);
    await pg.query(`CREATE DOMAIN posint AS integer CHECK (VALUE > 0)`);
    await pg.query(`CREATE TABLE orders (
      id bigint PRIMARY KEY, status text NOT NULL, total numeric(10,2), qty integer, ratio double precision,
      paid boolean, meta jsonb, tags text[], grid integer[], created timestamptz, code varchar(8), blob bytea,
      feeling mood, amount posint, note text)`);
    await pg.query('CREATE TABLE notes (id int, body text)');
    await pg.query('ALTER TABLE notes REPLICA IDENTITY FULL');
    // A publication column list: pgoutput sends only id and a, and so must walrelay schema describe it.
    await pg.query('CREATE TABLE partial (id int PRIMARY KEY, a text, secret text)');
    await pg.query('CREATE PUBLICATION walrelay FOR TABLE orders, notes, partial (id, a)');
    configFile = writeConfig({
      source: { url: pg.url, tables: ['public.orders', 'public.notes', 'public.partial'] },
      sinks: [{ type: 'stdout', schemaEvents: true }],
    });
    assert.equal((await runCli(['setup', '-c', configFile])).code, 0);
    relay = spawnRelay(configFile, {}, { keepStdout: true });
    await relay.waitForLog(/"msg":"streaming"/);
    await pg.query(`INSERT INTO orders VALUES (9223372036854775807, 'new', 12.50, 3, 'NaN', true, '{"a":[1,2]}', '{x,NULL}', '{{1,2},{3,4}}',
      '2026-11-22 10:00:00.5+00', 'AB', '\\x00ff', 'happy', 7, NULL)`);
    await pg.query(`INSERT INTO orders (id, status) VALUES (2, 'new')`);
    await pg.query(`UPDATE orders SET status = 'paid', ratio = 1.5 WHERE id = 2`);
    await pg.query(`DELETE FROM orders WHERE id = 2`);
    await pg.query(`INSERT INTO notes VALUES (1, 'n'), (NULL, NULL)`);
    await pg.query(`UPDATE notes SET body = 'm' WHERE id = 1`);
    await pg.query(`DELETE FROM notes WHERE id = 1`);
    await pg.query('TRUNCATE notes');
    await pg.query(`INSERT INTO partial VALUES (1, 'x', 'hidden')`);
    await waitFor(() => relay!.stdout().includes('"op":"truncate"'), { what: 'the truncate event' });
    const backfill = await runCli(['backfill', '-c', configFile, 'public.orders']);
    assert.equal(backfill.code, 0, backfill.stderr);
    await waitFor(() => relay!.stdout().includes('"op":"read"'), { what: 'the read event' });
    events = relay.stdout().trim().split('\n').map((line) => JSON.parse(line));
  });
  after(async () => {
    if (relay && relay.child.exitCode === null) {
      relay.signal('SIGTERM');
      await relay.exited;
    }
    await pg?.stop();
  });

  it('prints a JSON Schema that validates every delivered event, and rejects wrong ones', async () => {
    assert.deepEqual(events.map((event) => event.op), ['schema', 'insert', 'insert', 'update', 'delete', 'schema', 'insert', 'insert', 'update', 'delete', 'truncate', 'schema', 'insert', 'read']);
    assert.deepEqual(events[12].new, { id: 1, a: 'x' });
    assert.equal(events[13].schemaVersion, events[1].schemaVersion, 'a backfill read carries the version of the streamed changes');
    const printed = await runCli(['schema', '-c', configFile]);
    assert.equal(printed.code, 0, printed.stderr);
    const schema = JSON.parse(printed.stdout);
    assert.deepEqual(Object.keys(schema.$defs), ['public.notes', 'public.orders', 'public.partial']);
    const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
    for (const event of events) assert.ok(validate(event), `${JSON.stringify(event)}: ${JSON.stringify(validate.errors)}`);

    const insert = events[1];
    const wrong = (change: (event: any) => void) => {
      const copy = structuredClone(insert);
      change(copy);
      return validate(copy);
    };
    assert.equal(wrong(() => undefined), true);
    assert.equal(wrong((event) => { event.new.qty = '3'; }), false, 'an integer column as a string');
    // biome-ignore lint/correctness/noPrecisionLoss: the lost digits are the point of this case
    assert.equal(wrong((event) => { event.new.id = 9223372036854775807; }), false, 'a bigint as a number (digits lost)');
    assert.equal(wrong((event) => { event.new.ssn = 'x'; }), false, 'a column the table does not have');
    assert.equal(wrong((event) => { delete event.new.note; }), false, 'an insert without one of its columns');
    assert.equal(wrong((event) => { event.new.status = null; }), false, 'NULL in a NOT NULL column');
    assert.equal(wrong((event) => { delete event.id; }), false, 'no id');
    assert.equal(wrong((event) => { event.table = 'notes'; }), false, 'an orders row as a notes event');
    assert.equal(wrong((event) => { event.new.tags = 'x'; }), false, 'an array column as a string');

    const one = await runCli(['schema', '-c', configFile, 'public.orders']);
    assert.deepEqual(Object.keys(JSON.parse(one.stdout).$defs), ['public.orders']);
    const missing = await runCli(['schema', '-c', configFile, 'public.nope']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /public\.nope not in publication walrelay/);
  });

  it('refuses a wrong --format (exit 2) and a missing publication (exit 1, with the fix)', async () => {
    const format = await runCli(['schema', '-c', configFile, '--format', 'avro']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /--format: expected json-schema or typescript/);
    const other = writeConfig({ source: { url: pg.url, publication: 'nothing_here' }, sinks: [{ type: 'stdout' }] });
    const missing = await runCli(['schema', '-c', other]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /PUBLICATION_MISSING.*walrelay setup/s);
  });

  // tsc is the slow part: once, on PostgreSQL 18.
  if (flavor === 'pg18') it('prints TypeScript that the delivered events and a consumer compile against, with the events\' schemaVersion', async () => {
    const printed = await runCli(['schema', '-c', configFile, '--format', 'typescript']);
    assert.equal(printed.code, 0, printed.stderr);
    const dir = mkdtempSync(join(tmpdir(), 'walrelay-types-'));
    writeFileSync(join(dir, 'events.ts'), printed.stdout);
    writeFileSync(join(dir, 'delivered.ts'), `import type { WalrelayEvent } from './events.js';\nexport const delivered: WalrelayEvent[] = ${JSON.stringify(events, null, 2)};\n`);
    writeFileSync(join(dir, 'consumer.ts'), `import { SCHEMA_VERSIONS, type WalrelayEvent } from './events.js';
export function describe(event: WalrelayEvent): string {
  if (event.table === 'orders' && (event.op === 'insert' || event.op === 'read')) {
    const id: string = event.new.id;          // bigint: a string, every digit
    const qty: number | null = event.new.qty;
    const status: string = event.new.status;  // NOT NULL
    return id + status + String(qty) + (event.schemaVersion === SCHEMA_VERSIONS['public.orders'] ? '' : ' (older shape)');
  }
  if (event.op === 'schema') return event.columns.map((column) => column.name).join(',');
  if (event.op === 'truncate') return String(event.cascade);
  return event.id;
}
`);
    const tsc = (files: string[]) => promisify(execFile)(TSC, ['--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', ...files.map((file) => join(dir, file))])
      .then(() => '', (error) => String(error.stdout) || String(error));
    assert.equal(await tsc(['events.ts', 'delivered.ts', 'consumer.ts']), '');

    writeFileSync(join(dir, 'misuse.ts'), `import type { WalrelayEvent } from './events.js';
export function qty(event: WalrelayEvent): number {
  if (event.table === 'orders' && event.op === 'insert') return event.new.status; // a text column used as a number
  return 0;
}
`);
    writeFileSync(join(dir, 'wrong-event.ts'), `import type { WalrelayEvent } from './events.js';
export const wrong: WalrelayEvent = ${JSON.stringify({ ...events[1], new: { ...events[1].new, qty: '3' } })};
`);
    const refused = await tsc(['events.ts', 'misuse.ts', 'wrong-event.ts']);
    assert.match(refused, /misuse\.ts.*TS2322/);
    assert.match(refused, /wrong-event\.ts/);

    const versions = Object.fromEntries([...printed.stdout.matchAll(/^ {2}"(public\.\w+)": "([0-9a-f]{12})",$/gm)].map((match) => [match[1], match[2]]));
    for (const event of events.filter((event) => event.schemaVersion)) assert.equal(event.schemaVersion, versions[`${event.schema}.${event.table}`]);
    assert.equal(Object.keys(versions).length, 3);
  });
});
