// The shapes of the published tables as the live catalog describes them, for
// `walrelay schema`: the columns pgoutput sends (not dropped, not generated,
// only those of the publication's column list), their types, nullability and
// the event's key, chosen by the same rule as relation.ts. The version is
// computed from the same inputs as a Relation message's (table-shape.ts), so
// it equals the `schemaVersion` of the events while the table keeps its shape.
import type pg from 'pg';
import type { Config } from '../../config/schema.js';
import { configError, WalrelayError } from '../errors.js';
import { shapeVersion, type ShapeColumn } from '../source/table-shape.js';
import { TypeCatalog } from '../source/type-catalog.js';
import { withSourceClient } from '../setup/setup.js';
import { step } from '../setup/pg-errors.js';

export interface PublishedColumn extends ShapeColumn {
  /** format_type: "integer", "character varying(20)", "mood[]". */
  sqlType: string;
  nullable: boolean;
}

export interface PublishedShape {
  schema: string;
  table: string;
  version: string;
  columns: PublishedColumn[];
}

interface PublishedTableRow {
  schemaname: string;
  tablename: string;
  /** The publication's column list; null when it publishes every column (or before PostgreSQL 15). */
  attnames: string[] | null;
  oid: string;
  relreplident: string;
}

// attnames (the publication's column list) exists from PostgreSQL 15; to_jsonb reads it where it exists.
const PUBLISHED_TABLES = `
  SELECT p.schemaname, p.tablename, to_jsonb(p) -> 'attnames' AS attnames, c.oid::int8 AS oid, c.relreplident
  FROM pg_publication_tables p
  JOIN pg_namespace n ON n.nspname = p.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
  WHERE p.pubname = $1 ORDER BY p.schemaname, p.tablename`;

const COLUMNS = `
  SELECT attname, atttypid::int8 AS typeoid, atttypmod, attnotnull, format_type(atttypid, atttypmod) AS sqltype
  FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`;

const INDEX_COLUMNS = `
  SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
  WHERE i.indrelid = $1 AND (CASE WHEN $2 THEN i.indisprimary ELSE i.indisreplident END)
  ORDER BY array_position(i.indkey::int2[], a.attnum)`;

/** The shapes of the published tables (all, or those named), and a type catalog that knows their column types. */
export async function readPublishedShapes(config: Config, only: readonly string[]): Promise<{ shapes: PublishedShape[]; catalog: TypeCatalog }> {
  return withSourceClient(config, async (client) => {
    const publication = config.source.publication;
    const exists = await step('reading the publication', () => client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication]));
    if (exists.rowCount === 0) {
      throw new WalrelayError('PUBLICATION_MISSING', `publication ${publication} does not exist`, { hint: 'run walrelay setup -c FILE first (or set source.publication)' });
    }
    const tables = (await step('listing the published tables', () => client.query<PublishedTableRow>(PUBLISHED_TABLES, [publication]))).rows;
    const names = tables.map((row) => `${row.schemaname}.${row.tablename}`);
    const unknown = only.filter((name) => !names.includes(name));
    if (unknown.length > 0) throw configError(`tables: ${unknown.join(', ')} not in publication ${publication} (published: ${names.join(', ') || 'none'})`, 'name published tables as schema.table, or none for all');
    const shapes: PublishedShape[] = [];
    for (const row of tables) {
      if (only.length > 0 && !only.includes(`${row.schemaname}.${row.tablename}`)) continue;
      shapes.push(await readShape(client, row));
    }
    const catalog = new TypeCatalog(client);
    await step('reading the column types', () => catalog.ensure(shapes.flatMap((shape) => shape.columns.map((column) => column.typeOid))));
    return { shapes, catalog };
  });
}

async function readShape(client: pg.Client, table: PublishedTableRow): Promise<PublishedShape> {
  const published = Array.isArray(table.attnames) ? table.attnames : null;
  const rows = (await step(`reading the columns of ${table.schemaname}.${table.tablename}`, () => client.query(COLUMNS, [table.oid]))).rows
    .filter((row) => published === null || published.includes(row.attname));
  const names = rows.map((row) => row.attname as string);
  const indexColumns = async (primary: boolean) => (await client.query(INDEX_COLUMNS, [table.oid, primary])).rows.map((row) => row.attname as string);
  // relation.ts: the replica identity's columns, the primary key for FULL (every column without one).
  const primary = await indexColumns(true);
  const key = table.relreplident === 'f' ? (primary.length > 0 ? primary : names)
    : table.relreplident === 'i' ? await indexColumns(false)
      : table.relreplident === 'n' ? [] : primary;
  const columns: PublishedColumn[] = rows.map((row) => ({
    name: row.attname,
    typeOid: Number(row.typeoid),
    typeMod: Number(row.atttypmod),
    key: key.includes(row.attname),
    sqlType: row.sqltype,
    nullable: !row.attnotnull,
  }));
  return { schema: table.schemaname, table: table.tablename, version: shapeVersion(columns.map(({ name, typeOid, typeMod, key }) => ({ name, typeOid, typeMod, key }))), columns };
}
