// Values as Supabase Realtime renders them, checked against PostgreSQL 15
// itself: each sample goes through walrelay's own mapping (text output of a
// walsender-like session: intervalstyle iso_8601, bytea hex, UTC) and then
// the Realtime rendering, and PostgreSQL compares the result with
// to_jsonb(value) in a Supabase-like session (intervalstyle postgres, UTC)
// as jsonb, where numbers compare exactly (bytea aside: see its test). Also the interval rewrite over
// many shapes, and the frame serializers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.js';
import { TypeCatalog } from '../relay/source/type-catalog.js';
import { converterFor } from '../relay/source/values.js';
import { rendererFor } from '../sinks/websocket/protocols/realtime/values.js';
import { isoIntervalToPostgres } from '../sinks/websocket/protocols/realtime/interval.js';
import { decode, encode } from '../sinks/websocket/protocols/realtime/serializer.js';
import { commitTimestamp } from '../sinks/websocket/protocols/realtime/change.js';

const SAMPLES: [string, string][] = [
  ['int2', '-32768'], ['int4', '2147483647'], ['int8', '9223372036854775807'], ['int8', '-42'],
  ['numeric', '129.90'], ['numeric', '123456789012345678901234567890.000000001'], ['numeric', 'NaN'],
  ['float8', '1.5'], ['float8', 'Infinity'], ['float4', '-Infinity'], ['float8', 'NaN'],
  ['bool', 'true'], ['text', 'héllo "quoted"\n'], ['jsonb', '{"a":[1,2,{"b":null}]}'], ['json', '{"x": 1}'],
  ['timestamptz', '2026-11-22 08:00:00.123456+00'], ['timestamptz', '2026-11-22 08:00:00+02'], ['timestamp', '2026-11-22 10:00:00.5'],
  ['date', '2026-11-22'], ['time', '10:00:01'], ['timetz', '10:00:01+02'], ['timetz', '10:00:01.25+00'], ['timetz', '10:00:01+05:30'],
  ['interval', '1 day 2 hours'], ['interval', '-1 year +2 mons -3 days 04:05:06.789'], ['interval', '0'], ['interval', '-00:00:00.5'],
  ['interval', '100 hours 3 minutes'], ['interval', '1 mon -1 day'], ['interval', '-1 days -02:00:00'],
  ['uuid', '0a5b5c02-8c3e-4a1e-9c8b-3c0d8b0b6f11'], ['money', '12.50'],
  ['int4range', '[1,5)'], ['_int4', '{1,2,NULL}'], ['_int8', '{9223372036854775807,-1}'], ['_numeric', '{1.50,NaN}'],
  ['_timestamptz', '{"2026-11-22 08:00:00+00"}'], ['_interval', '{"1 day","-01:00:00"}'], ['_text', '{a,"b c",NULL}'], ['_bool', '{t,f}'],
];

describe('Realtime value rendering (PostgreSQL 15)', () => {
  let server: TestPostgres;
  let walsenderLike: pg.Client;
  let supabaseLike: pg.Client;

  before(async () => {
    server = await startPostgres('pg15');
    walsenderLike = new pg.Client({ connectionString: server.url, options: '-c datestyle=ISO,YMD -c timezone=UTC -c extra_float_digits=3 -c intervalstyle=iso_8601 -c bytea_output=hex' });
    supabaseLike = new pg.Client({ connectionString: server.url, options: '-c timezone=UTC -c intervalstyle=postgres' });
    await Promise.all([walsenderLike.connect(), supabaseLike.connect()]);
  });

  after(async () => {
    await Promise.all([walsenderLike?.end(), supabaseLike?.end()]);
    await server?.stop();
  });

  it('renders every sample as to_jsonb(value) does', async () => {
    const catalog = new TypeCatalog(walsenderLike);
    for (const [type, literal] of SAMPLES) {
      const typeName = type.startsWith('_') ? `${type.slice(1)}[]` : type;
      // The type's output function (what pgoutput sends), not a cast to text (which prints bool as 'true').
      const { rows: [sample] } = await walsenderLike.query({
        text: `SELECT $1::${typeName} AS text, '${typeName}'::regtype::oid::int AS oid`, values: [literal],
        types: { getTypeParser: (oid: number) => (oid === 23 ? Number : (text: string) => text) } as any,
      });
      await catalog.ensure([sample.oid]);
      const walrelayValue = converterFor(sample.oid, catalog)(sample.text);
      const rendered = rendererFor(type)(walrelayValue);
      const { rows: [check] } = await supabaseLike.query(`SELECT $1::jsonb = to_jsonb($2::${typeName}) AS same, to_jsonb($2::${typeName})::text AS expected`, [rendered, literal]);
      assert.ok(check.same, `${type} ${literal}: walrelay ${JSON.stringify(walrelayValue)} rendered ${rendered}, Realtime ${check.expected}`);
    }
  });

  it('renders bytea as hex digits without \\x, as wal2json hands it to Realtime', () => {
    // Realtime casts wal2json's value, which drops the "\x" of bytea's hex output, so the client sees hex digits.
    assert.equal(rendererFor('bytea')(Buffer.from([1, 2, 3, 4, 5]).toString('base64')), '"0102030405"');
    assert.equal(rendererFor('_bytea')([Buffer.from([255]).toString('base64'), null]), '["ff",null]');
  });

  it('rewrites ISO 8601 intervals in the postgres style, as PostgreSQL prints them', async () => {
    const intervals = ['1 year', '2 years 1 mon', '-1 mons', '3 days', '-3 days +04:00:00', '1 year -1 day', '00:00:01.000001', '-00:01:00', '48:00:00',
      '1 day -00:00:00.25', '-2 years -3 mons -4 days -05:06:07.5', '0', '1 mon 1 day 00:00:00.1'];
    for (const interval of intervals) {
      const { rows: [iso] } = await walsenderLike.query('SELECT $1::interval::text AS text', [interval]);
      const { rows: [postgres] } = await supabaseLike.query('SELECT $1::interval::text AS text', [interval]);
      assert.equal(isoIntervalToPostgres(iso.text), postgres.text, `${interval} (ISO ${iso.text})`);
    }
  });
});

describe('Realtime frames', () => {
  it('decodes and encodes both serializers', () => {
    assert.deepEqual(decode('2.0.0', '["1","2","realtime:room","phx_join",{"config":{}}]'), { joinRef: '1', ref: '2', topic: 'realtime:room', event: 'phx_join', payload: { config: {} } });
    assert.deepEqual(decode('1.0.0', '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"7"}'), { joinRef: null, ref: '7', topic: 'phoenix', event: 'heartbeat', payload: {} });
    assert.throws(() => decode('2.0.0', '{"topic":"x"}'), /join_ref, ref, topic, event, payload/);
    assert.equal(encode('2.0.0', null, '7', '"phoenix"', 'phx_reply', '{"status":"ok","response":{}}'), '[null,"7","phoenix","phx_reply",{"status":"ok","response":{}}]');
    assert.deepEqual(JSON.parse(encode('1.0.0', '1', '1', '"realtime:a"', 'phx_close', '{}')), { join_ref: '1', ref: '1', topic: 'realtime:a', event: 'phx_close', payload: {} });
  });

  it('cuts commit times to milliseconds in UTC', () => {
    assert.equal(commitTimestamp('2026-11-22T10:00:00.123456Z'), '2026-11-22T10:00:00.123Z');
  });
});
