// Values as Supabase Realtime renders them: Realtime builds records with
// to_jsonb of each value as wal2json printed it, so int8 and numeric are
// JSON numbers with every digit, timestamptz ends in "+00:00", intervals are
// in the "postgres" style and bytea is hex without the "\x" that wal2json
// drops (test/realtime-values.test.ts checks the rest against PostgreSQL's
// own to_jsonb). walrelay's own mapping
// (relay/source/values.ts) differs on exactly those, so they are rewritten
// here, from the walrelay value and the column's pg_type name; everything
// else is the same in both.
import type { ColumnType, Row } from '../../../../relay/route/event.js';
import { isoIntervalToPostgres } from './interval.js';

type Render = (value: unknown) => string;

const DECIMAL = /^-?\d+(\.\d+)?$/;

const plain: Render = (value) => JSON.stringify(value) ?? 'null';

/** walrelay always prints six fractional digits; to_jsonb prints as few as the value needs ("…:00.5", "…:00"). */
function trimFraction(text: string): string {
  return text.replace(/\.(\d*?)0+(?=$|[Z+-])/, (_, kept: string) => (kept ? `.${kept}` : ''));
}

const temporal = (value: unknown, rewrite: (text: string) => string = (text) => text): string =>
  plain(typeof value === 'string' && /\d\.\d{6}/.test(value) ? rewrite(trimFraction(value)) : typeof value === 'string' ? rewrite(value) : value);

const RENDER_BY_TYPE: Record<string, Render> = {
  // Digits stay digits (a JSON number of any length); NaN and ±Infinity stay strings.
  int8: (value) => (typeof value === 'string' && DECIMAL.test(value) ? value : plain(value)),
  numeric: (value) => (typeof value === 'string' && DECIMAL.test(value) ? value : plain(value)),
  timestamptz: (value) => temporal(value, (text) => (text.endsWith('Z') ? text.slice(0, -1) + '+00:00' : text)),
  timestamp: (value) => temporal(value),
  time: (value) => temporal(value),
  // PostgreSQL writes a whole-hour offset as "+02", walrelay as "+02:00".
  timetz: (value) => temporal(value, (text) => (text.endsWith('Z') ? text.slice(0, -1) + '+00' : text.replace(/([+-]\d\d):00$/, '$1'))),
  interval: (value) => plain(typeof value === 'string' ? isoIntervalToPostgres(value) : value),
  bytea: (value) => plain(typeof value === 'string' ? Buffer.from(value, 'base64').toString('hex') : value),
};

function arrayRender(element: Render): Render {
  const render: Render = (value) => (Array.isArray(value) ? `[${value.map((item) => (item === null ? 'null' : render(item))).join(',')}]` : element(value));
  return render;
}

/** JSON text of one value of a column of pg_type `type` (arrays are `_element`). */
export function rendererFor(type: string): Render {
  const direct = RENDER_BY_TYPE[type];
  if (direct) return direct;
  if (type.startsWith('_')) {
    const element = RENDER_BY_TYPE[type.slice(1)];
    if (element) return arrayRender(element);
  }
  return plain;
}

/** Per relation (the columnTypes array is shared by its changes): column name → renderer. */
const renderers = new WeakMap<readonly ColumnType[], Map<string, Render>>();

function renderersOf(columns: readonly ColumnType[]): Map<string, Render> {
  let map = renderers.get(columns);
  if (!map) {
    map = new Map(columns.map((column) => [column.name, rendererFor(column.type)]));
    renderers.set(columns, map);
  }
  return map;
}

/** A row as Realtime's JSON object text, columns in the row's order. */
export function renderRow(row: Row, columns: readonly ColumnType[]): string {
  const byName = renderersOf(columns);
  let json = '{';
  for (const name in row) {
    const value = row[name];
    if (json.length > 1) json += ',';
    json += JSON.stringify(name) + ':' + (value === null ? 'null' : (byName.get(name) ?? plain)(value));
  }
  return json + '}';
}
