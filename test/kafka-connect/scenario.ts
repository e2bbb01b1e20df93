// The Kafka Connect comparison's DML: the Debezium Server comparison's
// (every type of the README's value mapping, both replica identities, key
// changes, deletes, truncate, messages, TOAST) and, for what only schemas
// show, tables with NOT NULL and nullable columns with and without
// defaults (literals, now(), a sequence, functions), deletes whose old row
// is only the key (the others are written as their defaults or zeros), and
// a change of a table's shape. (A column dropped while the connector
// catches up has no catalog entry when it reads the Relation message, so
// the dropped one has no default: walrelay reads the catalog then too.)
import { SCENARIO_SETUP, SCENARIO_STEPS, SCENARIO_TABLES } from '../harness/debezium-scenario.js';

export const CONNECT_TABLES = [...SCENARIO_TABLES, 'public.kc_defaults', 'public.kc_required', 'public.kc_nullable'];

/** The Debezium settings compared live and kept as golden files (test/golden/kafka-connect/<name>.json). */
export const CONNECT_SETTINGS = [
  { name: 'precise', decimalHandlingMode: 'precise', timePrecisionMode: 'adaptive' },
  { name: 'string-connect', decimalHandlingMode: 'string', timePrecisionMode: 'connect' },
  { name: 'double-adaptive_time_microseconds', decimalHandlingMode: 'double', timePrecisionMode: 'adaptive_time_microseconds' },
] as const;

/** Each setting's topic prefix, which names the schemas (the fast suite's walrelay uses the same). */
export function connectPrefix(mode: string): string {
  return `dbz_${mode.replace(/[^a-z]/g, '')}`;
}

export const CONNECT_SETUP = [
  ...SCENARIO_SETUP,
  `CREATE TABLE kc_defaults (
    id integer PRIMARY KEY,
    name text NOT NULL DEFAULT 'unnamed',
    code varchar(8) NOT NULL,
    n integer NOT NULL DEFAULT 7,
    big bigint NOT NULL DEFAULT -3,
    small smallint,
    ratio double precision NOT NULL DEFAULT 0.5,
    price numeric(10,2) NOT NULL DEFAULT 1.50,
    free numeric DEFAULT 2.5,
    flag boolean NOT NULL DEFAULT true,
    created timestamptz NOT NULL DEFAULT now(),
    stamp timestamp NOT NULL DEFAULT '2026-01-02 03:04:05.678901',
    day date NOT NULL DEFAULT '2026-01-02',
    counter bigserial,
    ident uuid NOT NULL DEFAULT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    doc jsonb NOT NULL DEFAULT '{}',
    mood mood NOT NULL DEFAULT 'ok',
    tags text[] NOT NULL DEFAULT '{}',
    note text
  )`,
  // NOT NULL without defaults: a key-only delete writes each type's zero.
  `CREATE TABLE kc_required (
    id integer PRIMARY KEY, r_int integer NOT NULL, r_num numeric(10,2) NOT NULL, r_free numeric NOT NULL, r_tstz timestamptz NOT NULL,
    r_ts timestamp NOT NULL, r_date date NOT NULL, r_time time NOT NULL, r_timetz timetz NOT NULL, r_bool boolean NOT NULL, r_uuid uuid NOT NULL,
    r_json jsonb NOT NULL, r_double float8 NOT NULL, r_real real NOT NULL, r_bytea bytea NOT NULL, r_enum mood NOT NULL, r_interval interval NOT NULL,
    r_money money NOT NULL, r_point point NOT NULL, r_bits bit(4) NOT NULL, r_small smallint NOT NULL DEFAULT 2, r_text_default text NOT NULL DEFAULT 'it''s',
    r_tstz_default timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, r_ts_default timestamp(3) NOT NULL DEFAULT LOCALTIMESTAMP, r_date_default date NOT NULL DEFAULT CURRENT_DATE,
    r_num_default numeric(6,3) NOT NULL DEFAULT -1.5, r_free_default numeric NOT NULL DEFAULT 12.340, r_uuid_default uuid NOT NULL DEFAULT gen_random_uuid(),
    r_bool_default boolean NOT NULL DEFAULT false, r_real_default real NOT NULL DEFAULT 1e10, r_interval_default interval NOT NULL DEFAULT '1 day'
  )`,
  // Nullable with defaults: JsonConverter writes a null as the default.
  `CREATE TABLE kc_nullable (
    id integer PRIMARY KEY, n_small smallint DEFAULT 2, n_int integer DEFAULT -4, n_big bigint DEFAULT 5, n_real real DEFAULT 1.5, n_double float8 DEFAULT -2.5,
    n_num numeric(8,3) DEFAULT 1.5, n_free numeric DEFAULT 2.50, n_money money DEFAULT 3.5, n_text text DEFAULT 'dflt', n_varchar varchar(9) DEFAULT 'v',
    n_char char(3) DEFAULT 'c', n_bool boolean DEFAULT true, n_date date DEFAULT '2026-03-04', n_time time DEFAULT '01:02:03', n_ts timestamp DEFAULT '2026-03-04 05:06:07',
    n_tstz timestamptz DEFAULT '2026-03-04 05:06:07+02', n_tstz_now timestamptz DEFAULT now(), n_uuid uuid DEFAULT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    n_json json DEFAULT '{"a":1}', n_jsonb jsonb DEFAULT '[]', n_enum mood DEFAULT 'happy', n_interval interval DEFAULT '2 hours', n_bytea bytea DEFAULT '\\x0102',
    n_bit bit(1) DEFAULT B'1', n_bits bit(4) DEFAULT B'0101', n_inet inet DEFAULT '10.0.0.1', n_expr integer DEFAULT (1 + 2), n_text_fn text DEFAULT md5('x'),
    n_xml xml DEFAULT '<a/>', n_plain integer
  )`,
];

const [last] = SCENARIO_STEPS.slice(-1);

/** One transaction per entry, run in order; the last is the Debezium scenario's last (the end marker). */
export const CONNECT_STEPS: string[][] = [
  ...SCENARIO_STEPS.slice(0, -1),
  // Rows name the values of now()-like defaults: the golden files must not hold the time of the run.
  ["INSERT INTO kc_defaults (id, code, created) VALUES (1, 'a', '2026-05-06 07:08:09.123456+00')", "INSERT INTO kc_defaults (id, name, code, n, note, created) VALUES (2, 'two', 'b', 22, 'x', '2026-05-06 07:08:09+00')"],
  ["UPDATE kc_defaults SET n = 23, note = NULL WHERE id = 2"],
  ['DELETE FROM kc_defaults WHERE id = 1'],
  ["ALTER TABLE kc_defaults ADD COLUMN extra integer NOT NULL DEFAULT 5", "ALTER TABLE kc_defaults DROP COLUMN small"],
  ["INSERT INTO kc_defaults (id, code, extra, created) VALUES (3, 'c', 6, '2026-05-06 07:08:10+00')"],
  ['DELETE FROM kc_defaults WHERE id = 2'],
  [`INSERT INTO kc_required (id, r_tstz_default, r_ts_default, r_date_default, r_uuid_default, r_int, r_num, r_free, r_tstz, r_ts, r_date, r_time, r_timetz, r_bool, r_uuid, r_json, r_double, r_real, r_bytea, r_enum, r_interval, r_money, r_point, r_bits)
    VALUES (1, '2026-01-01 00:00:00+00', '2026-01-01 00:00:00.5', '2026-01-02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 1, 1.5, 2.25, '2026-01-01 00:00:00+00', '2026-01-01 00:00:00', '2026-01-01', '12:00:00', '12:00:00+01', true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '[1]', 1.5, 2.5, '\\x01', 'sad', '1 hour', 3.25, '(1,2)', B'1010')`],
  ['DELETE FROM kc_required WHERE id = 1'],
  ["INSERT INTO kc_nullable (id, n_tstz_now) VALUES (1, '2026-01-01 00:00:00+00'), (2, NULL)", "INSERT INTO kc_nullable (id, n_text, n_int, n_plain, n_tstz_now) VALUES (3, NULL, NULL, 9, NULL)"],
  ['DELETE FROM kc_nullable WHERE id = 1', 'DELETE FROM kc_nullable WHERE id = 3'],
  last,
];
