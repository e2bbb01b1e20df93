// The schema and DML that the Debezium comparison runs, once against the
// real Debezium Server (live, `npm run test:debezium`) and once against
// walrelay (live, and in the fast suite against the golden files the live
// run wrote). Every column type of the README's value-mapping table, both
// replica identities, a primary-key change, deletes, a truncate, logical
// messages and an unchanged TOASTed column.

export const SCENARIO_TABLES = ['public.dbz_types', 'public.dbz_full', 'public.dbz_toast', 'public.dbz_pk', 'public.dbz_arrays', 'public.dbz_full_toast', 'public.dbz_more', 'public.dbz_special'];

export const SCENARIO_SETUP = [
  'CREATE EXTENSION IF NOT EXISTS hstore',
  "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
  `CREATE TABLE dbz_types (
    id integer PRIMARY KEY,
    c_smallint smallint, c_integer integer, c_bigint bigint, c_oid oid,
    c_real real, c_double double precision,
    c_numeric numeric(12,3), c_numeric_free numeric,
    c_bool boolean, c_text text, c_varchar varchar(20), c_char char(4),
    c_uuid uuid, c_enum mood,
    c_date date, c_time time, c_time3 time(3), c_timetz timetz,
    c_timestamp timestamp, c_timestamp3 timestamp(3), c_timestamptz timestamptz,
    c_interval interval, c_json json, c_jsonb jsonb, c_bytea bytea,
    c_int_array integer[], c_text_array text[],
    c_inet inet, c_money money, c_point point, c_hstore hstore
  )`,
  'CREATE TABLE dbz_full (id integer PRIMARY KEY, name text, amount numeric(10,2))',
  'ALTER TABLE dbz_full REPLICA IDENTITY FULL',
  'CREATE TABLE dbz_toast (id integer PRIMARY KEY, note text, big text, big_bytes bytea, big_array text[], big_json jsonb, tags hstore)',
  'ALTER TABLE dbz_toast ALTER COLUMN big_bytes SET STORAGE EXTERNAL',
  'CREATE TABLE dbz_pk (id integer PRIMARY KEY, name text)',
  `CREATE TABLE dbz_arrays (
    id integer PRIMARY KEY, a_numeric numeric(6,2)[], a_timestamptz timestamptz[], a_uuid uuid[], a_date date[],
    a_bool boolean[], a_double double precision[], a_jsonb jsonb[], a_enum mood[], a_bigint bigint[], a_empty integer[]
  )`,
  'CREATE TABLE dbz_full_toast (id integer PRIMARY KEY, note text, big text)',
  'ALTER TABLE dbz_full_toast REPLICA IDENTITY FULL',
  'CREATE TABLE dbz_special (id integer PRIMARY KEY, n numeric, n_fixed numeric(10,2), ts timestamp, tstz timestamptz, d date)',
  "CREATE DOMAIN price AS numeric(8,2)",
  "CREATE TYPE pair AS (a integer, b text)",
  `CREATE TABLE dbz_more (
    id integer PRIMARY KEY, m_range int4range, m_tsrange tsrange, m_tsvector tsvector, m_box box, m_macaddr macaddr, m_cidr cidr,
    m_bit bit(3), m_varbit varbit, m_xml xml, m_domain price, m_pair pair, m_line line, m_circle circle, m_smallserial smallserial, m_name name,
    m_bit1 bit(1), m_bit16 bit(16), m_citext_like varchar(5)[], m_box_array box[]
  )`,
];

/** One transaction per entry, run in order. */
export const SCENARIO_STEPS: string[][] = [
  [`INSERT INTO dbz_types VALUES (1,
    -32768, 2147483647, 9223372036854775807, 4000000000,
    1.5, 0.1,
    12345.678, 1234.5600,
    true, 'héllo "quoted"', 'varchar', 'ab',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy',
    '2026-11-22', '10:15:30.123456', '10:15:30.123', '10:15:30.5+02',
    '2026-11-22 10:00:00.123456', '2026-11-22 10:00:00.5', '2026-11-22 12:00:00.1+02',
    '1 year 2 mons 3 days 04:05:06.789', '{"b": 1, "a": [1, 2.50]}', '{"b": 1, "a": [1, 2.50]}', '\\x00ff10',
    '{1,NULL,3}', '{"a b",NULL,"c"}',
    '192.168.0.1/24', 1234.56, '(1.5,-2)', 'a=>1, "b c"=>NULL'
  )`],
  ['INSERT INTO dbz_types (id) VALUES (2)'],
  [`INSERT INTO dbz_types (id, c_smallint, c_integer, c_bigint, c_real, c_double, c_numeric, c_numeric_free, c_date, c_time, c_timestamp, c_timestamptz, c_interval, c_money, c_text)
    VALUES (3, 0, -1, -9223372036854775808, 1e20, -1.25e-7, -0.001, 0, '1969-12-31', '00:00:00', '1960-01-01 00:00:00', '1970-01-01 00:00:00+00', '-1 day -00:00:01', -0.01, '')`],
  [`INSERT INTO dbz_types (id, c_real, c_double, c_numeric, c_time, c_time3, c_timetz, c_timestamp3, c_interval, c_jsonb, c_bytea, c_int_array, c_text_array, c_money, c_point, c_hstore, c_date)
    VALUES (4, 'NaN', '-Infinity', -99.5, '24:00:00', '23:59:59.999', '23:30:00-05:30', '1900-06-30 23:59:59.999', 'P-1Y-2M', '[]', '', '{}', '{"",NULL}', 92233720368547758.07, '(0,1e-10)', '', '0044-03-15 BC')`],
  [`INSERT INTO dbz_types (id, c_real, c_double, c_timestamptz, c_timestamp, c_date) VALUES (5, 3.4028235e38, 4.9e-324, '2026-03-29 01:30:00.000001+05:45', '2000-02-29 12:00:00', '2000-02-29')`],
  ["UPDATE dbz_types SET c_text = 'changed', c_real = 100, c_double = 1e15 WHERE id = 1"],
  ['DELETE FROM dbz_types WHERE id = 2'],
  ["INSERT INTO dbz_full VALUES (1, 'one', 10.50), (2, 'two', 20)"],
  ["UPDATE dbz_full SET name = 'uno', amount = 11 WHERE id = 1"],
  ['DELETE FROM dbz_full WHERE id = 2'],
  [`INSERT INTO dbz_toast VALUES (1, 'first', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) AS i),
    (SELECT decode(string_agg(md5(i::text), ''), 'hex') FROM generate_series(1, 400) AS i),
    (SELECT array_agg(md5(i::text)) FROM generate_series(1, 400) AS i),
    (SELECT jsonb_object_agg(md5(i::text), i) FROM generate_series(1, 400) AS i),
    'zeta=>1, alpha=>2, "key with space"=>3, b=>NULL, id=>x, name=>y, type=>z, value=>v, created=>c, k10=>10, k11=>11, k12=>12, k13=>13')`],
  ["UPDATE dbz_toast SET note = 'second' WHERE id = 1"],
  ["INSERT INTO dbz_pk VALUES (1, 'a'), (2, 'b')"],
  ['UPDATE dbz_pk SET id = 10 WHERE id = 1'],
  ["SELECT pg_logical_emit_message(true, 'walrelay-test', 'transactional hello')", "INSERT INTO dbz_pk VALUES (3, 'c')"],
  ["SELECT pg_logical_emit_message(false, 'walrelay-test', 'outside')"],
  ['TRUNCATE dbz_pk'],
  [`INSERT INTO dbz_arrays VALUES (1, '{1.5,-2.25,NULL}', '{"2026-01-01 00:00:00+00"}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{2026-11-22}',
    '{t,f}', '{1.0,1e20,0.1}', ARRAY['{"a": 1}'::jsonb, '[1, 2]'::jsonb], '{sad,happy}', '{9223372036854775807}', '{}')`],
  ["INSERT INTO dbz_full_toast VALUES (1, 'first', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) AS i))"],
  ["UPDATE dbz_full_toast SET note = 'second' WHERE id = 1"],
  ["UPDATE dbz_full SET id = 3 WHERE id = 1"],
  [`INSERT INTO dbz_more VALUES (1, '[1,5)', '[2026-01-01 00:00,2026-01-02 00:00)', 'a fat cat', '((0,0),(1,1))', '08:00:2b:01:02:03', '10.0.0.0/8',
    B'101', B'1', '<a>x</a>', 12.5, ROW(1, 'x'), '{1,-1,0}', '<(0,0),2>', 7, 'nm',
    B'1', B'0000000100000010', '{ab,NULL}', NULL)`],
  ["INSERT INTO dbz_special VALUES (1, 'NaN', 'NaN', 'infinity', '-infinity', 'infinity'), (2, 'Infinity', NULL, '-infinity', 'infinity', '-infinity'), (3, '-Infinity', NULL, NULL, NULL, NULL)"],
  // The last event: once both sides have it, they have everything before it.
  ["INSERT INTO dbz_full VALUES (99, 'end', 0)"],
];

export const SCENARIO_LAST_STREAM_SUFFIX = '.public.dbz_full';
export const SCENARIO_LAST_KEY = '{"id":99}';
