// What a channel streams: the entries of
// `config.postgres_changes` ({event, schema, table?, filter?}), or for a
// legacy join the topic itself (realtime:<schema>[:<table>[:<filter>]]).
// Each entry gets a server id that its matching changes carry in `ids`.
import type { ChangeEvent, ColumnType } from '../../../../relay/route/event.js';
import { parseFilter, FilterSyntaxError, type RowPredicate } from '../../filter.js';
import type { RealtimeType } from './change.js';

/** An entry that cannot be served: Realtime reports it as a system error after an ok reply. */
export class BindingError extends Error {}

export class Binding {
  constructor(
    /** Server id, echoed in the join reply and carried by matching changes. */
    readonly id: number,
    /** INSERT, UPDATE, DELETE or '*'. */
    readonly event: RealtimeType | '*',
    /** '*' = every schema. */
    readonly schema: string,
    /** null = every table of the schema. */
    readonly table: string | null,
    readonly filterText: string | null,
    private readonly filter: RowPredicate | null,
  ) {}

  /** schema.table when the entry names one table (what the token must allow), else null. */
  get qualifiedTable(): string | null {
    return this.schema !== '*' && this.table !== null ? `${this.schema}.${this.table}` : null;
  }

  matches(event: ChangeEvent, type: RealtimeType): boolean {
    return (this.event === '*' || this.event === type) &&
      (this.schema === '*' || this.schema === event.schema) &&
      (this.table === null || this.table === event.table) &&
      (this.filter === null || this.filter(event));
  }

  /** A filter on a column the table does not have (checked when walrelay has seen the table). */
  checkColumns(columns: readonly ColumnType[] | undefined): void {
    if (!columns || columns.length === 0 || this.filterText === null) return;
    const column = this.filterText.slice(0, this.filterText.indexOf('=')).trim();
    if (!columns.some((known) => known.name === column)) {
      throw new BindingError(`Error parsing \`filter\` params: column ${column} does not exist in ${this.schema}.${this.table}`);
    }
  }
}

/** A non-zero id below 2^27 from the entry (FNV-1a), so identical entries get the same id, as Realtime's hash does. */
export function bindingId(event: unknown, schema: unknown, table: unknown, filter: unknown): number {
  const text = JSON.stringify([event ?? null, schema ?? null, table ?? null, filter ?? null]);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return (hash & 0x7ffffff) || 1;
}

function eventOf(value: unknown): RealtimeType | '*' {
  const upper = typeof value === 'string' ? value.toUpperCase() : '*';
  return upper === 'INSERT' || upper === 'UPDATE' || upper === 'DELETE' ? upper : '*';
}

function compileFilter(text: string): RowPredicate {
  try {
    return parseFilter(text);
  } catch (error) {
    if (error instanceof FilterSyntaxError) throw new BindingError(`Error parsing \`filter\` params: ${error.message}`);
    throw error;
  }
}

/** One `config.postgres_changes` entry; throws BindingError when it cannot be served. */
export function bindingFromEntry(entry: Record<string, unknown>): Binding {
  const { event, schema, table, filter } = entry;
  const id = bindingId(event, schema, table, filter);
  if (schema !== undefined && typeof schema !== 'string') throw new BindingError('Unable to subscribe to changes: schema must be a string');
  if (table !== undefined && typeof table !== 'string') throw new BindingError('Unable to subscribe to changes: table must be a string');
  if (filter !== undefined && filter !== null && typeof filter !== 'string') throw new BindingError('Error parsing `filter` params: filter must be a string');
  if (!schema && !table) throw new BindingError('Unable to subscribe to changes with given parameters: a schema (or a table) is required');
  if (entry.select !== undefined) throw new BindingError('Unable to subscribe to changes with given parameters: select is not supported by walrelay');
  const tableName = !table || table === '*' ? null : table;
  const filterText = typeof filter === 'string' && filter !== '' ? filter : null;
  if (filterText !== null && tableName === null) throw new BindingError('Error parsing `filter` params: a filter needs a table');
  return new Binding(id, eventOf(event), schema || 'public', tableName, filterText, filterText === null ? null : compileFilter(filterText));
}

/** A legacy topic's subtopic: "*", "<schema>", "<schema>:<table>" or "<schema>:<table>:<col>=<op>.<value>". */
export function bindingFromLegacyTopic(subtopic: string): Binding {
  const first = subtopic.indexOf(':');
  const second = first < 0 ? -1 : subtopic.indexOf(':', first + 1);
  const schema = first < 0 ? subtopic : subtopic.slice(0, first);
  const table = first < 0 ? null : subtopic.slice(first + 1, second < 0 ? undefined : second);
  const filterText = second < 0 ? null : subtopic.slice(second + 1);
  if (schema === '') throw new BindingError(`Unable to subscribe to changes: topic realtime:${subtopic} names no schema`);
  const id = bindingId('*', schema, table, filterText);
  return new Binding(id, '*', schema, table === '' || table === '*' ? null : table, filterText, filterText === null ? null : compileFilter(filterText));
}
