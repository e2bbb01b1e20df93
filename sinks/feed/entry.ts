// One entry of the edge feed (docs/edges.md): an event as the relay's own
// websocket sink receives it, and what the Realtime protocol reads beside
// it (the table's column types). A row change keeps the JSON text the
// decoder built (key, new, old) byte for byte: parsing it would round big
// int8/numeric values, and an edge must send exactly the relay's frames.
// JSON text never holds a raw newline, so the parts are separated by one.
// With the feed sink's debeziumOrigins, a last part carries the event's
// origin (entry-origin.ts).
import { RowChange, originOf, setOrigin, type ChangeEvent, type ColumnType } from '../../relay/route/event.js';
import { eventJson } from '../../relay/route/event.js';
import { encodeOrigin, type OriginDecoder } from './entry-origin.js';

interface RowMeta {
  id: string;
  op: RowChange['op'];
  schema: string;
  table: string;
  schemaVersion?: string;
  unchanged?: string[];
  lsn: string;
  commitLsn: string;
  xid: number;
  commitTime: string;
  columns?: readonly ColumnType[];
}

/** The feed entry of one event (a row change: "r", metadata, key, new, old; anything else: "e", its JSON), and its origin when asked. */
export function encodeFeedEntry(event: ChangeEvent, withOrigin = false, database?: string): string {
  const origin = withOrigin ? originOf(event) : undefined;
  const originPart = origin ? `\n${encodeOrigin(origin, database)}` : '';
  if (!(event instanceof RowChange)) return `e\n${eventJson(event)}${originPart}`;
  const meta: RowMeta = {
    id: event.id, op: event.op, schema: event.schema, table: event.table, schemaVersion: event.schemaVersion, unchanged: event.unchanged,
    lsn: event.lsn, commitLsn: event.commitLsn, xid: event.xid, commitTime: event.commitTime, columns: event.columnTypes,
  };
  return `r\n${JSON.stringify(meta)}\n${event.keyJson ?? ''}\n${event.newJson ?? ''}\n${event.oldJson ?? ''}${originPart}`;
}

/**
 * The event a feed entry carries, as the relay's websocket sink had it (a
 * RowChange with its column types for rows), with its origin when the entry
 * has one and `origins` decodes them.
 */
export function decodeFeedEntry(entry: string, origins?: OriginDecoder): ChangeEvent {
  const kind = entry.slice(0, 2);
  if (kind === 'e\n') {
    const cut = entry.indexOf('\n', 2);
    const event = JSON.parse(cut < 0 ? entry.slice(2) : entry.slice(2, cut)) as ChangeEvent;
    if (cut >= 0 && origins) setOrigin(event, origins.decode(entry.slice(cut + 1)));
    return event;
  }
  if (kind !== 'r\n') throw new Error(`not a walrelay feed entry: ${JSON.stringify(entry.slice(0, 40))}`);
  const [metaJson, key, row, old, origin] = entry.slice(2).split('\n');
  if (old === undefined) throw new Error('truncated walrelay feed entry');
  const meta = JSON.parse(metaJson) as RowMeta;
  const qualifiedJson = `"schema":${JSON.stringify(meta.schema)},"table":${JSON.stringify(meta.table)}`;
  const event = new RowChange(meta.id, meta.op, meta.schema, meta.table, qualifiedJson, key || null, row || null, old || null,
    meta.unchanged, meta.lsn, meta.commitLsn, meta.xid, meta.commitTime, meta.schemaVersion);
  if (meta.columns) event.columnTypes = meta.columns;
  if (origin !== undefined && origins) setOrigin(event, origins.decode(origin));
  return event;
}
