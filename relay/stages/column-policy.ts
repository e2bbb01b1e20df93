// Column policies of one sink (`columns: { "schema.table.column": drop | hash | mask }`):
// a step between the assembler and the sink, so that every format and every
// kind of row event (streamed changes and backfill "read" events alike) is
// covered by one rule applied before the event is serialised.
//
// - drop: the column leaves `new`, `old` and `unchanged`. Dropping a key
//   column is refused: the key is what orders and partitions a row's events.
// - hash: HMAC-SHA-256 (hex) of the value's text under `columnHashKey`, so
//   equal values still join across tables and sinks without being readable.
//   Strings are hashed as they are, other values as their JSON text (an int
//   42 and a bigint "42" hash alike).
// - mask: the value becomes MASK.
// NULL stays null under hash and mask. Events of tables without a policy
// pass through untouched (the same object), so the cost is paid only where
// a policy applies.
import { createHmac } from 'node:crypto';
import type { ChangeEvent, Row } from '../route/event.js';
import { compileTablePattern, type TableMatcher } from '../route/table-pattern.js';
import { WalrelayError } from '../errors.js';

export type ColumnAction = 'drop' | 'hash' | 'mask';

export const MASK = '****';

interface Rule {
  pattern: string;
  table: TableMatcher;
  column: (name: string) => boolean;
  action: ColumnAction;
}

/** The actions for one table's columns, resolved once per column name. */
class TablePolicy {
  private readonly actions = new Map<string, ColumnAction | null>();

  constructor(readonly qualified: string, private readonly rules: readonly Rule[]) {}

  actionFor(column: string): ColumnAction | null {
    let action = this.actions.get(column);
    if (action === undefined) {
      // The first matching rule wins, in the order the configuration lists them.
      action = this.rules.find((rule) => rule.column(column))?.action ?? null;
      this.actions.set(column, action);
    }
    return action;
  }

  ruleFor(column: string): string | undefined {
    return this.rules.find((rule) => rule.column(column))?.pattern;
  }
}

export class ColumnPolicy {
  private readonly rules: Rule[];
  private readonly tables = new Map<string, TablePolicy | null>();

  /** `where` names the configuration key in errors, e.g. "sinks[0].columns". */
  constructor(columns: Readonly<Record<string, ColumnAction>>, private readonly hashKey: string | undefined, private readonly where: string) {
    this.rules = Object.entries(columns).map(([pattern, action]) => {
      const cut = pattern.lastIndexOf('.');
      return { pattern, table: compileTablePattern(pattern.slice(0, cut)), column: globMatcher(pattern.slice(cut + 1)), action };
    });
    if (!hashKey && this.rules.some((rule) => rule.action === 'hash')) {
      throw new WalrelayError('CONFIG_INVALID', `${where}: a hash policy needs a key`, {
        kind: 'config', hint: 'set columnHashKey in the configuration or the environment variable WALRELAY_COLUMN_HASH_KEY',
      });
    }
  }

  /** The rule pattern that would drop `column` of `table`, if any (startup check of key columns). */
  dropRuleFor(qualified: string, column: string): string | undefined {
    const table = this.tableFor(qualified);
    return table?.actionFor(column) === 'drop' ? table.ruleFor(column) : undefined;
  }

  apply(event: ChangeEvent): ChangeEvent {
    if (event.table === undefined) return event;
    const table = this.tableFor(`${event.schema}.${event.table}`);
    if (table === null) return event;
    const columns = (event as { columns?: unknown }).columns;
    if (Array.isArray(columns)) return this.applyToColumnList(table, event, columns); // a schema event's column list
    if (event.key == null && event.new == null && event.old == null) return event; // truncate: no rows
    // toJSON keeps every field (and their order) of whatever shape the event has.
    const out = (typeof (event as { toJSON?: unknown }).toJSON === 'function' ? (event as unknown as { toJSON(): ChangeEvent }).toJSON() : { ...event }) as ChangeEvent;
    out.key = this.applyToKey(table, out.key ?? null);
    out.new = this.applyToRow(table, out.new ?? null);
    out.old = this.applyToRow(table, out.old ?? null);
    if (out.unchanged) out.unchanged = out.unchanged.filter((column) => table.actionFor(column) !== 'drop');
    return out;
  }

  /** A dropped column is not announced either: its name leaves the list. */
  private applyToColumnList(table: TablePolicy, event: ChangeEvent, columns: { name?: unknown }[]): ChangeEvent {
    const kept = columns.filter((column) => typeof column.name !== 'string' || table.actionFor(column.name) !== 'drop');
    return kept.length === columns.length ? event : { ...event, columns: kept } as ChangeEvent;
  }

  private tableFor(qualified: string): TablePolicy | null {
    let table = this.tables.get(qualified);
    if (table === undefined) {
      const rules = this.rules.filter((rule) => rule.table(qualified));
      table = rules.length === 0 ? null : new TablePolicy(qualified, rules);
      if (this.tables.size < 10_000) this.tables.set(qualified, table);
    }
    return table;
  }

  private applyToKey(table: TablePolicy, key: Row | null): Row | null {
    if (key === null) return null;
    for (const column of Object.keys(key)) {
      if (table.actionFor(column) === 'drop') throw keyDropError(this.where, table.qualified, column, table.ruleFor(column)!);
    }
    return this.applyToRow(table, key);
  }

  private applyToRow(table: TablePolicy, row: Row | null): Row | null {
    if (row === null) return null;
    const out: Row = {};
    for (const [column, value] of Object.entries(row)) {
      const action = table.actionFor(column);
      if (action === 'drop') continue;
      out[column] = action === null || value === null ? value : action === 'mask' ? MASK : this.hash(value);
    }
    return out;
  }

  private hash(value: unknown): string {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    return createHmac('sha256', this.hashKey!).update(text).digest('hex');
  }
}

export function keyDropError(where: string, table: string, column: string, rule: string): WalrelayError {
  return new WalrelayError('COLUMN_POLICY_DROPS_KEY', `${where}: "${rule}": drop would remove key column ${column} of ${table}`, {
    kind: 'config', hint: `key columns cannot be dropped (they order and partition the row's events); use hash or mask for ${table}.${column}`,
  });
}

function globMatcher(pattern: string): (name: string) => boolean {
  if (pattern === '*') return () => true;
  if (!pattern.includes('*')) return (name) => name === pattern;
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[\\^$.+?()[\]{}|]/g, '\\$&')).join('.*')}$`);
  return (name) => regex.test(name);
}
