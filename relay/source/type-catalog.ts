// What walrelay knows about PostgreSQL types: the built-in ones statically,
// others (enums, domains, arrays of them, extension types) from pg_type.
// Also the primary key of REPLICA IDENTITY FULL tables, whose Relation
// message flags every column as key.
//
// A change must decode by the types its table had when it was written, but
// walrelay may process it long after (a lagging relay is normal), when later
// DDL has re-typed the column and dropped the type. pg_type only shows the
// present, so (README "Types and later DDL"):
// - what is learned is kept for the life of the process (a type's OID never
//   changes meaning while it exists): the column types of the published
//   tables when a session starts, and every type a Relation message uses;
// - Type messages are PostgreSQL's own record of the past: it writes them with
//   the catalog as it was when the change was written, and for a domain they
//   name the base type. A type that pg_type no longer has is decoded by that
//   name (learnDropped): a built-in base type exactly, other types as text,
//   an array as today's array of that name if there is one, else as text
//   with a TYPE_UNKNOWN warning.
//
// `version` changes whenever types are learnt, so that the converters built
// from it (values.ts) know when to rebuild.
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
  /** An enum's labels in sort order (Debezium's io.debezium.data.Enum "allowed" parameter). */
  labels?: string[];
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
    CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END AS labels,
         t.typtypmod, t.typdelim, t.typcategory, t.typinput = 'array_in'::regproc AS is_array
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE t.oid IN (SELECT oid FROM wanted)`;

/** Every column type of the tables of a publication, to learn them while they exist. */
const PUBLISHED_TYPES_QUERY = `
  SELECT DISTINCT a.atttypid::int8 AS oid
  FROM pg_publication_tables p
  JOIN pg_namespace n ON n.nspname = p.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
  JOIN pg_attribute a ON a.attrelid = c.oid
  WHERE p.pubname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid >= ${FIRST_NORMAL_OID}`;

/** Today's OID of each schema-qualified type name (null when there is none). */
const TYPES_BY_NAME_QUERY = `
  SELECT to_regtype(format('%I.%I', n.schema, n.name))::oid::int8 AS oid
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS n(schema, name, position) ORDER BY n.position`;

/** What a Type message said of an OID: its schema and name, or for a domain its base type's. */
interface TypeName {
  schema: string;
  name: string;
}

/** Something worth the operator's attention, with a stable code in the message. */
export type CatalogWarning = (message: string, details: Record<string, unknown>) => void;

function builtin(oid: number, name: string, kind: TypeKind, element = 0): TypeInfo {
  return { oid, schema: 'pg_catalog', name, kind, element, base: 0, delimiter: element === 603 ? ';' : ',' };
}

const BUILTIN_BY_NAME = new Map<string, number>();

export class TypeCatalog {
  private readonly types = new Map<number, TypeInfo>();
  /** The latest Type message for each OID. */
  private readonly typeMessages = new Map<number, TypeName>();
  private changes = 0;

  constructor(private readonly db: Queryable, private readonly warn: CatalogWarning = () => undefined) {
    for (const [oid, name] of Object.entries(BUILTIN_NAMES)) this.types.set(Number(oid), builtin(Number(oid), name, 'base'));
    for (const [oid, name] of Object.entries(BUILTIN_RANGES)) this.types.set(Number(oid), builtin(Number(oid), name, 'range'));
    for (const [oid, element] of Object.entries({ ...BUILTIN_ARRAYS, ...BUILTIN_RANGE_ARRAYS })) {
      const elementName = BUILTIN_NAMES[element] ?? BUILTIN_RANGES[element] ?? String(element);
      this.types.set(Number(oid), builtin(Number(oid), `_${elementName}`, 'array', element));
    }
    if (BUILTIN_BY_NAME.size === 0) for (const info of this.types.values()) BUILTIN_BY_NAME.set(info.name, info.oid);
  }

  /** Changes whenever types are learnt; converters built from an older version may lack them. */
  get version(): number {
    return this.changes;
  }

  info(oid: number): TypeInfo | undefined {
    return this.types.get(oid);
  }

  /** A type described elsewhere (an edge learns the types of the feed's entries from the entries themselves). */
  remember(info: TypeInfo): void {
    if (this.types.has(info.oid)) return;
    this.types.set(info.oid, info);
    this.changes++;
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
        ...(kind === 'enum' && Array.isArray(row.labels) ? { labels: row.labels as string[] } : {}),
      });
    }
    const dropped = missing.filter((oid) => !this.types.has(oid));
    if (dropped.length > 0) await this.learnDropped(dropped);
    this.changes++;
  }

  /** Learns the column types of the published tables while they exist, so that a later DROP TYPE cannot hide them. */
  async learnPublished(publication: string): Promise<void> {
    const { rows } = await this.db.query(PUBLISHED_TYPES_QUERY, [publication]);
    await this.ensure(rows.map((row) => Number(row.oid)));
  }

  /**
   * Types a Relation message uses that pg_type no longer has (dropped before
   * walrelay learned them), decoded by what their Type message named. It
   * never names a domain (PostgreSQL names a domain's base type instead), so:
   * - a built-in name: the type was a domain over that built-in, exactly;
   * - any other name not starting with '_' (enum, composite, range, an
   *   extension's base type): text, exactly its mapping;
   * - '_name', the way PostgreSQL names array types: an array of something
   *   dropped. If an array type of that name exists today (the type was
   *   created again), it is decoded as that; otherwise as text.
   */
  private async learnDropped(oids: number[]): Promise<void> {
    const arrays: number[] = [];
    for (const oid of oids) {
      const named = this.typeMessages.get(oid);
      const builtinOid = named?.schema === 'pg_catalog' ? BUILTIN_BY_NAME.get(named.name) : undefined;
      if (named && builtinOid !== undefined) this.types.set(oid, alias(oid, named, builtinOid));
      else if (named?.name.startsWith('_')) arrays.push(oid);
      else this.learnAsText(oid, named);
    }
    if (arrays.length === 0) return;
    const names = arrays.map((oid) => this.typeMessages.get(oid)!);
    const { rows } = await this.db.query(TYPES_BY_NAME_QUERY, [names.map((n) => n.schema), names.map((n) => n.name)]);
    const today = rows.map((row) => (row.oid === null || row.oid === undefined ? 0 : Number(row.oid)));
    await this.ensure(today.filter((oid) => oid !== 0 && !this.types.has(oid)));
    arrays.forEach((oid, i) => {
      if (today[i] !== 0 && today[i] !== oid && this.types.get(today[i])?.kind === 'array') {
        this.types.set(oid, alias(oid, names[i], today[i]));
        this.warn(`TYPE_REPLACED: type ${qualified(names[i])} (OID ${oid}) was dropped before walrelay learned it; its values are decoded as today's ${qualified(names[i])} (OID ${today[i]})`,
          { code: 'TYPE_REPLACED', oid, type: qualified(names[i]) });
      } else {
        this.learnAsText(oid, names[i]);
      }
    });
  }

  /**
   * A dropped type nothing is known of but its name: text. That is its exact
   * mapping unless it was an array, which then arrives as one string: say so.
   */
  private learnAsText(oid: number, named: TypeName | undefined): void {
    this.types.set(oid, { oid, schema: named?.schema ?? '', name: named?.name ?? String(oid), kind: 'other', element: 0, base: 0, delimiter: ',' });
    if (named && !named.name.startsWith('_')) return;
    const type = named ? `${qualified(named)} (OID ${oid})` : `OID ${oid}`;
    this.warn(`TYPE_UNKNOWN: type ${type} was dropped before walrelay learned it, and PostgreSQL keeps no record of what it was; its values are passed as PostgreSQL's text form (an array as one string)`,
      { code: 'TYPE_UNKNOWN', oid, type: named ? qualified(named) : null,
        hint: 'keep walrelay running across migrations that drop types (it learns the published tables\' types when it starts), or backfill the table' });
  }

  /**
   * A Type message ('Y') precedes every Relation message that uses a
   * non-built-in type. PostgreSQL writes it with the catalog as it was when
   * the change was written: the name is kept for types dropped since.
   * What was learned of the OID stays (an OID keeps its meaning while the
   * type exists; a domain's Type message names its base type).
   */
  noteTypeMessage(message: { typeOid: number; schema: string; name: string }): void {
    this.typeMessages.set(message.typeOid, { schema: message.schema, name: message.name });
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

  /**
   * Nullability and default of each column of a table, by name, as JDBC's
   * DatabaseMetaData.getColumns reports them to Debezium (a NOT NULL domain
   * makes its columns NOT NULL). Asked once per Relation message, like the
   * primary key: the catalog as it is when walrelay reads the change.
   */
  async columnDetails(relationId: number): Promise<Map<string, ColumnDetails>> {
    const rows = (await this.db.query(`
      SELECT a.attname, a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) AS notnull, pg_get_expr(d.adbin, d.adrelid) AS def
      FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, [relationId])).rows;
    return new Map(rows.map((row) => [row.attname as string, { notNull: row.notnull === true, defaultExpression: (row.def as string | null) ?? null }]));
  }
}

/** A column's nullability and default as the catalog has them now (for Kafka Connect schemas: sinks/debezium/connect-schema.ts). */
export interface ColumnDetails {
  notNull: boolean;
  /** pg_get_expr of the column's default ("'x'::text", "now()", "nextval(…)"), null without one. */
  defaultExpression: string | null;
}

function qualified(name: TypeName): string {
  return `${name.schema}.${name.name}`;
}

/** A dropped type decoded as another: a domain over it, in values.ts terms. */
function alias(oid: number, named: TypeName, target: number): TypeInfo {
  return { oid, schema: named.schema, name: named.name, kind: 'domain', element: 0, base: target, delimiter: ',' };
}
