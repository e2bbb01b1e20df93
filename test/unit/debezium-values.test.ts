// Debezium's number and time encodings, against values Debezium Server 3.6.1
// (JDK 25) printed in the live comparison or that Java's Double/Float.toString
// and BigInteger.toByteArray give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { javaDouble, javaFloat, parseDecimal, plainString, rescale, stripTrailingZeros, unscaledBase64 } from '../../sinks/debezium/java-numbers.js';
import { dateToEpochDays, epochMicrosToZoned, intervalToMicros, timeToMicros, timestampToEpochMicros, timetzToUtc } from '../../sinks/debezium/temporal.js';

test('doubles print as Java Double.toString: plain between 1e-3 and 1e7, else d.dddE±n', () => {
  const cases: [number, string][] = [
    [1, '1.0'], [100, '100.0'], [0.1, '0.1'], [1e7, '1.0E7'], [9999999, '9999999.0'], [0.001, '0.001'], [0.0001, '1.0E-4'],
    [1.25e-7, '1.25E-7'], [-1.25e-7, '-1.25E-7'], [1e15, '1.0E15'], [123456789, '1.23456789E8'], [0, '0.0'], [-0, '-0.0'],
    [4.9e-324, '4.9E-324'], [1.7976931348623157e308, '1.7976931348623157E308'], [NaN, '"NaN"'], [-Infinity, '"-Infinity"'],
  ];
  for (const [value, java] of cases) assert.equal(javaDouble(value), java, String(value));
});

test('reals print as Java Float.toString: the shortest digits of the float, not of the double', () => {
  const cases: [number, string][] = [
    [Math.fround(0.1), '0.1'], [Math.fround(1.5), '1.5'], [100, '100.0'], [Math.fround(1e20), '1.0E20'],
    [Math.fround(3.4028235e38), '3.4028235E38'], [Math.fround(1.4e-45), '1.4E-45'], [16777216, '1.6777216E7'], [Math.fround(-2.5e-3), '-0.0025'],
  ];
  for (const [value, java] of cases) assert.equal(javaFloat(value), java, String(value));
});

test('decimals travel as BigInteger.toByteArray in base64', () => {
  const cases: [bigint, string][] = [[12345678n, 'ALxhTg=='], [-1n, '/w=='], [0n, 'AA=='], [123456n, 'AeJA'], [128n, 'AIA='], [-128n, 'gA=='], [-129n, '/38='], [1050n, 'BBo=']];
  for (const [value, base64] of cases) assert.equal(unscaledBase64(value), base64, String(value));
  assert.deepEqual(stripTrailingZeros(parseDecimal('1234.5600')!), { unscaled: 123456n, scale: 2 });
  assert.deepEqual(stripTrailingZeros(parseDecimal('1000')!), { unscaled: 1000n, scale: 0 });
  assert.equal(plainString(rescale(parseDecimal('-0.5')!, 3)), '-0.500');
  assert.equal(plainString(rescale(parseDecimal('2.345')!, 2)), '2.35');
  assert.equal(parseDecimal('NaN'), null);
});

test('dates, times and timestamps read whatever the fraction digits, with zones and BC years', () => {
  assert.equal(dateToEpochDays('2026-11-22'), 20779);
  assert.equal(dateToEpochDays('1969-12-31'), -1);
  assert.equal(dateToEpochDays('0001-01-01 BC'), dateToEpochDays('0001-01-01')! - 366);
  assert.equal(timeToMicros('10:15:30.123456'), 36930123456);
  assert.equal(timeToMicros('10:15:30.5'), 36930500000);
  assert.equal(timeToMicros('24:00:00'), 86_400_000_000);
  assert.equal(timestampToEpochMicros('2026-11-22 10:00:00.123456'), 1795341600123456);
  assert.equal(timestampToEpochMicros('2026-11-22T10:00:00.123456'), 1795341600123456);
  assert.equal(timestampToEpochMicros('2026-11-22 12:00:00.1+02'), timestampToEpochMicros('2026-11-22T10:00:00.100000Z'));
  assert.equal(timestampToEpochMicros('1960-01-01 00:00:00'), -315619200000000);
  assert.equal(timestampToEpochMicros('infinity'), null);
  assert.equal(epochMicrosToZoned(1795341600100000), '2026-11-22T10:00:00.100000Z');
  assert.equal(epochMicrosToZoned(-1), '1969-12-31T23:59:59.999999Z');
  assert.equal(timetzToUtc('10:15:30.5+02'), '08:15:30.5Z');
  assert.equal(timetzToUtc('23:30:00-05:30'), '05:00:00Z');
  assert.equal(timetzToUtc('00:00:00+00'), '00:00:00Z');
});

test('intervals are microseconds with 365.25/12-day months, from ISO 8601 or PostgreSQL style', () => {
  assert.equal(intervalToMicros('P1Y2M3DT4H5M6.789S'), 37091106789000);
  assert.equal(intervalToMicros('1 year 2 mons 3 days 04:05:06.789'), 37091106789000);
  assert.equal(intervalToMicros('P-1DT-1S'), -86401000000);
  assert.equal(intervalToMicros('-1 days -00:00:01'), -86401000000);
  assert.equal(intervalToMicros('PT0S'), 0);
});

test('the sink key debezium takes Debezium\'s knobs with Debezium\'s defaults, and names a wrong one', async () => {
  const { parseConfig } = await import('../../config/load.js');
  const config = parseConfig({ source: { url: 'postgres://u@127.0.0.1:1/db' }, sinks: [{ type: 'redis', format: 'debezium', debezium: {} }] }, {});
  assert.deepEqual(config.sinks[0].debezium, { decimalHandlingMode: 'precise', timePrecisionMode: 'adaptive', tombstonesOnDelete: true, topicPrefix: 'walrelay', schemas: false });
  assert.throws(
    () => parseConfig({ source: { url: 'postgres://u@127.0.0.1:1/db' }, sinks: [{ type: 'kafka', brokers: ['127.0.0.1:9092'], format: 'debezium', debezium: { decimalHandlingMode: 'exact' } }] }, {}),
    (error: Error) => /sinks\[0\]\.debezium\.decimalHandlingMode/.test(error.message) && /precise, string or double/.test(error.message),
  );
});
