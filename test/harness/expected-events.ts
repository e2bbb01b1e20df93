// The events walrelay must deliver for what test_decoding decoded, by the
// README's rules ("The change event", "Value mapping"), written from the
// README and not from the assembler:
// - one event per row change, per table of a TRUNCATE, per logical message,
//   in decoding order; transactions without any are not seen;
// - key: with REPLICA IDENTITY USING INDEX the index's columns, otherwise the
//   primary key when the table has one, otherwise every column (FULL); null
//   without a replica identity; in the table's column order;
// - old: the whole old row (FULL; NULL columns are null) or the old key;
// - a TOASTed value PostgreSQL did not send is taken from the old row or old
//   key when they carry it, otherwise left out of `new` and listed in `unchanged`;
// - id: the commit LSN in 16 hex digits, '-', the position in the
//   transaction in 10 digits; a non-transactional message: its LSN in 16 hex
//   digits alone; lsn: the change's WAL position (as test_decoding reports it);
// - xid and commitTime of the transaction (null for non-transactional messages);
// - message content as UTF-8 text, or base64 when it is not UTF-8.
// Numbers are JsonNumber (see lossless-json.ts).
import { documentedValue, type UserTypes } from './documented-mapping.js';
import { JsonNumber } from './lossless-json.js';
import { UNCHANGED_TOAST, type DecodedColumn, type DecodedRecord } from './test-decoding.js';

export interface TableShape {
  identity: 'default' | 'full' | 'index' | 'nothing';
  primaryKey: string[];
  /** USING INDEX: the index's columns. */
  indexColumns?: string[];
}

export interface Expectations {
  /** "schema.table" → its replica identity and keys. */
  tables: Record<string, TableShape>;
  userTypes: UserTypes;
  /** xid → the LSN where its commit record starts (pg_walinspect). */
  commitLsn: Map<number, string>;
}

export type ExpectedEvent = Record<string, unknown>;

type Row = Record<string, unknown>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** "0/16B3748" → "00000000016B3748". */
export function lsnHex(lsn: string): string {
  const [high, low] = lsn.split('/');
  return (BigInt('0x' + high) * 2n ** 32n + BigInt('0x' + low)).toString(16).toUpperCase().padStart(16, '0');
}

export function expectedEvents(records: readonly DecodedRecord[], expect: Expectations): ExpectedEvent[] {
  const events: ExpectedEvent[] = [];
  /** Column names of each table as last printed in full, for the NULLs test_decoding leaves out of an old row. */
  const columnsOf = new Map<string, string[]>();
  let open: { xid: number; events: ExpectedEvent[] } | null = null;

  for (const record of records) {
    switch (record.kind) {
      case 'begin':
        open = { xid: record.xid, events: [] };
        break;
      case 'commit': {
        if (!open || open.xid !== record.xid) throw new Error(`COMMIT ${record.xid} without its BEGIN`);
        const commitLsn = expect.commitLsn.get(record.xid);
        if (!commitLsn) throw new Error(`no commit record found for xid ${record.xid}`);
        const commitTime = documentedValue('timestamp with time zone', record.commitTime);
        open.events.forEach((event, position) => {
          event.id = `${lsnHex(commitLsn)}-${String(position).padStart(10, '0')}`;
          event.commitLsn = commitLsn;
          event.xid = new JsonNumber(String(record.xid));
          event.commitTime = commitTime;
          events.push(reorder(event));
        });
        open = null;
        break;
      }
      case 'message': {
        const event: ExpectedEvent = {
          id: record.transactional ? undefined : lsnHex(record.lsn), op: 'message', lsn: record.lsn,
          commitLsn: null, xid: null, commitTime: null,
          transactional: record.transactional, prefix: record.prefix, ...content(record.content),
        };
        if (!record.transactional) {
          if (open) throw new Error(`a non-transactional message at ${record.lsn} inside transaction ${open.xid}`);
          events.push(event);
        } else {
          if (!open) throw new Error(`a transactional message at ${record.lsn} outside a transaction`);
          open.events.push(event);
        }
        break;
      }
      case 'truncate':
        if (!open) throw new Error(`TRUNCATE at ${record.lsn} outside a transaction`);
        for (const { schema, table } of record.tables) {
          open.events.push({ op: 'truncate', schema, table, key: null, new: null, old: null, cascade: record.cascade, restartIdentity: record.restartIdentity, lsn: record.lsn });
        }
        break;
      case 'change': {
        if (!open) throw new Error(`a change at ${record.lsn} outside a transaction`);
        const name = `${record.schema}.${record.table}`;
        const shape = expect.tables[name];
        if (!shape) throw new Error(`the corpus does not describe table ${name}`);
        if (record.new) columnsOf.set(name, record.new.map((column) => column.name));
        const convert = (columns: DecodedColumn[]) => toRow(columns, expect.userTypes);
        const oldRow = record.old ? convert(record.old) : null;
        let old: Row | null = null;
        if (oldRow && shape.identity === 'full') {
          const columns = columnsOf.get(name) ?? [];
          const missing = Object.keys(oldRow).filter((column) => !columns.includes(column));
          if (missing.length > 0) throw new Error(`corpus: ${name}'s old row has ${missing.join(', ')}, not in the last row printed in full; write a row after the DDL`);
          old = Object.fromEntries(columns.map((column) => [column, column in oldRow ? oldRow[column] : null]));
        } else if (oldRow) {
          old = oldRow;
        }
        let row: Row | null = null;
        let unchanged: string[] | undefined;
        if (record.new) {
          row = {};
          for (const [column, value] of Object.entries(convert(record.new))) {
            if (value !== UNCHANGED_TOAST) row[column] = value;
            else if (old && column in old && old[column] !== UNCHANGED_TOAST) row[column] = old[column];
            else (unchanged ??= []).push(column);
          }
        }
        const keyColumns = keyColumnsOf(shape, columnsOf.get(name) ?? Object.keys(row ?? old ?? {}));
        const source = record.op === 'delete' ? old : row;
        const key = keyColumns && source ? Object.fromEntries(keyColumns.map((column) => [column, source[column] ?? null])) : null;
        open.events.push({
          op: record.op, schema: record.schema, table: record.table, key, new: row, old,
          ...(unchanged ? { unchanged } : {}), lsn: record.lsn,
        });
        break;
      }
    }
  }
  if (open) throw new Error(`transaction ${open.xid} has no COMMIT in the decoded output`);
  return events;
}

function keyColumnsOf(shape: TableShape, columns: string[]): string[] | null {
  let key: string[] = [];
  if (shape.identity === 'index') key = shape.indexColumns ?? [];
  else if (shape.identity !== 'nothing' && shape.primaryKey.length > 0) key = shape.primaryKey;
  else if (shape.identity === 'full') key = columns;
  return key.length > 0 ? columns.filter((column) => key.includes(column)) : null;
}

function toRow(columns: DecodedColumn[], userTypes: UserTypes): Row {
  const row: Row = {};
  for (const { name, type, value } of columns) {
    row[name] = value === null || value === UNCHANGED_TOAST ? value : documentedValue(type, value, userTypes);
  }
  return row;
}

function content(bytes: Buffer): { content: string; contentEncoding: 'utf8' | 'base64' } {
  try {
    return { content: utf8.decode(bytes), contentEncoding: 'utf8' };
  } catch {
    return { content: bytes.toString('base64'), contentEncoding: 'base64' };
  }
}

/** Row events in the README's field order (id first, the transaction's fields last). */
function reorder(event: ExpectedEvent): ExpectedEvent {
  const { id, op, lsn, commitLsn, xid, commitTime, ...rest } = event;
  if (op === 'message') return { id, op, lsn, commitLsn, xid, commitTime, ...rest };
  return { id, op, ...rest, lsn, commitLsn, xid, commitTime };
}
