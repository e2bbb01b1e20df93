// Schema events: when a table's shape changes, the change that first uses the
// new shape is preceded by an `op: "schema"` event listing its columns (sinks
// with `schemaEvents: true` receive it; sink-route.ts drops it for the rest).
//
// PostgreSQL sends a Relation message before a table's first change in every
// replication session and after every ALTER, so a Relation message alone says
// nothing: walrelay compares its shape with the one it last announced for
// that table (kept for the life of the process, across reconnects). After a
// process restart nothing was announced yet, so the first change of each
// table is preceded by a schema event again.
//
// The schema event's id must sort just before the change it precedes without
// taking a position in the transaction: whether it exists can differ between
// a first delivery and a re-delivery after a restart, and the ids of the
// changes must not. So it is the id of the position before, followed by
// ".schema" ("…-0000000002.schema" sorts after "…-0000000002" and before
// "…-0000000003"), and before the transaction's first position the commit
// LSN, "-" and ".schema" ("00000000016B37D8-.schema": "." sorts before every
// digit, and after the "-.begin" of a transaction event).
import type { RelationDecoder } from '../source/relation.js';
import type { TypeCatalog } from '../source/type-catalog.js';
import type { ChangeEvent, SchemaColumn } from './event.js';
import type { Lsn } from '../lsn.js';

/**
 * The shape last announced per relation OID; one per process, shared by its
 * replication sessions. An announcement made in a transaction that was not
 * confirmed may not have reached the sinks, and PostgreSQL sends that
 * transaction again in the next session: `forgetUnconfirmed` drops it there,
 * so the re-sent transaction carries the schema event again, with the same id.
 */
export class AnnouncedShapes {
  private readonly versions = new Map<number, { version: string; commitLsn: Lsn }>();

  announced(relationId: number): string | undefined {
    return this.versions.get(relationId)?.version;
  }

  announce(relationId: number, version: string, commitLsn: Lsn): void {
    this.versions.set(relationId, { version, commitLsn });
  }

  /** A new session starts after `confirmed` (a commit's end LSN): forget what transactions at or after it announced. */
  forgetUnconfirmed(confirmed: Lsn): void {
    for (const [relationId, entry] of this.versions) if (entry.commitLsn >= confirmed) this.versions.delete(relationId);
  }
}

/** The id of a schema event placed before the event at `position` of a transaction whose ids start with `idPrefix`. */
export function schemaEventId(idPrefix: string, position: number): string {
  return idPrefix + (position === 0 ? '' : String(position - 1).padStart(10, '0')) + '.schema';
}

export interface TransactionStamp {
  id: string;
  lsn: string;
  commitLsn: string;
  xid: number;
  commitTime: string;
}

export function schemaEvent(relation: RelationDecoder, catalog: TypeCatalog, stamp: TransactionStamp): ChangeEvent {
  const columns: SchemaColumn[] = relation.shape.map((column) => ({
    name: column.name,
    type: typeName(catalog, column.typeOid),
    typeOid: column.typeOid,
    typeMod: column.typeMod,
    key: column.key,
  }));
  return {
    id: stamp.id,
    op: 'schema',
    schema: relation.schema,
    table: relation.table,
    schemaVersion: relation.schemaVersion,
    columns,
    lsn: stamp.lsn,
    commitLsn: stamp.commitLsn,
    xid: stamp.xid,
    commitTime: stamp.commitTime,
  };
}

function typeName(catalog: TypeCatalog, oid: number): string {
  const info = catalog.info(oid);
  if (!info) return String(oid);
  return info.schema === 'pg_catalog' || info.schema === '' ? info.name : `${info.schema}.${info.name}`;
}
