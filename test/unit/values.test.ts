// The value mapping of contract section 3, on PostgreSQL's text output (as a
// session with datestyle=ISO, timezone=UTC, extra_float_digits=3,
// intervalstyle=iso_8601, bytea_output=hex prints it), for both the value
// converters and the JSON-fragment converters of the hot path.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TypeCatalog, type Queryable } from '../../relay/source/type-catalog.js';
import { converterFor, jsonConverterFor } from '../../relay/source/values.js';
import { formatPgTimestamp, timestampToIso } from '../../relay/source/datetime.js';
import { formatLsn } from '../../relay/lsn.js';
import { PG_EPOCH_MICROS } from '../../relay/source/replication-stream.js';
import { parseArrayLiteral } from '../../relay/source/array-literal.js';

const offline: Queryable = { query: () => Promise.reject(new Error('no database in unit tests')) };
const catalog = new TypeCatalog(offline);

const CASES: [string, number, string, unknown][] = [
  ['int2', 21, '-32768', -32768],
  ['int4', 23, '2147483647', 2147483647],
  ['oid', 26, '4294967295', 4294967295],
  ['int8 keeps every digit', 20, '9223372036854775807', '9223372036854775807'],
  ['int8 minimum', 20, '-9223372036854775808', '-9223372036854775808'],
  ['numeric with 40 digits unchanged', 1700, '1234567890123456789012345678901234567890', '1234567890123456789012345678901234567890'],
  ['numeric keeps every digit and trailing zeros', 1700, '12345678901234567890.123456789012345678901234567890', '12345678901234567890.123456789012345678901234567890'],
  ['numeric NaN', 1700, 'NaN', 'NaN'],
  ['numeric Infinity', 1700, '-Infinity', '-Infinity'],
  ['float8', 701, '3.141592653589793', Math.PI],
  ['float8 exponent', 701, '1e+100', 1e100],
  ['float4 small exponent', 700, '1.5e-07', 1.5e-7],
  ['float4 NaN as a string', 700, 'NaN', 'NaN'],
  ['float8 Infinity as a string', 701, 'Infinity', 'Infinity'],
  ['float8 -Infinity as a string', 701, '-Infinity', '-Infinity'],
  ['bool true', 16, 't', true],
  ['bool false', 16, 'f', false],
  ['json', 114, '{"a": [1, null]}', { a: [1, null] }],
  ['json scalar', 114, '"x"', 'x'],
  ['jsonb', 3802, '{"k": "v", "n": 1.50}', { k: 'v', n: 1.5 }],
  ['text with quotes and unicode', 25, 'héllo "w"\n\\', 'héllo "w"\n\\'],
  ['varchar', 1043, 'abc', 'abc'],
  ['bpchar keeps its padding', 1042, 'ab  ', 'ab  '],
  ['name', 19, 'pg_class', 'pg_class'],
  ['char', 18, 'x', 'x'],
  ['uuid', 2950, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
  ['interval in ISO 8601', 1186, 'P1DT2H', 'P1DT2H'],
  ['inet', 869, '192.168.0.1/24', '192.168.0.1/24'],
  ['cidr', 650, '10.0.0.0/8', '10.0.0.0/8'],
  ['macaddr', 829, '08:00:2b:01:02:03', '08:00:2b:01:02:03'],
  ['money', 790, '$1,000.00', '$1,000.00'],
  ['xml', 142, '<a x="1"/>', '<a x="1"/>'],
  // Dates and times: one rendering each (README "Value mapping"). Every time
  // of day has exactly six fractional digits, like commitTime; years 0000–9999
  // have four digits (1 BC is 0000, as in ISO 8601), others the expanded form
  // ±YYYYYY that ECMAScript's Date.parse reads (44 BC is -000043).
  ['timestamp keeps microseconds', 1114, '2026-11-22 10:00:00.123456', '2026-11-22T10:00:00.123456'],
  ['timestamp without fraction gets six zeros', 1114, '2026-11-22 10:00:00', '2026-11-22T10:00:00.000000'],
  ['timestamp with fewer fractional digits is padded to six', 1114, '2026-11-22 10:00:00.5', '2026-11-22T10:00:00.500000'],
  ['timestamp with trailing zeros trimmed by PostgreSQL', 1114, '2026-11-22 10:00:00.12', '2026-11-22T10:00:00.120000'],
  ['timestamptz in UTC', 1184, '2026-11-22 08:00:00.123456+00', '2026-11-22T08:00:00.123456Z'],
  ['timestamptz without fraction', 1184, '2026-11-22 08:00:00+00', '2026-11-22T08:00:00.000000Z'],
  ['timestamptz with an hour offset', 1184, '2026-11-22 10:00:00+02', '2026-11-22T10:00:00.000000+02:00'],
  ['timestamptz with a minute offset', 1184, '2026-11-22 10:00:00.25+05:30', '2026-11-22T10:00:00.250000+05:30'],
  ['timestamptz negative offset', 1184, '2026-11-22 10:00:00-08', '2026-11-22T10:00:00.000000-08:00'],
  ['timestamptz infinity', 1184, 'infinity', 'infinity'],
  ['timestamptz -infinity', 1184, '-infinity', '-infinity'],
  ['timestamp infinity', 1114, 'infinity', 'infinity'],
  ['timestamp -infinity', 1114, '-infinity', '-infinity'],
  ['timestamp BC as an expanded year (44 BC = -000043)', 1114, '0044-03-15 12:00:00 BC', '-000043-03-15T12:00:00.000000'],
  ['timestamp 4714 BC, the earliest PostgreSQL takes', 1114, '4714-11-24 00:00:00 BC', '-004713-11-24T00:00:00.000000'],
  ['timestamptz 1 BC is year 0000', 1184, '0001-01-01 00:00:00+00 BC', '0000-01-01T00:00:00.000000Z'],
  ['timestamptz BC with a fraction', 1184, '0044-03-15 12:00:00.5+00 BC', '-000043-03-15T12:00:00.500000Z'],
  // As long as a microsecond AD timestamp, so it must not take that shortcut.
  ['timestamp 1 BC with three fractional digits', 1114, '0001-12-31 23:59:59.999 BC', '0000-12-31T23:59:59.999000'],
  ['timestamp year 1 AD', 1114, '0001-01-01 00:00:00', '0001-01-01T00:00:00.000000'],
  ['timestamp 9999-12-31', 1114, '9999-12-31 23:59:59.999999', '9999-12-31T23:59:59.999999'],
  ['timestamptz after 9999 as +YYYYYY', 1184, '10000-01-01 00:00:00.5+00', '+010000-01-01T00:00:00.500000Z'],
  ['timestamp at the end of PostgreSQL\'s range', 1114, '294276-12-31 23:59:59.999999', '+294276-12-31T23:59:59.999999'],
  ['date', 1082, '2026-11-22', '2026-11-22'],
  ['date BC as an expanded year, like timestamps', 1082, '0044-03-15 BC', '-000043-03-15'],
  ['date 1 BC is year 0000', 1082, '0001-01-01 BC', '0000-01-01'],
  ['date 4714 BC', 1082, '4714-11-24 BC', '-004713-11-24'],
  ['date after 9999', 1082, '10000-01-01', '+010000-01-01'],
  ['date at the end of PostgreSQL\'s range (seven-digit year)', 1082, '5874897-12-31', '+5874897-12-31'],
  ['date infinity', 1082, 'infinity', 'infinity'],
  ['date -infinity', 1082, '-infinity', '-infinity'],
  ['time keeps microseconds', 1083, '10:00:00.123456', '10:00:00.123456'],
  ['time without fraction gets six zeros', 1083, '10:00:00', '10:00:00.000000'],
  ['time 24:00:00', 1083, '24:00:00', '24:00:00.000000'],
  ['timetz with an hour offset', 1266, '10:00:00+02', '10:00:00.000000+02:00'],
  ['timetz UTC as Z', 1266, '23:59:59.5+00', '23:59:59.500000Z'],
  ['timetz with a minute offset', 1266, '10:00:00.000001-03:30', '10:00:00.000001-03:30'],
  ['timetz with a seconds offset as PostgreSQL prints it', 1266, '10:00:00+05:30:15', '10:00:00.000000+05:30:15'],
  ['bytea as base64', 17, '\\x0aff', 'Cv8='],
  ['empty bytea', 17, '\\x', ''],
  ['bytea in escape format', 17, 'a\\\\\\000\\377', Buffer.from([0x61, 0x5c, 0, 0xff]).toString('base64')],
  ['int4[] with NULL', 1007, '{1,NULL,3}', [1, null, 3]],
  ['int4[][]', 1007, '{{1,2},{3,4}}', [[1, 2], [3, 4]]],
  ['int4[][][]', 1007, '{{{1},{2}},{{3},{4}}}', [[[1], [2]], [[3], [4]]]],
  ['text[] quoted and escaped', 1009, '{"a b","c\\"d",NULL,"NULL",plain,"e\\\\f","g,h","{}",""}', ['a b', 'c"d', null, 'NULL', 'plain', 'e\\f', 'g,h', '{}', '']],
  ['empty array', 1007, '{}', []],
  ['array with bounds', 1007, '[0:1]={7,8}', [7, 8]],
  ['2-D array with bounds', 1007, '[0:1][1:1]={{1},{2}}', [[1], [2]]],
  ['int8[] keeps digits', 1016, '{9223372036854775807,NULL}', ['9223372036854775807', null]],
  ['numeric[]', 1231, '{1.10,NaN}', ['1.10', 'NaN']],
  ['float8[] with NaN', 1022, '{1.5,NaN,-Infinity}', [1.5, 'NaN', '-Infinity']],
  ['bool[]', 1000, '{t,f}', [true, false]],
  ['jsonb[]', 3807, '{"{\\"a\\": 1}",NULL,"null","[1, 2]"}', [{ a: 1 }, null, null, [1, 2]]],
  ['timestamptz[]', 1185, '{"2026-01-01 00:00:00.000001+00",infinity}', ['2026-01-01T00:00:00.000001Z', 'infinity']],
  ['date[] with BC', 1182, '{"0044-03-15 BC",2026-11-22,-infinity}', ['-000043-03-15', '2026-11-22', '-infinity']],
  ['time[]', 1183, '{10:00:00,NULL}', ['10:00:00.000000', null]],
  ['bytea[]', 1001, '{"\\\\x0aff",NULL}', ['Cv8=', null]],
  ['uuid[]', 2951, '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']],
  ['box[] uses ;', 1020, '{(1,1),(0,0);(2,2),(1,1)}', ['(1,1),(0,0)', '(2,2),(1,1)']],
  ['point (no mapping of its own) as text', 600, '(1,2)', '(1,2)'],
  ['range as text', 3904, '[1,5)', '[1,5)'],
  ['unknown OID as text', 999999, 'whatever "x"', 'whatever "x"'],
  ['an array literal that cannot be parsed passes through as text', 1007, '{1,2', '{1,2'],
];

describe('value mapping', () => {
  for (const [name, oid, text, expected] of CASES) {
    it(name, () => {
      assert.deepEqual(converterFor(oid, catalog)(text), expected);
      assert.deepEqual(JSON.parse(jsonConverterFor(oid, catalog)(text)), expected, 'JSON fragment');
    });
  }

  it('builds one converter per type and reuses it', () => {
    assert.equal(converterFor(1184, catalog), converterFor(1184, catalog));
    assert.equal(jsonConverterFor(1007, catalog), jsonConverterFor(1007, catalog));
  });

  it('rejects an array nested deeper than PostgreSQL allows with VALUE_MALFORMED, not a stack overflow', () => {
    assert.deepEqual(parseArrayLiteral('{{{{{{1}}}}}}', (x) => x), [[[[[['1']]]]]]);
    assert.throws(() => parseArrayLiteral('{{{{{{{1}}}}}}}', (x) => x), (e: any) => e.code === 'VALUE_MALFORMED' && /6 dimensions/.test(e.message));
    const deep = '{'.repeat(200_000) + '1' + '}'.repeat(200_000);
    assert.throws(() => parseArrayLiteral(deep, (x) => x), (e: any) => e.code === 'VALUE_MALFORMED');
    assert.equal(jsonConverterFor(1007, catalog)(deep), JSON.stringify(deep), 'an int[] value that cannot be parsed passes as its text');
  });

  it('rejects a malformed array literal with VALUE_MALFORMED', () => {
    for (const text of ['{1,2', '{"a}', '{1,,2}', '{1}x', '[0:1]{1}', '{{1},2']) {
      assert.throws(() => parseArrayLiteral(text, (x) => x), (e: any) => e.code === 'VALUE_MALFORMED', text);
    }
  });

  it('renders timestamps that Date.parse reads back, BC and beyond 9999 included', () => {
    for (const [text, year] of [['0044-03-15 12:00:00.5+00 BC', -43], ['0001-01-01 00:00:00+00 BC', 0], ['10000-01-01 00:00:00+00', 10000], ['2026-11-22 10:00:00+00', 2026]] as const) {
      const millis = Date.parse(timestampToIso(text, true));
      assert.ok(!Number.isNaN(millis), text);
      assert.equal(new Date(millis).getUTCFullYear(), year, text);
    }
  });

  // JSON values are re-serialised minimally: whitespace between tokens goes
  // (so that an event is one line whatever the column held), every number and
  // string token is kept byte for byte (json keeps the text as written, and a
  // JSON.parse round trip would round 12345678901234567890 and turn 1.000 into 1).
  const JSON_TEXT: [string, number, string, string][] = [
    ['json with newlines and tabs between tokens', 114, '  {"x" :\n 1 ,\t"y":[ 1 , 2 ]}\n', '{"x":1,"y":[1,2]}'],
    ['json numbers keep every digit', 114, '{"big": 12345678901234567890, "f": 1.000, "e": -1.5E+300}', '{"big":12345678901234567890,"f":1.000,"e":-1.5E+300}'],
    ['json strings are copied as written', 114, '{"s" : "a  b\\n\\"c\\\\" , "u": "\\u00e9 é"}', '{"s":"a  b\\n\\"c\\\\","u":"\\u00e9 é"}'],
    ['json scalar with whitespace', 114, ' 1.10 ', '1.10'],
    ['json string scalar', 114, '"x y"', '"x y"'],
    ['json with \\r and nested empty containers', 114, '{\r\n"a": { }, "b": [ ]\r\n}', '{"a":{},"b":[]}'],
    ['jsonb is minimal too', 3802, '{"k": "v", "n": 1.50, "a": [1, {"b": null}]}', '{"k":"v","n":1.50,"a":[1,{"b":null}]}'],
    ['json[] elements are minimal (array_out quotes them, keeping their newlines)', 199, '{"{\\"a\\" :\n 1}",NULL,"[ 1,\t2 ]"}', '[{"a":1},null,[1,2]]'],
    ['jsonb[] elements are minimal', 3807, '{"{\\"a\\": 12345678901234567890}"}', '[{"a":12345678901234567890}]'],
  ];
  for (const [name, oid, text, expected] of JSON_TEXT) {
    it(name, () => {
      const fragment = jsonConverterFor(oid, catalog)(text);
      assert.equal(fragment, expected);
      assert.ok(!/[\n\r\t]/.test(fragment), 'no line break or tab outside strings');
      assert.deepEqual(converterFor(oid, catalog)(text), JSON.parse(expected));
    });
  }
});

/** A catalog whose pg_type answers come from a table, counting queries. */
function fakeCatalog(rows: Record<string, unknown>[]) {
  const queries: unknown[][] = [];
  const db: Queryable = {
    async query(_text, values) {
      queries.push(values ?? []);
      return { rows };
    },
  };
  return { catalog: new TypeCatalog(db), queries };
}

const row = (oid: number, typname: string, typtype: string, extra: Record<string, unknown> = {}) =>
  ({ oid: String(oid), typname, nspname: 'public', typtype, typelem: '0', typbasetype: '0', typdelim: ',', typcategory: 'U', is_array: false, ...extra });

describe('commit times', () => {
  it('render as timestamptz values do: UTC, six fractional digits, also before 1970 and beyond year 9999', () => {
    const at = (unixMicros: bigint) => formatPgTimestamp(unixMicros - PG_EPOCH_MICROS);
    assert.equal(at(0n), '1970-01-01T00:00:00.000000Z');
    assert.equal(formatPgTimestamp(1_234_567n), '2000-01-01T00:00:01.234567Z');
    // 1.5 ms before 1970: the millisecond part rounds down (to .998), never toward zero (.999).
    assert.equal(at(-1_500n), '1969-12-31T23:59:59.998500Z');
    assert.equal(at(-1n), '1969-12-31T23:59:59.999999Z');
    assert.equal(at(253_402_300_800_000_001n), '+010000-01-01T00:00:00.000001Z');
  });

  it('keep each microsecond when commits share a millisecond, and past the range of exact Number arithmetic', () => {
    // The millisecond's text is reused between calls; the digits after it are per call.
    assert.equal(formatPgTimestamp(1_234_567n), '2000-01-01T00:00:01.234567Z');
    assert.equal(formatPgTimestamp(1_234_001n), '2000-01-01T00:00:01.234001Z');
    assert.equal(formatPgTimestamp(1_235_000n), '2000-01-01T00:00:01.235000Z');
    // Beyond 2^53 µs the BigInt path renders it (year 2285).
    assert.equal(formatPgTimestamp(2n ** 53n + 5n), '2285-06-04T23:47:34.740997Z');
  });
});

describe('LSN text', () => {
  it('is the upper and lower halves in upper-case hex, across a change of upper half and above 2^53', () => {
    assert.equal(formatLsn(0x16b3748n), '0/16B3748');
    assert.equal(formatLsn(0xffffffffn), '0/FFFFFFFF');
    assert.equal(formatLsn(0x100000000n), '1/0');
    assert.equal(formatLsn(0x1abcdef01n), '1/ABCDEF01');
    assert.equal(formatLsn(0x16b3748n), '0/16B3748');
    assert.equal(formatLsn(2n ** 53n - 1n), '1FFFFF/FFFFFFFF');
    assert.equal(formatLsn(2n ** 64n - 1n), 'FFFFFFFF/FFFFFFFF');
  });
});

describe('TypeCatalog', () => {
  const USER_TYPES = [
    row(16390, 'mood', 'e', { typcategory: 'E' }),
    row(16389, '_mood', 'b', { typcategory: 'A', typelem: '16390', is_array: true }),
    row(16400, 'posint', 'd', { typbasetype: '23', typcategory: 'N' }),
    row(16401, 'posints', 'd', { typbasetype: '16402', typcategory: 'A' }),
    row(16402, '_posint', 'b', { typcategory: 'A', typelem: '16400', is_array: true }),
    row(16410, 'pair', 'c', { typcategory: 'C' }),
    row(16420, 'vec', 'b', { typcategory: 'A', typelem: '700', is_array: false }),
    row(23, 'int4', 'b', { nspname: 'pg_catalog', typcategory: 'N' }),
  ];

  it('looks up every missing type in one query and maps enums, domains and their arrays', async () => {
    const { catalog: types, queries } = fakeCatalog(USER_TYPES);
    await types.ensure([23, 16389, 16401, 16410, 16420, 1007]);
    assert.equal(queries.length, 1);
    assert.deepEqual(queries[0], [[16389, 16401, 16410, 16420]], 'built-ins are known without asking');
    await types.ensure([16389, 16401]);
    assert.equal(queries.length, 1, 'known types are not asked again');
    assert.deepEqual(types.info(16401), { oid: 16401, schema: 'public', name: 'posints', kind: 'domain', element: 0, base: 16402, delimiter: ',' });
    assert.deepEqual(converterFor(16389, types)('{happy,NULL,"so sad"}'), ['happy', null, 'so sad']);
    assert.deepEqual(converterFor(16400, types)('7'), 7);
    assert.deepEqual(converterFor(16401, types)('{1,2}'), [1, 2], 'a domain over an array of a domain over int4');
    assert.equal(jsonConverterFor(16401, types)('{1,NULL}'), '[1,null]');
    assert.equal(converterFor(16410, types)('(1,"a b")'), '(1,"a b")', 'composites stay text');
    assert.equal(converterFor(16420, types)('1 2'), '1 2', 'vector-like types (category A, not array_in) stay text');
  });

  it('keeps what it learned of a type whatever later Type messages say (a domain\'s names its base type)', async () => {
    const { catalog: types, queries } = fakeCatalog(USER_TYPES);
    await types.ensure([16400]);
    const before = converterFor(16400, types);
    assert.equal(before('5'), 5);
    types.noteTypeMessage({ typeOid: 16400, schema: 'pg_catalog', name: 'int4' });
    types.noteTypeMessage({ typeOid: 16400, schema: 'public', name: 'label' });
    assert.equal(types.info(16400)?.name, 'posint');
    assert.equal(converterFor(16400, types), before);
    await types.ensure([16400]);
    assert.equal(queries.length, 1, 'nothing is asked again');
  });

  it('records a type that pg_type no longer has, and no Type message named, as text, with a TYPE_UNKNOWN warning', async () => {
    const warnings: string[] = [];
    const types = new TypeCatalog({ query: async () => ({ rows: [] }) }, (message) => warnings.push(message));
    await types.ensure([17000]);
    assert.equal(types.info(17000)?.kind, 'other');
    assert.equal(converterFor(17000, types)('x'), 'x');
    assert.match(warnings.join(), /^TYPE_UNKNOWN: type OID 17000 was dropped/);
  });

  it('decodes a dropped type by its Type message: a built-in base exactly, another name as text, an array as today\'s array of that name', async () => {
    const warnings: string[] = [];
    const byName: string[] = [];
    const today = [
      row(16500, 'mood', 'e'), row(16499, '_mood', 'b', { typelem: '16500', is_array: true }),
      row(16600, '_label', 'd', { typbasetype: '23' }), // a domain that happens to be named like an array
    ];
    const db: Queryable = {
      async query(text, values) {
        if (text.includes('to_regtype')) {
          const [schemas, names] = values as string[][];
          byName.push(...names);
          return { rows: names.map((name, i) => ({ oid: today.find((t) => t.typname === name && schemas[i] === 'public')?.oid ?? null })) };
        }
        const wanted = (values as number[][])[0];
        return { rows: today.filter((t) => wanted.includes(Number(t.oid))) };
      },
    };
    const types = new TypeCatalog(db, (message) => warnings.push(message));
    types.noteTypeMessage({ typeOid: 16400, schema: 'pg_catalog', name: 'int4' }); // a domain over int4
    types.noteTypeMessage({ typeOid: 16401, schema: 'pg_catalog', name: '_int4' }); // a domain over int4[]
    types.noteTypeMessage({ typeOid: 16389, schema: 'public', name: '_mood' }); // dropped, and created again since
    types.noteTypeMessage({ typeOid: 16402, schema: 'public', name: '_posint' }); // an array of a dropped domain
    types.noteTypeMessage({ typeOid: 16403, schema: 'public', name: '_label' }); // today's _label is no array
    types.noteTypeMessage({ typeOid: 16390, schema: 'public', name: 'color' }); // an enum, say
    await types.ensure([16400, 16401, 16389, 16402, 16403, 16390]);
    assert.equal(converterFor(16400, types)('7'), 7);
    assert.equal(jsonConverterFor(16401, types)('{1,2}'), '[1,2]');
    assert.deepEqual(converterFor(16389, types)('{happy,sad}'), ['happy', 'sad']);
    assert.equal(converterFor(16402, types)('{1,2}'), '{1,2}');
    assert.equal(jsonConverterFor(16403, types)('{a}'), '"{a}"');
    assert.equal(converterFor(16390, types)('red'), 'red');
    assert.deepEqual(byName.sort(), ['_label', '_mood', '_posint'], 'only array names are looked up');
    assert.equal(warnings.length, 3, warnings.join('\n'));
    assert.match(warnings[0], /^TYPE_REPLACED: type public\._mood \(OID 16389\)/);
    assert.match(warnings[1], /^TYPE_UNKNOWN: type public\._posint \(OID 16402\)/);
    assert.match(warnings[2], /^TYPE_UNKNOWN: type public\._label \(OID 16403\)/);
  });
});
