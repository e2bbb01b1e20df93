// Turns pgoutput messages into change events: keeps the relation cache and
// the current transaction (Begin carries the commit LSN, xid and time that
// every event of the transaction is stamped with, so events can be sent
// before the Commit arrives and memory stays bounded on huge transactions).
//
// Event ids sort, as plain strings, strictly in delivery order. PostgreSQL
// delivers a transaction when it decodes its commit record, and a
// non-transactional message when it decodes the message's record, so the
// order of delivery is the order of those records in the WAL:
// - an event of a transaction: the commit record's LSN (the final LSN of
//   Begin) in 16 hex digits, '-', its position in the transaction in 10
//   digits ("00000000016B37D8-0000000003");
// - a non-transactional message: the LSN where its record ends, 16 hex digits
//   and nothing else ("00000000016B37D8"). The next record starts there or
//   later, and a string sorts before every longer string it begins, so a
//   transaction whose commit record directly follows the message still sorts
//   after it.
// Both come from the WAL alone, so a re-delivered event has the same id.
import { DECODE_ERROR_HINT, type PgoutputMessage, type RawRowMessage } from '../source/pgoutput.js';
import { EventBytesWriter } from './event-bytes.js';
import { eventId } from './event-id.js';
import { RelationDecoder } from '../source/relation.js';
import type { TypeCatalog } from '../source/type-catalog.js';
import { RowChange, setOrigin, type ChangeEvent, type EventOrigin, type Op } from './event.js';
import type { Tuple } from '../source/pgoutput.js';
import { type Lsn, formatLsn, lsnKey, parseLsn } from '../lsn.js';
import { formatPgTimestamp } from '../source/datetime.js';
import { WalrelayError } from '../errors.js';
import { BACKFILL_PREFIX } from '../backfill/backfill.js';
import { readBackfillChunk } from './backfill-chunk.js';
import { GAP_PREFIX, gapEvent } from './gap.js';
import { jsonConverterFor } from '../source/values.js';
import { shapeVersion } from '../source/table-shape.js';
import { type AnnouncedShapes, schemaEvent, schemaEventId } from './schema-event.js';
import { isControlKeyTable, openControlMessage } from './control-message.js';

/** How walrelay's own control messages are told from forgeries (control-message.ts). */
export interface ControlMessages {
  key: Buffer;
  /** A message with a control prefix whose signature does not verify: dropped, reported here. */
  rejected(prefix: string, xid: number, lsn: string): void;
}

export interface AssemblerOutput {
  event(event: ChangeEvent): void;
  /** Every event of the transaction ending at `endLsn` has been emitted. */
  commit(endLsn: Lsn): void;
}

interface OpenTransaction {
  idPrefix: string;
  commitLsn: string;
  xid: number;
  commitTime: string;
  seq: number;
}

// ignoreBOM: a message's leading U+FEFF is content, kept as sent (the decoder would drop it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class TransactionAssembler {
  private readonly relations = new Map<number, RelationDecoder>();
  private tx: OpenTransaction | null = null;
  /** Relations whose shape differs from the one last announced: their next change is preceded by a schema event (only with `shapes`, when a sink takes schema events). */
  private readonly unannounced = new Set<RelationDecoder>();
  /** The last commit this run saw (Debezium's source.sequence and a non-transactional message's time). */
  private previousCommit: Pick<EventOrigin, 'previousCommitEnd' | 'previousCommitTime'> = { previousCommitEnd: null, previousCommitTime: null };

  /** Relations whose changes never reach a sink (walrelay's control key table, published under FOR ALL TABLES). */
  private readonly hidden = new Set<RelationDecoder>();

  /** Writes row changes' JSON as bytes (applyRow); created on first use. */
  private bytes: EventBytesWriter | null = null;

  /**
   * `keepOrigins`: attach each event's origin (a sink renders Debezium, which needs PostgreSQL's text; event.ts).
   * Without `control` (unit tests of the message formats only) control
   * messages are taken unsigned; the relay always passes the key.
   */
  constructor(private readonly catalog: TypeCatalog, private readonly output: AssemblerOutput, private readonly shapes?: AnnouncedShapes, private readonly control?: ControlMessages, private readonly keepOrigins = false) {}

  get inTransaction(): boolean {
    return this.tx !== null;
  }

  /** Applies one message; returns a promise only when it must wait (type lookup for a new relation). */
  apply(message: PgoutputMessage, walStart: Lsn): void | Promise<void> {
    switch (message.tag) {
      case 'begin':
        this.tx = {
          idPrefix: lsnKey(message.finalLsn) + '-',
          commitLsn: formatLsn(message.finalLsn),
          xid: message.xid,
          commitTime: formatPgTimestamp(message.commitTime),
          seq: 0,
        };
        return;
      case 'commit':
        this.previousCommit = { previousCommitEnd: formatLsn(message.endLsn), previousCommitTime: this.tx?.commitTime ?? null };
        this.tx = null;
        this.output.commit(message.endLsn);
        return;
      case 'relation': {
        const oids = message.columns.map((column) => column.typeOid);
        const primaryKey = message.replicaIdentity === 'f' ? this.catalog.primaryKey(message.relationId) : Promise.resolve([]);
        // Nullability and defaults: only Debezium's Kafka Connect schemas need them, and only sinks rendering Debezium keep origins.
        const details = this.keepOrigins ? this.catalog.columnDetails(message.relationId) : Promise.resolve(undefined);
        return Promise.all([this.catalog.ensure(oids), primaryKey, details]).then(([, key, columns]) => {
          const relation = new RelationDecoder(message, this.catalog, key, columns);
          const previous = this.relations.get(message.relationId);
          if (previous) { this.unannounced.delete(previous); this.hidden.delete(previous); }
          this.relations.set(message.relationId, relation);
          if (isControlKeyTable(relation.schema, relation.table)) { this.hidden.add(relation); return; }
          if (this.shapes && this.shapes.announced(message.relationId) !== relation.schemaVersion) this.unannounced.add(relation);
        });
      }
      case 'type':
        this.catalog.noteTypeMessage(message);
        return;
      case 'origin':
        return;
      case 'insert': {
        const relation = this.relation(message.relationId);
        const row = relation.encodeRow(message.newTuple);
        this.emitRowChange('insert', relation, walStart, relation.encodeKey(message.newTuple), row.json, null, row.unchanged, message.newTuple, null);
        return;
      }
      case 'update': {
        const relation = this.relation(message.relationId);
        // An unchanged TOASTed value is not sent in the new row, but the old row (FULL) or old key may carry it.
        const newTuple = relation.withKnownValues(message.newTuple, message.oldTuple, message.keyTuple);
        const row = relation.encodeRow(newTuple);
        const old = message.oldTuple ? relation.encodeRow(message.oldTuple).json : message.keyTuple ? relation.encodeKey(message.keyTuple) : null;
        this.emitRowChange('update', relation, walStart, relation.encodeKey(newTuple), row.json, old, row.unchanged, newTuple, message.oldTuple ?? message.keyTuple ?? null, !message.oldTuple);
        return;
      }
      case 'delete': {
        const relation = this.relation(message.relationId);
        const oldTuple = message.oldTuple ?? message.keyTuple;
        const key = oldTuple ? relation.encodeKey(oldTuple) : null;
        const old = message.oldTuple ? relation.encodeRow(message.oldTuple).json : key;
        this.emitRowChange('delete', relation, walStart, key, null, old, undefined, null, oldTuple ?? null, !message.oldTuple);
        return;
      }
      case 'truncate':
        for (const relationId of message.relationIds) {
          const relation = this.relation(relationId);
          if (this.hidden.has(relation)) continue;
          const event = this.stamp('truncate', walStart);
          event.schema = relation.schema;
          event.table = relation.table;
          event.key = null;
          event.new = null;
          event.old = null;
          event.cascade = message.cascade;
          event.restartIdentity = message.restartIdentity;
          const ordered = reorder(event);
          // The columns: Kafka Connect schemas describe a truncate's (empty) rows too.
          if (this.keepOrigins) setOrigin(ordered, { columns: relation.columnInfo, catalog: this.catalog, ...this.previousCommit });
          this.output.event(ordered);
        }
        return;
      case 'message': {
        if (message.transactional && this.tx && (message.prefix === BACKFILL_PREFIX || message.prefix === GAP_PREFIX)) {
          const body = this.control ? openControlMessage(this.control.key, message.prefix, this.tx.xid, message.content) : message.content;
          if (body === null) {
            this.control!.rejected(message.prefix, this.tx.xid, formatLsn(walStart));
            return;
          }
          if (message.prefix === BACKFILL_PREFIX) return this.applyBackfill(body, walStart);
          if (this.applyGap(body, walStart)) return;
        }
        const event = message.transactional && this.tx ? this.stamp('message', walStart) : this.nonTransactional(message.lsn);
        event.transactional = message.transactional;
        event.prefix = message.prefix;
        try {
          event.content = utf8.decode(message.content);
          event.contentEncoding = 'utf8';
        } catch {
          event.content = Buffer.from(message.content).toString('base64');
          event.contentEncoding = 'base64';
        }
        // Debezium counts a non-transactional message as a commit at its own LSN (source.sequence).
        if (!message.transactional) this.previousCommit = { ...this.previousCommit, previousCommitEnd: event.lsn };
        if (this.keepOrigins) setOrigin(event, { ...this.previousCommit });
        this.output.event(event);
        return;
      }
    }
  }

  /**
   * An insert, update or delete read as spans (parseRowMessage): its JSON is
   * written as bytes straight from the message (event-bytes.ts). Not for
   * `keepOrigins` (Debezium needs PostgreSQL's text values: apply() them).
   */
  applyRow(message: RawRowMessage, walStart: Lsn): void {
    const relation = this.relation(message.relationId);
    const tx = this.requireTx();
    if (this.hidden.size > 0 && this.hidden.has(relation)) return;
    if (this.unannounced.size > 0 && this.unannounced.has(relation)) this.announceShape(relation, tx, walStart);
    const change = (this.bytes ??= new EventBytesWriter()).rowChange(message, relation, tx, tx.seq++, formatLsn(walStart));
    change.columnTypes = relation.columnTypes;
    this.output.event(change);
  }

  /**
   * A chunk written by `walrelay backfill` becomes one "read" event per row, at
   * the chunk's commit position, its values converted by the same JSON
   * converters as streamed rows.
   */
  private applyBackfill(content: Buffer, walStart: Lsn): Promise<void> {
    const chunk = readBackfillChunk(content);
    return this.catalog.ensure(chunk.types).then(() => {
      const tx = this.requireTx();
      const convert = chunk.types.map((oid) => jsonConverterFor(oid, this.catalog));
      const names = chunk.columns.map((column) => `${JSON.stringify(column)}:`);
      const keyIndexes = chunk.key.map((column) => chunk.columns.indexOf(column)).filter((index) => index >= 0);
      const qualifiedJson = `"schema":${JSON.stringify(chunk.schema)},"table":${JSON.stringify(chunk.table)}`;
      const lsn = formatLsn(walStart);
      const version = chunk.typeMods ? shapeVersion(chunk.columns.map((name, i) => ({ name, typeOid: chunk.types[i], typeMod: chunk.typeMods![i], key: chunk.key.includes(name) }))) : undefined;
      for (const values of chunk.rows) {
        const fragments = values.map((text, i) => (text === null ? 'null' : convert[i](text)));
        const row = '{' + fragments.map((fragment, i) => names[i] + fragment).join(',') + '}';
        const key = keyIndexes.length > 0 ? '{' + keyIndexes.map((i) => names[i] + fragments[i]).join(',') + '}' : null;
        const id = eventId(tx.idPrefix, tx.seq++);
        const event: ChangeEvent = new RowChange(id, 'read', chunk.schema, chunk.table, qualifiedJson, key, row, null, undefined, lsn, tx.commitLsn, tx.xid, tx.commitTime, version);
        if (chunk.target) event.target = chunk.target; // backfill --sink (sink-stages.ts)
        this.output.event(event);
      }
    });
  }

  /** The gap message written by slot recovery becomes op "gap"; false when the content is not one. */
  private applyGap(content: Buffer, walStart: Lsn): boolean {
    let text: string;
    try {
      text = utf8.decode(content);
    } catch {
      return false;
    }
    const tx = this.requireTx();
    const event = gapEvent(text, { id: eventId(tx.idPrefix, tx.seq), lsn: formatLsn(walStart), commitLsn: tx.commitLsn, xid: tx.xid, commitTime: tx.commitTime });
    if (!event) return false;
    tx.seq++;
    this.output.event(event);
    return true;
  }

  private relation(relationId: number): RelationDecoder {
    const relation = this.relations.get(relationId);
    if (!relation) {
      throw new WalrelayError('PGOUTPUT_UNKNOWN_RELATION', `a change refers to relation ${relationId}, which no Relation message described`, { hint: DECODE_ERROR_HINT });
    }
    return relation;
  }

  private emitRowChange(
    op: Op, relation: RelationDecoder, walStart: Lsn, key: string | null, row: string | null, old: string | null, unchanged: string[] | undefined,
    newTuple: Tuple | null, oldTuple: Tuple | null, oldIsKey = false,
  ): void {
    const tx = this.requireTx();
    if (this.hidden.size > 0 && this.hidden.has(relation)) return;
    if (this.unannounced.size > 0 && this.unannounced.has(relation)) this.announceShape(relation, tx, walStart);
    const id = eventId(tx.idPrefix, tx.seq++);
    const change = new RowChange(id, op, relation.schema, relation.table, relation.qualifiedJson, key, row, old, unchanged, formatLsn(walStart), tx.commitLsn, tx.xid, tx.commitTime, relation.schemaVersion);
    change.columnTypes = relation.columnTypes;
    // Only when a debezium sink needs PostgreSQL's text: no object per event otherwise.
    if (this.keepOrigins) setOrigin(change, { columns: relation.columnInfo, catalog: this.catalog, newTuple, oldTuple, oldIsKey, ...this.previousCommit });
    this.output.event(change);
  }

  /** The schema event before the first change of a new shape (schema-event.ts); it takes no position, so other ids never depend on it. */
  private announceShape(relation: RelationDecoder, tx: OpenTransaction, walStart: Lsn): void {
    this.unannounced.delete(relation);
    this.shapes!.announce(relation.relationId, relation.schemaVersion, parseLsn(tx.commitLsn));
    const stamp = { id: schemaEventId(tx.idPrefix, tx.seq), lsn: formatLsn(walStart), commitLsn: tx.commitLsn, xid: tx.xid, commitTime: tx.commitTime };
    this.output.event(schemaEvent(relation, this.catalog, stamp));
  }

  private stamp(op: Op, walStart: Lsn): ChangeEvent {
    const tx = this.requireTx();
    return {
      id: eventId(tx.idPrefix, tx.seq++),
      op,
      lsn: formatLsn(walStart),
      commitLsn: tx.commitLsn,
      xid: tx.xid,
      commitTime: tx.commitTime,
    };
  }

  /** A non-transactional message belongs to no transaction: the end of its record identifies it (see the rule above). */
  private nonTransactional(lsn: Lsn): ChangeEvent {
    return { id: lsnKey(lsn), op: 'message', lsn: formatLsn(lsn), commitLsn: null, xid: null, commitTime: null };
  }

  private requireTx(): OpenTransaction {
    if (!this.tx) throw new WalrelayError('PGOUTPUT_OUT_OF_TRANSACTION', 'a row change arrived outside BEGIN/COMMIT', { hint: DECODE_ERROR_HINT });
    return this.tx;
  }
}

/** Keeps the contract's field order for truncate events built field by field. */
function reorder(event: ChangeEvent): ChangeEvent {
  const { id, op, schema, table, key, old, cascade, restartIdentity, lsn, commitLsn, xid, commitTime } = event;
  return { id, op, schema, table, key, new: null, old, cascade, restartIdentity, lsn, commitLsn, xid, commitTime };
}
