// PostgreSQL's ISO 8601 interval output (walrelay's session uses
// intervalstyle=iso_8601: "P1DT2H") rewritten in the default "postgres"
// style Realtime shows ("1 day 02:00:00"), following EncodeInterval in
// PostgreSQL's src/backend/utils/adt/datetime.c: each non-zero field with its
// sign, a "+" before a positive field that follows a negative one, and the
// time as [-]hh:mm:ss[.ffffff] when it is non-zero or nothing else is.
const ISO_INTERVAL = /^P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)D)?(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?$/;

export function isoIntervalToPostgres(iso: string): string {
  const match = ISO_INTERVAL.exec(iso);
  if (!match) return iso;
  const [, years, months, days, hours, minutes, seconds] = match;
  let out = '';
  let isZero = true;
  let isBefore = false;
  for (const [text, unit] of [[years, 'year'], [months, 'mon'], [days, 'day']] as const) {
    const value = Number(text ?? 0);
    if (value === 0) continue;
    out += `${isZero ? '' : ' '}${isBefore && value > 0 ? '+' : ''}${value} ${unit}${value === 1 ? '' : 's'}`;
    isBefore = value < 0;
    isZero = false;
  }
  const hour = Number(hours ?? 0);
  const minute = Number(minutes ?? 0);
  const second = seconds ?? '0';
  const secondNegative = second.startsWith('-');
  const secondZero = Number(second) === 0;
  if (isZero || hour !== 0 || minute !== 0 || !secondZero) {
    const minus = hour < 0 || minute < 0 || (secondNegative && !secondZero);
    const [whole, fraction] = second.replace('-', '').split('.');
    const trimmed = (fraction ?? '').replace(/0+$/, '');
    out += `${isZero ? '' : ' '}${minus ? '-' : isBefore ? '+' : ''}${pad(Math.abs(hour))}:${pad(Math.abs(minute))}:${whole.padStart(2, '0')}${trimmed ? '.' + trimmed : ''}`;
  }
  return out;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}
