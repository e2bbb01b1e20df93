// Backfill: re-emit the current rows of tables as op "read" while streaming
// goes on, without a table lock.
//
// Each chunk of rows (in key order) is read with SELECT … FOR SHARE NOWAIT and
// written into the WAL with pg_logical_emit_message in the same transaction.
// The running relay receives the chunk through the slot like any change, at
// the position of that commit: a concurrent UPDATE of a chunk row waits for
// the chunk's commit, so it always arrives after the read of that row, never
// before (no stale reads). Because the chunk lives in the WAL, a relay that
// crashes re-delivers it with the same ids. Progress is kept in a state file
// after every chunk (backfill-state.ts), so an interrupted backfill resumes
// where it stopped.
//
// FOR SHARE is why backfill needs UPDATE privilege (PostgreSQL's rule for
// row locks): without the lock, an update committed between the chunk's read
// and its commit would reach consumers before the older read of that row.
import type pg from 'pg';
import { emitControlMessage, loadControlKey } from '../route/control-message.js';
import type { Config } from '../../config/schema.js';
import { WalrelayError } from '../errors.js';
import { quoteIdent } from '../setup/sql.js';
import { withSourceClient } from '../setup/source-client.js';
import { checkBackfillPrivileges, inspectTables, publishedTableNames } from '../setup/preflight.js';
import { BackfillState, databaseIdentity, progressKey, type TableProgress } from './backfill-state.js';
import { Backoff } from '../backoff.js';

export const BACKFILL_PREFIX = 'walrelay.backfill';

/** The content of one backfill message. */
export interface BackfillChunk {
  v: 1;
  schema: string;
  table: string;
  columns: string[];
  /** Type OIDs of the columns, so the relay converts values exactly as for streamed rows. */
  types: number[];
  /** Replica-identity columns (the event's `key`). */
  key: string[];
  /** atttypmod of the columns, for the read events' schemaVersion (relay/source/table-shape.ts); absent from older writers. */
  typeMods?: number[];
  /** Values in PostgreSQL text form, null for NULL. */
  rows: (string | null)[][];
  /** `backfill --sink`: only this sink receives the rows, into `stream` (a name template) when given. */
  target?: BackfillTarget;
}

export interface BackfillTarget {
  sink: string;
  stream?: string;
}

export interface BackfillOptions {
  chunkRows: number;
  /** Progress file; an existing one is resumed. Without one, progress is not kept. */
  stateFile?: string;
  /** Start the named tables over, ignoring saved progress. */
  restart?: boolean;
  say(line: string): void;
  /** `--sink NAME [--stream-template T]`: a projection rebuild into one sink. */
  target?: BackfillTarget;
  /** Ends the backfill between chunks (BACKFILL_STOPPED): the relay stopping during a re-snapshot. */
  signal?: AbortSignal;
}

interface TableShape {
  oid: number;
  schema: string;
  table: string;
  columns: string[];
  types: number[];
  typeMods: number[];
  key: string[];
  /** Columns that order the chunks: the primary key, or ctid when there is none. */
  order: string[];
}

/** Raw text values: conversion happens in the relay, with the streaming converters. */
const textTypes = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

export async function backfillTables(config: Config, tables: readonly string[], options: BackfillOptions): Promise<void> {
  const state = BackfillState.open(options.stateFile);
  if (state.ignoredOldFormat) options.say(`${options.stateFile}: written by an older walrelay (progress by table name only, whatever the database); ignoring it and starting over`);
  // On a connection of its own: the backfill's may read under an older snapshot, in which a new key table does not exist yet.
  const controlKey = await withSourceClient(config, loadControlKey, { applicationName: 'walrelay-backfill', doing: 'reading the key that signs backfill chunks failed' });
  await withSourceClient(config, async (client) => {
    // Everything is checked before the first chunk: a missing table or grant is one clear error, not a half-done backfill.
    const shapes: TableShape[] = [];
    for (const name of tables) shapes.push(await describeTable(client, name));
    await checkBackfillPrivileges(client, tables);
    for (const table of await inspectTables(client, config.source.publication, tables)) {
      if (!table.published) {
        options.say(`warning: ${table.name} is not in publication ${config.source.publication}: its rows are sent as "read" events, but its later changes will not arrive; add it to source.tables (or the publication)`);
      }
    }
    const identity = await databaseIdentity(client, config.source.slot);
    for (const shape of shapes) {
      const name = `${shape.schema}.${shape.table}`;
      // A rebuild into one sink keeps its own progress, apart from backfills into every sink.
      const key = progressKey(identity, shape.oid) + (options.target ? ` sink=${options.target.sink} stream=${options.target.stream ?? ''}` : '');
      const saved = options.restart ? undefined : state.get(key);
      if (saved?.done) {
        options.say(`${name}: skipped: already backfilled (${saved.rows} rows, finished ${saved.updatedAt}) for this table in database ${identity.database} through slot ${identity.slot} (state ${options.stateFile}); add --restart to backfill it again`);
        continue;
      }
      if (!saved && state.othersNamed(name, key).length > 0) {
        options.say(`${name}: ${options.stateFile} has progress for a table of this name in another database, slot, or before the table was recreated; it does not apply here`);
      }
      const progress: TableProgress = saved ?? { table: name, after: null, rows: 0, done: false, updatedAt: new Date().toISOString() };
      if (saved) options.say(`${name}: resuming after ${saved.rows} rows (state ${options.stateFile})`);
      for (;;) {
        if (options.signal?.aborted) throw stopped(name, progress.rows);
        const rows = await emitChunkWhenUnlocked(client, controlKey, shape, progress.after, options.chunkRows, options.say, options.signal, options.target);
        if (rows.length > 0) {
          progress.after = rows[rows.length - 1].slice(shape.columns.length);
          progress.rows += rows.length;
        }
        progress.done = rows.length < options.chunkRows;
        progress.updatedAt = new Date().toISOString();
        state.set(key, progress);
        options.say(`${name}: ${progress.rows} rows${progress.done ? ', done' : ''}`);
        if (progress.done) break;
      }
    }
  }, { applicationName: 'walrelay-backfill', types: textTypes, doing: 'backfill failed' });
}

/**
 * Row locks are taken with NOWAIT: the backfill never waits for a writer, so
 * it can never be part of a deadlock and never makes an application
 * transaction fail. When a chunk row is locked, the chunk is retried shortly.
 */
async function emitChunkWhenUnlocked(client: pg.Client, controlKey: Buffer, shape: TableShape, after: (string | null)[] | null, limit: number, say: (line: string) => void,
  signal: AbortSignal | undefined, target?: BackfillTarget): Promise<(string | null)[][]> {
  const backoff = new Backoff(10, 1000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await emitChunk(client, controlKey, shape, after, limit, target);
    } catch (error) {
      if ((error as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw error;
      if (signal?.aborted) throw stopped(`${shape.schema}.${shape.table}`, null);
      if (attempt % 50 === 0) say(`${shape.schema}.${shape.table}: rows of the next chunk stay locked by writers; still retrying (${attempt} attempts)`);
      await backoff.wait();
    }
  }
}

const LOCK_NOT_AVAILABLE = '55P03';

function stopped(table: string, rows: number | null): WalrelayError {
  return new WalrelayError('BACKFILL_STOPPED', `backfill of ${table} stopped${rows === null ? '' : ` after ${rows} rows`}: walrelay is stopping`, {
    hint: 'run the backfill again to complete it',
  });
}

async function emitChunk(client: pg.Client, controlKey: Buffer, shape: TableShape, after: (string | null)[] | null, limit: number, rebuild?: BackfillTarget): Promise<(string | null)[][]> {
  const target = `${quoteIdent(shape.schema)}.${quoteIdent(shape.table)}`;
  const order = shape.order.map((column) => (column === 'ctid' ? 'ctid' : quoteIdent(column)));
  const select = [...shape.columns.map(quoteIdent), ...order].join(', ');
  const params = after ?? [];
  const castAfter = shape.order[0] === 'ctid' ? ['$1::tid'] : params.map((_, i) => `$${i + 1}`);
  const where = after ? `WHERE (${order.join(', ')}) > (${castAfter.join(', ')})` : '';
  await client.query('BEGIN');
  try {
    const result = await client.query({ text: `SELECT ${select} FROM ${target} ${where} ORDER BY ${order.join(', ')} LIMIT ${limit} FOR SHARE NOWAIT`, values: params, rowMode: 'array' });
    const rows = result.rows as (string | null)[][];
    if (rows.length > 0) {
      const chunk: BackfillChunk = {
        v: 1, schema: shape.schema, table: shape.table, columns: shape.columns, types: shape.types, key: shape.key, typeMods: shape.typeMods,
        rows: rows.map((row) => row.slice(0, shape.columns.length)),
        ...(rebuild ? { target: rebuild } : {}),
      };
      // Signed: the relay drops a backfill message that anyone else wrote (control-message.ts).
      await emitControlMessage(client, controlKey, BACKFILL_PREFIX, JSON.stringify(chunk));
    }
    await client.query('COMMIT');
    return rows;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function describeTable(client: pg.Client, name: string): Promise<TableShape> {
  const found = (await client.query(`
    SELECT c.oid, n.nspname, c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`, name.split('.', 2))).rows[0];
  if (!found) throw new WalrelayError('TABLE_MISSING', `table ${name} does not exist`, { kind: 'config', hint: 'name tables as schema.table' });
  // Generated columns are not replicated, so they are not backfilled either.
  const columns = (await client.query(`
    SELECT attname, atttypid::int AS type, atttypmod FROM pg_attribute
    WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`, [found.oid])).rows;
  const primary = await indexColumns(client, found.oid, 'indisprimary');
  const names = columns.map((column) => column.attname as string);
  // The same key as streamed events (relation.ts): replica identity columns, the primary key for FULL, in column order.
  const identity = found.relreplident === 'f' ? (primary.length > 0 ? primary : names)
    : found.relreplident === 'i' ? await indexColumns(client, found.oid, 'indisreplident')
    : found.relreplident === 'n' ? [] : primary;
  return {
    oid: Number(found.oid),
    schema: found.nspname,
    table: found.relname,
    columns: names,
    types: columns.map((column) => Number(column.type)),
    typeMods: columns.map((column) => Number(column.atttypmod)),
    key: names.filter((name) => identity.includes(name)),
    order: primary.length > 0 ? primary : ['ctid'],
  };
}

async function indexColumns(client: pg.Client, relation: string, flag: 'indisprimary' | 'indisreplident'): Promise<string[]> {
  const rows = (await client.query(`
    SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = $1 AND i.${flag} ORDER BY array_position(i.indkey::int2[], a.attnum)`, [relation])).rows;
  return rows.map((row) => row.attname as string);
}

/** The published tables, for snapshot: initial. */
export async function publishedTables(config: Config): Promise<string[]> {
  return withSourceClient(config, (client) => publishedTableNames(client, config.source.publication),
    { doing: `listing the tables of publication ${config.source.publication}` });
}
