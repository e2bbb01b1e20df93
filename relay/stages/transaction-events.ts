// Transaction events of one sink (`transactionEvents: true`): an op "begin"
// before the first event of each transaction the sink receives, an op
// "commit" after its last, with the number of events and the count per table,
// so a consumer can apply a transaction atomically and notice a missing event.
//
// Events are sent before PostgreSQL's Commit arrives (the assembler streams
// big transactions in batches), so "begin" cannot carry the count: it is
// null there and known on "commit". The commit is learnt from a marker the
// pipeline puts into the batch when the Commit message is applied
// (commitMarker below); every sink's stage removes the markers.
//
// Ids keep sorting strictly in delivery order: the transaction's events are
// `<commit LSN, 16 hex>-<position, 10 digits>`; "begin" is `<commit LSN>-.begin`
// ("." sorts before every digit) and "commit" `<commit LSN>-~commit` ("~"
// after every digit), both before the next transaction's ids.
//
// In the debezium format they are Debezium's transaction metadata records
// (status BEGIN / END, event_count, data_collections) on the topic or stream
// `<topicPrefix>.transaction`, keyed by {"id": "<xid>:<commit LSN>"}.
import type { ChangeEvent } from '../route/event.js';
import type { DomainEvent } from './domain-event.js';
import { lsnKey, parseLsn } from '../lsn.js';

/** A transaction's end, placed in the batch by the pipeline; never reaches a sink. */
export function commitMarker(last: ChangeEvent): ChangeEvent {
  return { id: commitId(last.commitLsn!), op: 'commit', lsn: last.commitLsn!, commitLsn: last.commitLsn, xid: last.xid, commitTime: last.commitTime };
}

function commitId(commitLsn: string): string {
  return `${lsnKey(parseLsn(commitLsn))}-~commit`;
}

export function isCommitMarker(event: ChangeEvent): boolean {
  return event.op === 'commit' && event.eventCount === undefined;
}

interface OpenTransaction {
  commitLsn: string;
  xid: number;
  commitTime: string | null;
  lastId: string;
  count: number;
  tables: Record<string, number>;
}

export interface TransactionEventOptions {
  /** Render as Debezium transaction metadata records on `<topicPrefix>.transaction`. */
  debeziumTopicPrefix?: string;
}

export class TransactionEvents {
  private open: OpenTransaction | null = null;

  constructor(private readonly options: TransactionEventOptions = {}) {}

  /** Adds `event` to `out`, with the begin or commit events around it; a commit marker becomes the commit event. */
  push(event: ChangeEvent, out: ChangeEvent[]): void {
    if (isCommitMarker(event)) {
      if (this.open !== null && this.open.commitLsn === event.commitLsn) out.push(this.commitEvent(this.open, event));
      this.open = null;
      return;
    }
    if (event.xid === null || event.commitLsn === null) {
      out.push(event); // a non-transactional message belongs to no transaction
      return;
    }
    // A lower id within the same transaction: a new session re-delivers it from its start.
    if (this.open === null || this.open.commitLsn !== event.commitLsn || event.id <= this.open.lastId) {
      this.open = { commitLsn: event.commitLsn, xid: event.xid, commitTime: event.commitTime, lastId: event.id, count: 0, tables: {} };
      out.push(this.beginEvent(this.open, event));
    }
    this.open.lastId = event.id;
    out.push(event);
    // A schema event is not counted: whether one is sent can differ on re-delivery (schema-event.ts), the counts must not.
    if (event.op === 'schema') return;
    this.open.count++;
    if (event.table !== undefined) {
      const table = `${event.schema}.${event.table}`;
      this.open.tables[table] = (this.open.tables[table] ?? 0) + 1;
    }
  }

  private beginEvent(tx: OpenTransaction, first: ChangeEvent): ChangeEvent {
    const event: ChangeEvent = {
      id: `${lsnKey(parseLsn(tx.commitLsn))}-.begin`, op: 'begin', lsn: first.lsn, commitLsn: tx.commitLsn, xid: tx.xid, commitTime: tx.commitTime, eventCount: null,
    };
    return this.options.debeziumTopicPrefix === undefined ? event : this.debezium(event, 'BEGIN', null);
  }

  private commitEvent(tx: OpenTransaction, marker: ChangeEvent): ChangeEvent {
    const event: ChangeEvent = {
      id: marker.id, op: 'commit', lsn: marker.lsn, commitLsn: tx.commitLsn, xid: tx.xid, commitTime: tx.commitTime, eventCount: tx.count, tables: tx.tables,
    };
    return this.options.debeziumTopicPrefix === undefined ? event : this.debezium(event, 'END', tx);
  }

  /** Debezium's transaction metadata record (provide.transaction.metadata). */
  private debezium(event: ChangeEvent, status: 'BEGIN' | 'END', tx: OpenTransaction | null): DomainEvent {
    const id = `${event.xid}:${parseLsn(event.commitLsn!)}`;
    const value = {
      status,
      id,
      event_count: tx === null ? null : tx.count,
      data_collections: tx === null ? null : Object.entries(tx.tables).map(([table, count]) => ({ data_collection: table, event_count: count })),
      ts_ms: event.commitTime ? Date.parse(event.commitTime) : Date.now(),
    };
    return {
      ...event,
      domain: {
        destination: `${this.options.debeziumTopicPrefix}.transaction`,
        key: JSON.stringify({ id }),
        value: JSON.stringify(value),
        headers: [['walrelay-op', event.op], ['walrelay-lsn', event.lsn], ['walrelay-id', event.id]],
      },
    };
  }
}
