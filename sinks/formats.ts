// The three wire formats a sink can carry: walrelay (contract section 3),
// debezium (the Debezium PostgreSQL connector's JSON envelope, schemas off)
// and cloudevents (CloudEvents 1.0, structured mode). Each event is
// serialised at most once per format, and shared by every sink using it.
//
// Debezium: Debezium Server 3.6's PostgreSQL connector output, values
// included (sinks/debezium/); one event can be several records there
// (delete + tombstone), so Redis and Kafka ask debeziumRecords for all of
// them and this file's encodeEvent gives the main one. Debezium has no gap
// event: a gap is a logical-decoding message (prefix "walrelay.gap"), and a
// schema event one with prefix "walrelay.schema".
import { eventJson, keyJson, type ChangeEvent } from '../relay/route/event.js';
import { debeziumRenderer, type DebeziumRecord } from './debezium/envelope.js';
import { debeziumOptions, type DebeziumOptions } from './debezium/options.js';

export type Format = 'walrelay' | 'debezium' | 'cloudevents';

export interface FormatContext {
  /** The source database's name: Debezium's `source.db`. */
  database?: string;
  /** The sink's `debezium` knobs. */
  debezium?: Partial<DebeziumOptions>;
}

const cloudeventsCache = new WeakMap<ChangeEvent, string>();

export function encodeEvent(event: ChangeEvent, format: Format, context?: FormatContext): string {
  if (format === 'walrelay') return eventJson(event);
  if (format === 'debezium') return debeziumValues(event, context)[0] ?? 'null';
  let text = cloudeventsCache.get(event);
  if (text === undefined) {
    text = cloudEventJson(event);
    cloudeventsCache.set(event, text);
  }
  return text;
}

/** The Debezium records of an event (a delete is followed by its tombstone), computed once per options and database. */
export function debeziumRecords(event: ChangeEvent, context?: FormatContext): DebeziumRecord[] {
  return debeziumRenderer(debeziumOptions(context?.debezium), context?.database ?? '').records(event);
}

/**
 * The values of the event's Debezium records, a delete's tombstone left out (it matters only to compacted Kafka
 * topics): what a sink without record keys sends, one message each (a key change: the delete, then the create).
 */
export function debeziumValues(event: ChangeEvent, context?: FormatContext): string[] {
  const values: string[] = [];
  for (const record of debeziumRecords(event, context)) if (record.value !== null) values.push(record.value);
  return values;
}

/** `<topicPrefix>.<schema>.<table>` / `<topicPrefix>.message`: Debezium's topic and Redis stream names. */
export function debeziumTemplates(context?: FormatContext): { table: string; message: string } {
  const prefix = debeziumOptions(context?.debezium).topicPrefix;
  return { table: `${prefix}.{schema}.{table}`, message: `${prefix}.message` };
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
