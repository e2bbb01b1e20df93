// The three wire formats a sink can carry: walrelay (contract section 3),
// debezium (the Debezium PostgreSQL connector's JSON envelope, schemas off)
// and cloudevents (CloudEvents 1.0, structured mode). Each event is
// serialised at most once per format, and shared by every sink using it.
//
// Debezium: the envelope's field names and op letters are Debezium's
// (c u d r t m; before/after/source/op/ts_ms/transaction); the row values are
// walrelay's mapping (ISO timestamps, int8 and numeric as strings), not
// Debezium's schema-driven encodings (epoch micros, base64 decimals).
// Debezium has no gap event: a gap is rendered as a logical-decoding message
// (op "m", prefix "walrelay.gap", content the base64 of
// {"slot","fromLsn","toLsn"}), which Debezium consumers already handle.
// A schema event likewise: prefix "walrelay.schema", content the base64 of
// {"schema","table","schemaVersion","columns"}.
import { eventJson, keyJson, RowChange, type ChangeEvent } from '../relay/route/event.js';
import { parseLsn } from '../relay/lsn.js';
import { GAP_PREFIX } from '../relay/route/gap.js';

export type Format = 'walrelay' | 'debezium' | 'cloudevents';

export interface FormatContext {
  /** The source database's name: Debezium's `source.db`. */
  database?: string;
}

const DEBEZIUM_OP: Record<ChangeEvent['op'], string> = { insert: 'c', update: 'u', delete: 'd', read: 'r', truncate: 't', message: 'm', gap: 'm', begin: 'm', commit: 'm', schema: 'm' };

/** Debezium has no schema event either: it is a logical-decoding message with this prefix. */
export const SCHEMA_MESSAGE_PREFIX = 'walrelay.schema';

/** Debezium text per event, with the database name it was built for (one per daemon in practice). */
const debeziumCache = new WeakMap<ChangeEvent, { database: string | undefined; text: string }>();
const cloudeventsCache = new WeakMap<ChangeEvent, string>();

export function encodeEvent(event: ChangeEvent, format: Format, context?: FormatContext): string {
  if (format === 'walrelay') return eventJson(event);
  if (format === 'debezium') {
    const database = context?.database;
    const cached = debeziumCache.get(event);
    if (cached !== undefined && cached.database === database) return cached.text;
    const text = debeziumJson(event, context);
    debeziumCache.set(event, { database, text });
    return text;
  }
  let text = cloudeventsCache.get(event);
  if (text === undefined) {
    text = cloudEventJson(event);
    cloudeventsCache.set(event, text);
  }
  return text;
}

/**
 * A row change's before/after are spliced in as walrelay wrote them, not
 * parsed and serialised again, which would round big numbers in json columns.
 */
function debeziumJson(event: ChangeEvent, context?: FormatContext): string {
  if (!(event instanceof RowChange)) return JSON.stringify(debeziumEnvelope(event, context));
  const withoutRows = JSON.stringify(debeziumEnvelope({ ...event, key: null, new: null, old: null }, context));
  return `{"before":${event.oldJson ?? 'null'},"after":${event.newJson ?? 'null'}${withoutRows.slice(ROWLESS_HEAD.length)}`;
}

const ROWLESS_HEAD = '{"before":null,"after":null';

export function debeziumEnvelope(event: ChangeEvent, context?: FormatContext): Record<string, unknown> {
  const commitMillis = event.commitTime ? Date.parse(event.commitTime) : Date.now();
  const source = {
    version: 'walrelay',
    connector: 'postgresql',
    name: 'walrelay',
    ts_ms: commitMillis,
    snapshot: event.op === 'read' ? 'true' : 'false',
    ...(context?.database !== undefined ? { db: context.database } : {}),
    schema: event.schema ?? null,
    table: event.table ?? null,
    txId: event.xid,
    lsn: Number(parseLsn(event.lsn)),
    xmin: null,
  };
  if (event.op === 'message') {
    const content = event.contentEncoding === 'base64' ? event.content : Buffer.from(event.content ?? '', 'utf8').toString('base64');
    return { op: 'm', ts_ms: Date.now(), source, message: { prefix: event.prefix, content } };
  }
  if (event.op === 'schema') {
    const content = Buffer.from(JSON.stringify({ schema: event.schema, table: event.table, schemaVersion: event.schemaVersion, columns: event.columns }), 'utf8').toString('base64');
    return { op: 'm', ts_ms: Date.now(), source, message: { prefix: SCHEMA_MESSAGE_PREFIX, content } };
  }
  if (event.op === 'gap') {
    const content = Buffer.from(JSON.stringify({ slot: event.slot, fromLsn: event.fromLsn, toLsn: event.toLsn }), 'utf8').toString('base64');
    return { op: 'm', ts_ms: Date.now(), source, message: { prefix: GAP_PREFIX, content } };
  }
  return {
    before: event.old ?? null,
    after: event.new ?? null,
    source,
    op: DEBEZIUM_OP[event.op],
    ts_ms: Date.now(),
    transaction: null,
  };
}

/** CloudEvents 1.0 structured mode, with the walrelay event (already serialised) as data. */
export function cloudEventJson(event: ChangeEvent): string {
  const key = keyJson(event);
  const head = JSON.stringify({
    specversion: '1.0',
    id: event.id,
    source: event.op === 'gap' ? '/walrelay/gap' : event.table === undefined ? '/walrelay/messages' : `/walrelay/${event.schema}.${event.table}`,
    type: `io.walrelay.${event.op}`,
    ...(key ? { subject: key } : {}),
    ...(event.commitTime ? { time: event.commitTime } : {}),
    datacontenttype: 'application/json',
  });
  return `${head.slice(0, -1)},"data":${eventJson(event)}}`;
}
