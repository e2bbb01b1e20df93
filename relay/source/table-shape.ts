// A table's shape: its columns (name, type OID, type modifier) in order, and
// which of them form the event's key. Its version is a short hash of exactly
// that, so the same shape gives the same `schemaVersion` in every relay,
// after every restart, and in `walrelay schema` (which reads the catalog
// rather than a Relation message).
import { createHash } from 'node:crypto';

export interface ShapeColumn {
  name: string;
  typeOid: number;
  /** atttypmod: -1 when the type has no modifier (varchar(20) has 24). */
  typeMod: number;
  key: boolean;
}

/** First 12 hex digits of the SHA-256 of the shape's canonical JSON. */
export function shapeVersion(columns: readonly ShapeColumn[]): string {
  const canonical = JSON.stringify(columns.map((column) => [column.name, column.typeOid, column.typeMod, column.key]));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 12);
}
