// A walrelay change event as Realtime's postgres_changes `data` object
// (what realtime-js reads from a postgres_changes push), serialised once per event and shared by
// every channel and serializer that sends it.
import type { ChangeEvent, ColumnType, Row } from '../../../../relay/route/event.js';
import { RowChange } from '../../../../relay/route/event.js';
import { renderRow } from './values.js';

export type RealtimeType = 'INSERT' | 'UPDATE' | 'DELETE';

const TYPES: Partial<Record<ChangeEvent['op'], RealtimeType>> = { insert: 'INSERT', update: 'UPDATE', delete: 'DELETE' };

/** INSERT, UPDATE or DELETE; null for what Realtime never sends (truncate, messages, snapshot reads). */
export function realtimeType(event: ChangeEvent): RealtimeType | null {
  return TYPES[event.op] ?? null;
}

/** The columns of the event's table: from the relation when the event came from the stream, else as last seen for the table. */
export function columnsOf(event: ChangeEvent, lastSeen: ReadonlyMap<string, readonly ColumnType[]>): readonly ColumnType[] {
  if (event instanceof RowChange && event.columnTypes) return event.columnTypes;
  return lastSeen.get(`${event.schema}.${event.table}`) ?? [];
}

const dataCache = new WeakMap<ChangeEvent, string>();
const columnsJsonCache = new WeakMap<readonly ColumnType[], string>();

/** `{"schema","table","commit_timestamp","type","columns","record","old_record","errors"}` as JSON text. */
export function changeData(event: ChangeEvent, type: RealtimeType, columns: readonly ColumnType[]): string {
  let json = dataCache.get(event);
  if (json !== undefined) return json;
  let columnsJson = columnsJsonCache.get(columns);
  if (columnsJson === undefined) {
    columnsJson = JSON.stringify(columns.map(({ name, type: typeName }) => ({ name, type: typeName })));
    columnsJsonCache.set(columns, columnsJson);
  }
  json = `{"schema":${JSON.stringify(event.schema)},"table":${JSON.stringify(event.table)},"commit_timestamp":${JSON.stringify(commitTimestamp(event.commitTime))},"type":"${type}","columns":${columnsJson}`;
  if (type !== 'DELETE') json += `,"record":${renderRow(recordOf(event, columns), columns)}`;
  if (type !== 'INSERT') json += `,"old_record":${renderRow(event.old ?? event.key ?? {}, columns)}`;
  json += ',"errors":null}';
  dataCache.set(event, json);
  return json;
}

const variantCache = new WeakMap<ChangeEvent, Map<string, string>>();

/**
 * The `data` object as a row-level security subscriber gets it: only the columns its role may read
 * (`readable`; null = all), and a DELETE's old_record trimmed to the key, as Realtime sends them with RLS.
 */
export function changeDataFor(event: ChangeEvent, type: RealtimeType, columns: readonly ColumnType[], readable: ReadonlySet<string> | null): string {
  const visible = readable === null ? columns : columns.filter(({ name }) => readable.has(name));
  if (type !== 'DELETE' && visible.length === columns.length) return changeData(event, type, columns);
  const signature = visible.map(({ name }) => name).join('\u0000');
  let variants = variantCache.get(event);
  if (!variants) {
    variants = new Map();
    variantCache.set(event, variants);
  }
  let json = variants.get(signature);
  if (json !== undefined) return json;
  const only = (row: Row): Row => Object.fromEntries(Object.entries(row).filter(([name]) => visible.some((column) => column.name === name)));
  json = `{"schema":${JSON.stringify(event.schema)},"table":${JSON.stringify(event.table)},"commit_timestamp":${JSON.stringify(commitTimestamp(event.commitTime))},"type":"${type}","columns":${JSON.stringify(visible.map(({ name, type: typeName }) => ({ name, type: typeName })))}`;
  if (type !== 'DELETE') json += `,"record":${renderRow(only(recordOf(event, columns)), visible)}`;
  if (type !== 'INSERT') json += `,"old_record":${renderRow(only(type === 'DELETE' ? event.key ?? {} : event.old ?? event.key ?? {}), visible)}`;
  json += ',"errors":null}';
  variants.set(signature, json);
  return json;
}

/** The new row; unchanged TOASTed columns come from the old row when PostgreSQL sent it (REPLICA IDENTITY FULL), in table order. */
function recordOf(event: ChangeEvent, columns: readonly ColumnType[]): Row {
  const row = event.new ?? {};
  const old = event.old;
  if (!event.unchanged || event.unchanged.length === 0 || !old) return row;
  const merged: Row = {};
  for (const { name } of columns) {
    if (name in row) merged[name] = row[name];
    else if (name in old) merged[name] = old[name];
  }
  return merged;
}

/** Commit time in UTC with milliseconds: "2026-11-22T10:00:00.123Z" (walrelay's has microseconds). */
export function commitTimestamp(commitTime: string | null): string {
  if (commitTime === null) return new Date().toISOString();
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}/.test(commitTime)) return commitTime.slice(0, 23) + 'Z';
  const parsed = Date.parse(commitTime);
  return Number.isNaN(parsed) ? commitTime : new Date(parsed).toISOString();
}
