// Outbox routing (`outbox:` in the configuration), after Debezium's Outbox
// Event Router: an INSERT into an outbox table becomes a domain event
//   destination  the template over the row (default outbox.event.{aggregatetype})
//   key          the aggregateid (JSON text, as Debezium's JSON converter writes it)
//   value        the payload itself, not wrapped (jsonb, or text holding JSON, as is)
//   headers      id and type (and timestamp when configured), walrelay-id, walrelay-lsn
// Updates and deletes of outbox rows produce nothing: the application may
// delete the rows it wrote, in the same or a later transaction.
import type { Config } from '../../config/schema.js';
import type { ChangeEvent, } from '../route/event.js';
import { asJsonText, compileTemplate, type DomainEvent } from './domain-event.js';
import { WalrelayError } from '../errors.js';

type OutboxConfig = NonNullable<Config['outbox']>[number];
type Logical = keyof OutboxConfig['columns'];

interface OutboxTable {
  columns: OutboxConfig['columns'];
  destination: (lookup: (name: string) => unknown) => string;
  where: string;
}

export class OutboxRouter {
  private readonly tables = new Map<string, OutboxTable>();

  constructor(outbox: NonNullable<Config['outbox']>) {
    outbox.forEach((entry, index) => {
      const where = `outbox[${index}].destination`;
      // Any column of the row may be named; the logical names map through `columns`.
      this.tables.set(entry.table, { columns: entry.columns, destination: compileTemplate(entry.destination, where, () => true), where });
    });
  }

  /** Whether events of this table are handled here (then `route` decides what they become). */
  handles(event: ChangeEvent): boolean {
    return event.table !== undefined && this.tables.has(`${event.schema}.${event.table}`);
  }

  /** The domain event for an outbox insert; null for every other change of an outbox table. */
  route(event: ChangeEvent): DomainEvent | null {
    const table = this.tables.get(`${event.schema}.${event.table}`)!;
    if (event.op !== 'insert' || !event.new) return null;
    const row = event.new;
    const column = (name: Logical): unknown => {
      const columnName = table.columns[name];
      if (columnName === undefined) return undefined;
      if (!(columnName in row)) throw missingColumn(event, columnName, `outbox column ${name}`);
      return row[columnName];
    };
    const lookup = (name: string): unknown => {
      if (name in table.columns) return column(name as Logical);
      if (name === 'schema') return event.schema;
      if (name === 'table') return event.table;
      if (!(name in row)) throw missingColumn(event, name, table.where);
      return row[name];
    };
    const headers: [string, string][] = [['id', text(column('id'))], ['type', text(column('type'))]];
    const timestamp = column('timestamp');
    if (timestamp !== undefined) headers.push(['timestamp', text(timestamp)]);
    headers.push(['walrelay-id', event.id], ['walrelay-lsn', event.lsn]);
    const aggregateId = column('aggregateid');
    return {
      ...plain(event),
      domain: {
        destination: table.destination(lookup),
        key: aggregateId === null ? null : JSON.stringify(text(aggregateId)),
        value: asJsonText(column('payload')),
        headers,
      },
    };
  }
}

function text(value: unknown): string {
  return value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
}

/** The change as a plain object (a RowChange keeps its rows behind getters). */
function plain(event: ChangeEvent): ChangeEvent {
  const { id, op, schema, table, key, lsn, commitLsn, xid, commitTime } = event;
  return { id, op, schema, table, key, new: event.new, old: null, lsn, commitLsn, xid, commitTime };
}

function missingColumn(event: ChangeEvent, column: string, where: string): WalrelayError {
  return new WalrelayError('OUTBOX_COLUMN_MISSING', `${where}: ${event.schema}.${event.table} has no column ${column}`, {
    kind: 'config', hint: 'name the outbox table\'s real columns under outbox[].columns (defaults: id, aggregatetype, aggregateid, type, payload)',
  });
}
