// The corpus of the differential test: every common type with its edge
// values, arrays, domains, enums, composites and ranges, every replica
// identity, partitions, DDL between changes, savepoints, rolled-back
// transactions, logical messages, truncates and a 50,000-row transaction.
// SCHEMA runs before the slots exist; each CORPUS entry is one query (one
// transaction, unless it holds its own BEGIN … COMMIT).
import type { TableShape } from './expected-events.js';
import type { UserTypes } from './documented-mapping.js';

export const BULK_ROWS = 50_000;

/** 9,600 characters; with STORAGE EXTERNAL stored out of line (TOAST). */
const BIG = `(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i)`;
const BIG2 = `(SELECT string_agg(md5((i + 1000)::text), '') FROM generate_series(1, 300) i)`;
/** 2,560 characters: small enough for a primary key, large enough to be TOASTed. */
const LONG_KEY = `(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 80) i)`;

export const SCHEMA = `
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
  CREATE DOMAIN email AS text;
  CREATE DOMAIN posints AS integer[];
  CREATE TYPE pair AS (a integer, b text);
  CREATE TYPE floatrange AS RANGE (subtype = float8);
  CREATE SCHEMA app;

  CREATE TABLE scalars (
    id serial PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, o oid, num numeric, r real, d double precision,
    b boolean, js json, jsb jsonb, t text, vc varchar(10), c char(5), qc "char", nm name, u uuid,
    dt date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval, ba bytea, bt bit(3), vb varbit,
    ip inet, cd cidr, mac macaddr, mny money, pt point, bx box, tsv tsvector, ir int4range, tr tstzrange,
    mr int4multirange, fr floatrange, m mood, pi posint, em email, pr pair, pl pg_lsn);
  CREATE TABLE arrays (
    id int PRIMARY KEY, ia int[], ta text[], ia2 int[][], i8a bigint[], na numeric[], fa float8[], boa bool[],
    ja json[], jba jsonb[], tsa timestamptz[], tpa timestamp[], da date[], tma time[], bya bytea[], ua uuid[], bxa box[],
    ma mood[], pia posint[], pis posints, pra pair[], ra int4range[]);

  CREATE TABLE ri_default (id int PRIMARY KEY, v text, big text);
  CREATE TABLE ri_full_pk (id int PRIMARY KEY, v text, big text);
  ALTER TABLE ri_full_pk REPLICA IDENTITY FULL;
  CREATE TABLE ri_full_nopk (a int, v text, big text);
  ALTER TABLE ri_full_nopk REPLICA IDENTITY FULL;
  CREATE TABLE ri_index (id int PRIMARY KEY, code text NOT NULL, v text, big text);
  CREATE UNIQUE INDEX ri_index_code ON ri_index (code);
  ALTER TABLE ri_index REPLICA IDENTITY USING INDEX ri_index_code;
  CREATE TABLE ri_nothing (id int PRIMARY KEY, v text);
  ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING;
  CREATE TABLE no_key (id int, v text);
  CREATE TABLE ri_toast_key (k text PRIMARY KEY, v int);
  ALTER TABLE ri_default ALTER COLUMN big SET STORAGE EXTERNAL;
  ALTER TABLE ri_full_pk ALTER COLUMN big SET STORAGE EXTERNAL;
  ALTER TABLE ri_full_nopk ALTER COLUMN big SET STORAGE EXTERNAL;
  ALTER TABLE ri_index ALTER COLUMN big SET STORAGE EXTERNAL;
  ALTER TABLE ri_toast_key ALTER COLUMN k SET STORAGE EXTERNAL;
  CREATE TABLE "Odd ""Name""" ("Col ""A""" int PRIMARY KEY, "select" text, "ünï" text);
  CREATE TABLE app.orders (id bigint PRIMARY KEY, status mood, total numeric(12, 2));

  CREATE TABLE parted (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
  CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
  CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
  CREATE TABLE evolving (id int PRIMARY KEY, a int, b text);
  CREATE TABLE sp (id int PRIMARY KEY);
  CREATE TABLE tr_parent (id int PRIMARY KEY);
  CREATE TABLE tr_child (id int PRIMARY KEY, p int REFERENCES tr_parent (id));
  CREATE TABLE bulk (id int PRIMARY KEY, v text, n numeric);
`;

const keyed = (...primaryKey: string[]): TableShape => ({ identity: 'default', primaryKey });

export const TABLES: Record<string, TableShape> = {
  'public.scalars': keyed('id'),
  'public.arrays': keyed('id'),
  'public.ri_default': keyed('id'),
  'public.ri_full_pk': { identity: 'full', primaryKey: ['id'] },
  'public.ri_full_nopk': { identity: 'full', primaryKey: [] },
  'public.ri_index': { identity: 'index', primaryKey: ['id'], indexColumns: ['code'] },
  'public.ri_nothing': { identity: 'nothing', primaryKey: ['id'] },
  'public.no_key': keyed(),
  'public.ri_toast_key': keyed('k'),
  'public.Odd "Name"': keyed('Col "A"'),
  'app.orders': keyed('id'),
  'public.parted_eu': keyed('id', 'region'),
  'public.parted_us': keyed('id', 'region'),
  'public.evolving': keyed('id'),
  'public.sp': keyed('id'),
  'public.tr_parent': keyed('id'),
  'public.tr_child': keyed('id'),
  'public.bulk': keyed('id'),
};

export const USER_TYPES: UserTypes = { posint: 'integer', email: 'text', posints: 'integer[]', mood: 'text', pair: 'text', floatrange: 'text' };

const SCALAR_COLUMNS = 'i2, i4, i8, o, num, r, d, b, js, jsb, t, vc, c, qc, nm, u, dt, tm, ttz, ts, tstz, iv, ba, bt, vb, ip, cd, mac, mny, pt, bx, tsv, ir, tr, mr, fr, m, pi, em, pr, pl';

export const CORPUS: string[] = [
  // Every scalar type: ordinary values, the lower edges, the upper edges, all NULL.
  `INSERT INTO scalars (${SCALAR_COLUMNS}) VALUES
    (1, 2, 3, 4, 12345678901234567890.123456789012345678901234567890, 1.5, 3.141592653589793, true,
     '{"a": [1, 2, {"b": null}]}', '{"k": "v", "n": 1}', 'hello', 'abc', 'ab', 'x', 'pg_class', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '2026-11-22', '10:00:00.123456', '10:00:00+02', '2026-11-22 10:00:00.123456', '2026-11-22 10:00:00.123456+02', '1 day 2 hours',
     '\\x0aff00', B'101', B'1', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', 1000, '(1,2)', '(1,1),(0,0)', 'a fat cat',
     '[1,5)', '[2026-01-01 00:00:00+00,2026-02-01 00:00:00+00)', '{[1,3),[5,7)}', '(1.5,2.5]', 'happy', 7, 'a@b.c', '(1,"x y")', '0/16B3748'),
    (-32768, -2147483648, -9223372036854775808, 0, 'NaN', 'NaN', '-Infinity', false,
     E'  {"x" :\\n 1,\\t"big": 12345678901234567890, "f": 1.000, "e": -1.5E+300, "s": "a  \\\\"b\\\\" \\\\\\\\", "nul": "\\\\u0000"}\\n',
     '{"k": [1, 2.50, {"n": null}], "s": "line\\\\nbreak", "big": 123456789012345678901234567890}',
     E'quote '' " back\\\\slash \\n newline \\t tab é 😀', '', '', ' ', '', '00000000-0000-0000-0000-000000000000',
     '0044-03-15 BC', '00:00:00', '23:59:59.999999-03:30', '0044-03-15 12:00:00.5 BC', '4714-11-24 00:00:00+00 BC',
     '-1 year -2 mons +3 days -04:05:06.789', '\\x', B'000', B'', '::1/128', '::/0', '00:00:00:00:00:00', -92233720368547758.08,
     '(-1.5,-0)', '(0,0),(0,0)', '', 'empty', 'empty', '{}', 'empty', 'sad', 1, '', '(,)', '0/0'),
    (32767, 2147483647, 9223372036854775807, 4294967295, '-Infinity', '-0', 'Infinity', true,
     '[]', '{}', repeat('x', 3000), '1234567890', 'abcde', '"', repeat('n', 63), 'ffffffff-ffff-ffff-ffff-ffffffffffff',
     'infinity', '24:00:00', '00:00:00+00', 'infinity', '-infinity', 'P1Y2M3DT4H5M6.000007S', '\\xffffffff', B'111', B'10101',
     '255.255.255.255/32', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 92233720368547758.07, '(1e+300,5e-324)', '(1,2),(-3,-4)',
     'z:1A,2B,3C', '(,)', '(-infinity,infinity)', '{[1,2),[3,4),[5,6)}', '[-Infinity,NaN]', 'ok', 2147483647, 'x', '(-2147483648,"")', 'FFFFFFFF/FFFFFFFF'),
    (0, 0, 1, 1, 0.000000000000000000000000000001, 1.17549435e-38, 4.9e-324, false,
     '"scalar string"', '12345678901234567890', 'a', 'a', 'a', 'a', 'a', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '5874897-12-31', '23:59:59.999999', '12:00:00.5+14', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00',
     '-178000000 years', '\\x00', B'010', B'0', '0.0.0.0/0', '0.0.0.0/0', '01:02:03:04:05:06', 0, '(0,0)', '(0,0),(0,0)',
     '', '[-2147483648,2147483647)', '[2026-11-22 10:00:00.5+00,2026-11-22 10:00:00.5+00]', '{}', '[0,0]', 'sad', 1, 'y', '(0,"a,b")', '1/0')`,
  `INSERT INTO scalars (id) VALUES (100)`,
  `INSERT INTO scalars (dt, ts, tstz) VALUES ('0001-01-01 BC', '0001-01-01 00:00:00 BC', '0001-01-01 00:00:00+00 BC'),
     ('0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00'), ('9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00'),
     ('10000-01-01', '10000-01-01 00:00:00', '10000-01-01 00:00:00+00'), ('-infinity', '-infinity', 'infinity'),
     ('4714-11-24 BC', '4714-11-24 00:00:00 BC', '2026-11-22 10:00:00.1+00')`,

  // Arrays: NULL elements, quoting, nesting, explicit bounds, every mapped element type.
  `INSERT INTO arrays VALUES (1, '{1,NULL,3}', '{"a b","c\\"d",NULL,"NULL",plain,"e\\\\f","g,h","{}","",quote''s}', '{{1,2},{3,4}}',
     '{9223372036854775807,-9223372036854775808}', '{1.10,NaN,-Infinity}', '{1.5,NaN,-Infinity,-0}', '{t,f,NULL}',
     ARRAY[E'{"a" :\\n 1}', '[ 1,\t2 ]', NULL]::json[], ARRAY['{"a": 12345678901234567890, "b": 1.000}']::jsonb[],
     '{"2026-01-01 00:00:00.5+00",infinity,"0044-03-15 12:00:00+00 BC"}', '{"2026-01-01 00:00:00",-infinity}',
     '{"0044-03-15 BC",2026-11-22,-infinity}', '{10:00:00,24:00:00}', '{"\\\\x0aff",NULL,"\\\\x"}',
     '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{(1,1),(0,0);(2,2),(1,1)}', '{happy,NULL,sad}', '{1,2}', '{3,4}',
     ARRAY['(1,"a b")'::pair, NULL, '(,)'], '{"[1,5)",empty}')`,
  `INSERT INTO arrays (id, ia, ta, ia2, ma, ja) VALUES (2, '{}', '{}', '[0:1][1:2]={{1,2},{3,4}}', '{}', '{}'), (3, '[-1:0]={7,8}', '{{a,b},{c,d}}', '{{{1}},{{2}}}', NULL, NULL)`,

  // Replica identities, with a TOASTed column left unchanged by updates.
  `INSERT INTO ri_default VALUES (1, 'a', ${BIG}), (2, 'b', 'small')`,
  `UPDATE ri_default SET v = 'a2' WHERE id = 1`,
  `UPDATE ri_default SET id = 3 WHERE id = 1`,
  `UPDATE ri_default SET big = ${BIG2} WHERE id = 3`,
  `DELETE FROM ri_default WHERE id IN (2, 3)`,
  `INSERT INTO ri_full_pk VALUES (1, 'a', ${BIG}), (2, NULL, NULL)`,
  `UPDATE ri_full_pk SET v = 'a2' WHERE id = 1`,
  `UPDATE ri_full_pk SET id = 3 WHERE id = 1`,
  `UPDATE ri_full_pk SET v = 'n' WHERE id = 2`,
  `DELETE FROM ri_full_pk`,
  `INSERT INTO ri_full_nopk VALUES (1, 'a', ${BIG}), (2, NULL, 'small')`,
  `UPDATE ri_full_nopk SET v = 'a2' WHERE a = 1`,
  `DELETE FROM ri_full_nopk WHERE a = 2`,
  `DELETE FROM ri_full_nopk WHERE a = 1`,
  `INSERT INTO ri_index VALUES (1, 'c1', 'a', ${BIG})`,
  `UPDATE ri_index SET v = 'a2' WHERE id = 1`,
  `UPDATE ri_index SET code = 'c2' WHERE id = 1`,
  `UPDATE ri_index SET id = 5 WHERE id = 1`,
  `DELETE FROM ri_index`,
  `INSERT INTO ri_nothing VALUES (1, 'a')`,
  `INSERT INTO no_key VALUES (1, 'a'), (1, 'a')`,
  `INSERT INTO ri_toast_key VALUES (${LONG_KEY}, 1)`,
  `UPDATE ri_toast_key SET v = 2`,
  `DELETE FROM ri_toast_key`,
  `INSERT INTO "Odd ""Name""" VALUES (1, 'it''s', 'ü')`,
  `UPDATE "Odd ""Name""" SET "select" = NULL`,
  `DELETE FROM "Odd ""Name"""`,
  `INSERT INTO app.orders VALUES (9007199254740993, 'ok', 129.90)`,

  // Partitions: changes are named after the partition; a row moving between partitions is a delete and an insert.
  `INSERT INTO parted VALUES (1, 'eu', 1), (2, 'us', 2)`,
  `UPDATE parted SET v = 10 WHERE id = 1`,
  `UPDATE parted SET region = 'us' WHERE id = 1`,
  `DELETE FROM parted WHERE id = 2`,

  // DDL between changes, and in the same transaction as changes.
  `INSERT INTO evolving VALUES (1, 1, 'one')`,
  `ALTER TABLE evolving ADD COLUMN c timestamptz DEFAULT '2026-01-01 00:00:00+00'`,
  `INSERT INTO evolving (id, a, b) VALUES (2, 2, 'two')`,
  `UPDATE evolving SET a = 10 WHERE id = 1`,
  `ALTER TABLE evolving DROP COLUMN b`,
  `INSERT INTO evolving VALUES (3, 3)`,
  `ALTER TABLE evolving ALTER COLUMN a TYPE bigint`,
  `INSERT INTO evolving VALUES (4, 9223372036854775807)`,
  `BEGIN; ALTER TABLE evolving ADD COLUMN d jsonb; INSERT INTO evolving (id, a, d) VALUES (5, 5, '{"z": [ ]}'); ALTER TABLE evolving ALTER COLUMN a TYPE numeric; INSERT INTO evolving (id, a) VALUES (6, 1.5); COMMIT`,
  `ALTER TYPE mood ADD VALUE 'ecstatic'`,
  `INSERT INTO scalars (m) VALUES ('ecstatic')`,
  `DELETE FROM evolving WHERE id = 1`,

  // Savepoints and rolled-back work: only what committed is delivered.
  `BEGIN; INSERT INTO sp VALUES (1); SAVEPOINT a; INSERT INTO sp VALUES (2); SELECT pg_logical_emit_message(true, 'sp', 'rolled back');
   ROLLBACK TO SAVEPOINT a; INSERT INTO sp VALUES (3); SAVEPOINT b; INSERT INTO sp VALUES (4); RELEASE SAVEPOINT b;
   SELECT pg_logical_emit_message(true, 'sp', 'kept'); COMMIT`,
  `BEGIN; INSERT INTO sp VALUES (100); SELECT pg_logical_emit_message(true, 'sp', 'never'); ROLLBACK`,
  `BEGIN; INSERT INTO sp VALUES (101); SELECT pg_logical_emit_message(false, 'sp', 'non-transactional, from a rolled-back transaction'); ROLLBACK`,

  // Logical messages; a non-transactional one written just before a commit record ends where that record starts.
  `SELECT pg_logical_emit_message(true, 'app', 'transactional alone')`,
  `SELECT pg_logical_emit_message(false, 'app', 'non-transactional')`,
  `SELECT pg_logical_emit_message(false, 'app', '\\x00ff'::bytea)`,
  `SELECT pg_logical_emit_message(true, 'app', E'multi\\nline "quoted" é')`,
  ...[200, 201, 202].map((id) => `BEGIN; INSERT INTO sp VALUES (${id}); SELECT pg_logical_emit_message(false, 'adjacent', 'ends where the commit record starts'); COMMIT`),

  // Truncates: one event per table, with the flags.
  `INSERT INTO tr_parent VALUES (1); INSERT INTO tr_child VALUES (1, 1)`,
  `TRUNCATE tr_parent, tr_child RESTART IDENTITY CASCADE`,
  `TRUNCATE ri_nothing`,
  `TRUNCATE tr_parent CASCADE`,
  `BEGIN; INSERT INTO tr_parent VALUES (2); TRUNCATE tr_child; INSERT INTO tr_child VALUES (2, 2); COMMIT`,

  // One large transaction.
  `INSERT INTO bulk SELECT i, md5(i::text), i / 7.0 FROM generate_series(1, ${BULK_ROWS}) i`,
];
