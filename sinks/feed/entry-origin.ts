// The part of a feed entry that lets an edge render format: debezium as the
// relay does (feed sink `debeziumOrigins`, docs/edges.md): the event's origin
// (PostgreSQL's text values, the columns, the previous commit) with the
// description of every non-built-in type its columns use. An edge has no
// database to ask, so each entry carries them; the edge interns columns by
// their text, so that a table's rendering is built once, not per event.
import { UNCHANGED, type Tuple } from '../../relay/source/pgoutput.js';
import { TypeCatalog, type TypeInfo } from '../../relay/source/type-catalog.js';
import type { ColumnInfo, EventOrigin } from '../../relay/route/event.js';

interface OriginJson {
  /** Columns, types of those not built in, the new and old tuples (0: unchanged TOASTed value), old is the key, previous commit. */
  c?: readonly ColumnInfo[];
  t?: TypeInfo[];
  n?: (string | null | 0)[] | null;
  o?: (string | null | 0)[] | null;
  k?: boolean;
  /** The source database (Debezium's source.db). */
  d?: string;
  e: string | null;
  m: string | null;
}

/** The origin as one line of JSON. */
export function encodeOrigin(origin: EventOrigin, database: string | undefined): string {
  const json: OriginJson = { e: origin.previousCommitEnd, m: origin.previousCommitTime };
  if (database !== undefined) json.d = database;
  if (origin.columns) {
    json.c = origin.columns;
    if (origin.catalog) json.t = typesUsed(origin.columns, origin.catalog);
  }
  if (origin.newTuple !== undefined) json.n = origin.newTuple && encodeTuple(origin.newTuple);
  if (origin.oldTuple !== undefined) json.o = origin.oldTuple && encodeTuple(origin.oldTuple);
  if (origin.oldIsKey !== undefined) json.k = origin.oldIsKey;
  return JSON.stringify(json);
}

/** An edge's side: origins decoded against one catalog of every type the feed described. */
export class OriginDecoder {
  private readonly catalog = new TypeCatalog({ query: () => Promise.reject(new Error('an edge has no database: types come with the feed\'s entries')) });
  private readonly columns = new Map<string, readonly ColumnInfo[]>();

  decode(line: string): EventOrigin {
    const json = JSON.parse(line) as OriginJson;
    const origin: EventOrigin = { previousCommitEnd: json.e, previousCommitTime: json.m };
    if (json.d !== undefined) origin.database = json.d;
    if (json.c) {
      for (const info of json.t ?? []) this.catalog.remember(info);
      const key = JSON.stringify(json.c);
      let columns = this.columns.get(key);
      if (!columns) this.columns.set(key, (columns = json.c));
      origin.columns = columns;
      origin.catalog = this.catalog;
    }
    if (json.n !== undefined) origin.newTuple = json.n && decodeTuple(json.n);
    if (json.o !== undefined) origin.oldTuple = json.o && decodeTuple(json.o);
    if (json.k !== undefined) origin.oldIsKey = json.k;
    return origin;
  }
}

/** The catalog's descriptions of the columns' types that a fresh catalog (built-ins only) lacks, with their element and base types. */
function typesUsed(columns: readonly ColumnInfo[], catalog: TypeCatalog): TypeInfo[] {
  const out = new Map<number, TypeInfo>();
  const visit = (oid: number): void => {
    if (oid === 0 || out.has(oid) || BUILT_IN.info(oid)) return;
    const info = catalog.info(oid);
    if (!info) return;
    out.set(oid, info);
    visit(info.element);
    visit(info.base);
  };
  for (const column of columns) visit(column.typeOid);
  return [...out.values()];
}

const BUILT_IN = new TypeCatalog({ query: () => Promise.reject(new Error('built-in types only')) });

const encodeTuple = (tuple: Tuple): (string | null | 0)[] => tuple.map((value) => (value === UNCHANGED ? 0 : value));
const decodeTuple = (values: (string | null | 0)[]): Tuple => values.map((value) => (value === 0 ? UNCHANGED : value));
