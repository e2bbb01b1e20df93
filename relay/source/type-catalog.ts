// What walrelay knows about PostgreSQL types: the built-in ones statically,
// others (enums, domains, arrays of them, extension types) from pg_type,
// looked up once when a Relation message first uses them. Also the primary
// key of REPLICA IDENTITY FULL tables, whose Relation message flags every
// column as key.
//
// `version` changes whenever what the catalog says about some type changes,
// so that the converters built from it (values.ts) know when to rebuild.

export type TypeKind = 'base' | 'enum' | 'domain' | 'array' | 'composite' | 'range' | 'other';

export interface TypeInfo {
  oid: number;
  /** pg_namespace.nspname ('pg_catalog' for the built-ins). */
  schema: string;
  name: string;
  kind: TypeKind;
  /** Element type of an array (0 otherwise). */
  element: number;
  /** Base type of a domain (0 otherwise). */
  base: number;
  /** A domain's type modifier on its base type, e.g. numeric(8,2) (-1 or absent otherwise). */
  baseTypmod?: number;
  /** Array element delimiter (',' for all but box). */
  delimiter: string;
}

/** A `pg.Pool` or a `pg.Client` (anything with node-postgres' query). */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

/** Built-in scalar types; values.ts maps some of them specially (by OID), the others are text. */
const BUILTIN_NAMES: Record<number, string> = {
  16: 'bool', 17: 'bytea', 18: 'char', 19: 'name', 20: 'int8', 21: 'int2', 22: 'int2vector', 23: 'int4', 24: 'regproc',
  25: 'text', 26: 'oid', 27: 'tid', 28: 'xid', 29: 'cid', 30: 'oidvector', 114: 'json', 142: 'xml', 600: 'point', 601: 'lseg',
  602: 'path', 603: 'box', 604: 'polygon', 628: 'line', 650: 'cidr', 700: 'float4', 701: 'float8', 718: 'circle',
  774: 'macaddr8', 790: 'money', 829: 'macaddr', 869: 'inet', 1042: 'bpchar', 1043: 'varchar', 1082: 'date', 1083: 'time',
  1114: 'timestamp', 1184: 'timestamptz', 1186: 'interval', 1266: 'timetz', 1560: 'bit', 1562: 'varbit', 1700: 'numeric',
  2205: 'regclass', 2206: 'regtype', 2950: 'uuid', 3220: 'pg_lsn', 3614: 'tsvector', 3615: 'tsquery', 3802: 'jsonb',
  4072: 'jsonpath', 5069: 'xid8',
};

/** Built-in array types and their element types. */
const BUILTIN_ARRAYS: Record<number, number> = {
  1000: 16, 1001: 17, 1002: 18, 1003: 19, 1005: 21, 1006: 22, 1007: 23, 1008: 24, 1009: 25, 1028: 26, 1010: 27, 1011: 28,
  1012: 29, 1013: 30, 199: 114, 143: 142, 1017: 600, 1018: 601, 1019: 602, 1020: 603, 1027: 604, 629: 628, 719: 718, 1021: 700,
  1022: 701, 791: 790, 1040: 829, 775: 774, 1041: 869, 651: 650, 1014: 1042, 1015: 1043, 1182: 1082, 1183: 1083, 1115: 1114,
  1185: 1184, 1187: 1186, 1270: 1266, 1561: 1560, 1563: 1562, 1231: 1700, 2951: 2950, 3807: 3802, 3221: 3220, 271: 5069,
  1016: 20, 4073: 4072, 2210: 2205, 2211: 2206, 3643: 3614, 3645: 3615,
};

/** Built-in ranges and multiranges: their text form is passed through. */
const BUILTIN_RANGES: Record<number, string> = {
  3904: 'int4range', 3906: 'numrange', 3908: 'tsrange', 3910: 'tstzrange', 3912: 'daterange', 3926: 'int8range',
  4451: 'int4multirange', 4532: 'nummultirange', 4533: 'tsmultirange', 4534: 'tstzmultirange', 4535: 'datemultirange', 4536: 'int8multirange',
};
const BUILTIN_RANGE_ARRAYS: Record<number, number> = { 3905: 3904, 3907: 3906, 3909: 3908, 3911: 3910, 3913: 3912, 3927: 3926 };

/** OIDs below this are assigned by initdb and never change meaning. */
const FIRST_NORMAL_OID = 16384;

/**
 * Every requested type plus, recursively, the element types of arrays and
 * the base types of domains: one round trip however deep the nesting.
 * int2vector and oidvector have category 'A' too, but only true arrays have
 * array_in as input function.
 */
const TYPE_QUERY = `
  WITH RECURSIVE wanted(oid) AS (
    SELECT unnest($1::oid[])
    UNION
    SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.typelem END
    FROM pg_type t JOIN wanted w ON t.oid = w.oid
    WHERE (t.typtype = 'd' AND t.typbasetype <> 0) OR (t.typinput = 'array_in'::regproc AND t.typelem <> 0)
  )
  SELECT t.oid::int8 AS oid, t.typname, n.nspname, t.typtype, t.typelem::int8 AS typelem, t.typbasetype::int8 AS typbasetype,
         t.typtypmod, t.typdelim, t.typcategory, t.typinput = 'array_in'::regproc AS is_array
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE t.oid IN (SELECT oid FROM wanted)`;

function builtin(oid: number, name: string, kind: TypeKind, element = 0): TypeInfo {
  return { oid, schema: 'pg_catalog', name, kind, element, base: 0, delimiter: element === 603 ? ';' : ',' };
}

export class TypeCatalog {
  private readonly types = new Map<number, TypeInfo>();
  private changes = 0;

  constructor(private readonly db: Queryable) {
    for (const [oid, name] of Object.entries(BUILTIN_NAMES)) this.types.set(Number(oid), builtin(Number(oid), name, 'base'));
    for (const [oid, name] of Object.entries(BUILTIN_RANGES)) this.types.set(Number(oid), builtin(Number(oid), name, 'range'));
    for (const [oid, element] of Object.entries({ ...BUILTIN_ARRAYS, ...BUILTIN_RANGE_ARRAYS })) {
      const elementName = BUILTIN_NAMES[element] ?? BUILTIN_RANGES[element] ?? String(element);
      this.types.set(Number(oid), builtin(Number(oid), `_${elementName}`, 'array', element));
    }
  }

  /** Changes whenever a type is learnt or forgotten; converters built from an older version are stale. */
  get version(): number {
    return this.changes;
  }

  info(oid: number): TypeInfo | undefined {
    return this.types.get(oid);
  }

  /** Looks up, in one query, every type not known yet, with the element types of arrays and the base types of domains. */
  async ensure(oids: readonly number[]): Promise<void> {
    const missing = [...new Set(oids)].filter((oid) => oid !== 0 && !this.types.has(oid));
    if (missing.length === 0) return;
    const { rows } = await this.db.query(TYPE_QUERY, [missing]);
    for (const row of rows) {
      const oid = Number(row.oid);
      if (this.types.has(oid)) continue; // a built-in element or base type reached by the recursion
      const kind: TypeKind = row.typtype === 'd' ? 'domain'
        : row.is_array && Number(row.typelem) !== 0 ? 'array'
          : row.typtype === 'e' ? 'enum'
            : row.typtype === 'c' ? 'composite'
              : row.typtype === 'r' || row.typtype === 'm' ? 'range'
                : row.typtype === 'b' ? 'base' : 'other';
      this.types.set(oid, {
        oid, schema: row.nspname, name: row.typname, kind,
        element: kind === 'array' ? Number(row.typelem) : 0,
        base: kind === 'domain' ? Number(row.typbasetype) : 0,
        ...(kind === 'domain' && row.typtypmod != null ? { baseTypmod: Number(row.typtypmod) } : {}),
        delimiter: row.typdelim || ',',
      });
    }
    // A type that vanished between the Relation message and the query: its text form is all there is.
    for (const oid of missing) {
      if (!this.types.has(oid)) this.types.set(oid, { oid, schema: '', name: String(oid), kind: 'other', element: 0, base: 0, delimiter: ',' });
    }
    this.changes++;
  }

  /**
   * A Type message ('Y') names a type before a Relation message uses it. It
   * comes again after every reconnect; only a different schema or name means
   * the OID now stands for another type (dropped and recreated), and then
   * what was known about it is forgotten until the next `ensure`.
   */
  noteTypeMessage(message: { typeOid: number; schema?: string; name?: string }): void {
    const known = this.types.get(message.typeOid);
    if (!known || message.typeOid < FIRST_NORMAL_OID) return;
    if (message.schema !== undefined && message.name !== undefined && known.schema === message.schema && known.name === message.name) return;
    this.types.delete(message.typeOid);
    this.changes++;
  }

  /**
   * Primary-key columns of a table, in key order (empty when it has none).
   * Not cached: it is asked once per Relation message, which PostgreSQL sends
   * again after ALTER TABLE, when the key may have changed.
   */
  async primaryKey(relationId: number): Promise<string[]> {
    const rows = (await this.db.query(`
      SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = $1 AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)`, [relationId])).rows;
    return rows.map((row) => row.attname as string);
  }
}
