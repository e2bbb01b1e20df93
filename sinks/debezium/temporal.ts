// PostgreSQL's text forms of dates, times and intervals (walrelay's session:
// DateStyle ISO, TimeZone UTC, IntervalStyle iso_8601) read into the numbers
// Debezium sends: epoch days, microseconds since midnight or since the epoch,
// interval microseconds, and timetz as UTC text. Fractions are read digit by
// digit, whatever their count, so that renderings with trimmed or padded
// fractions read the same.

const MICROS_PER_DAY = 86_400_000_000;

/** Days since 1970-01-01 of a proleptic Gregorian date; year 0 is 1 BC. */
function epochDays(year: number, month: number, day: number): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return Math.round(date.getTime() / 86_400_000);
}

/** "YYYY-MM-DD" with an optional " BC" suffix → year (astronomical), month, day; null for infinity. */
function readDate(text: string): { year: number; month: number; day: number; rest: string } | null {
  const match = /^(\d+)-(\d\d)-(\d\d)(.*)$/.exec(text);
  if (!match) return null;
  let rest = match[4];
  let year = Number(match[1]);
  if (rest.endsWith(' BC')) {
    year = 1 - year;
    rest = rest.slice(0, -3);
  }
  return { year, month: Number(match[2]), day: Number(match[3]), rest };
}

/** "HH:MM:SS[.f…]" → microseconds since midnight, and what follows (a zone). */
function readTime(text: string): { micros: number; zone: string } | null {
  const match = /^(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(.*)$/.exec(text);
  if (!match) return null;
  const fraction = (match[4] ?? '').slice(0, 6).padEnd(6, '0');
  const micros = ((Number(match[1]) * 60 + Number(match[2])) * 60 + Number(match[3])) * 1_000_000 + Number(fraction);
  return { micros, zone: match[5] };
}

/** "+02", "-05:30", "+00:00:15", "Z", "" → seconds east of UTC. */
function zoneSeconds(zone: string): number {
  if (zone === '' || zone === 'Z') return 0;
  const match = /^([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$/.exec(zone);
  if (!match) return 0;
  const seconds = Number(match[2]) * 3600 + Number(match[3] ?? 0) * 60 + Number(match[4] ?? 0);
  return match[1] === '-' ? -seconds : seconds;
}

export function dateToEpochDays(text: string): number | null {
  const date = readDate(text);
  return date ? epochDays(date.year, date.month, date.day) : null;
}

export function timeToMicros(text: string): number | null {
  return readTime(text)?.micros ?? null;
}

/** Microseconds since the epoch of a timestamp (with or without zone); null for ±infinity. */
export function timestampToEpochMicros(text: string): number | null {
  const separator = text.indexOf('T') > 0 ? 'T' : ' ';
  const date = readDate(text.replace(separator, ' ').replace(/ BC$/, ' BC'));
  if (!date) return null;
  const time = readTime(date.rest.slice(1));
  if (!time) return null;
  const zone = time.zone.endsWith(' BC') ? time.zone.slice(0, -3) : time.zone;
  return epochDays(date.year, date.month, date.day) * MICROS_PER_DAY + time.micros - zoneSeconds(zone) * 1_000_000;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** Microseconds since the epoch → "2026-11-22T10:00:00.100000Z" (Debezium's ZonedTimestamp: always six digits). */
export function epochMicrosToZoned(micros: number): string {
  const millis = Math.floor(micros / 1000);
  const date = new Date(millis);
  const year = date.getUTCFullYear();
  const yearText = year >= 0 && year <= 9999 ? pad(year, 4) : (year < 0 ? '-' : '+') + pad(Math.abs(year), 6);
  const fraction = pad(((micros % 1_000_000) + 1_000_000) % 1_000_000, 6);
  return `${yearText}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}.${fraction}Z`;
}

/** "10:15:30.5+02" → "08:15:30.5Z": Debezium's ZonedTime (ISO_OFFSET_TIME in UTC, fraction without trailing zeros). */
export function timetzToUtc(text: string): string | null {
  const time = readTime(text);
  if (!time) return null;
  let micros = (time.micros - zoneSeconds(time.zone) * 1_000_000) % MICROS_PER_DAY;
  if (micros < 0) micros += MICROS_PER_DAY;
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = micros % 1_000_000;
  const clock = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`;
  return clock + (fraction === 0 ? '' : '.' + pad(fraction, 6).replace(/0+$/, '')) + 'Z';
}

/** Debezium's MicroDuration: a month is 365.25 / 12 days, computed in doubles as Debezium does. */
const DAYS_PER_MONTH = 365.25 / 12;

/**
 * An interval in ISO 8601 ("P1Y2M3DT4H5M6.789S", fields signed separately)
 * or PostgreSQL's own style ("1 year 2 mons 3 days 04:05:06.789") → µs.
 */
export function intervalToMicros(text: string): number | null {
  const parts = { years: 0, months: 0, days: 0, hours: 0, minutes: 0, seconds: 0 };
  if (text.startsWith('P') || text.startsWith('-P')) {
    const sign = text.startsWith('-') ? -1 : 1;
    const match = /^-?P(?:(-?[\d.]+)Y)?(?:(-?[\d.]+)M)?(?:(-?[\d.]+)W)?(?:(-?[\d.]+)D)?(?:T(?:(-?[\d.]+)H)?(?:(-?[\d.]+)M)?(?:(-?[\d.]+)S)?)?$/.exec(text);
    if (!match) return null;
    const [, y, mo, w, d, h, mi, s] = match.map((value) => (value === undefined ? 0 : Number(value)));
    Object.assign(parts, { years: sign * y, months: sign * mo, days: sign * (d + 7 * w), hours: sign * h, minutes: sign * mi, seconds: sign * s });
  } else {
    const units: Record<string, keyof typeof parts> = { year: 'years', years: 'years', mon: 'months', mons: 'months', day: 'days', days: 'days' };
    for (const token of text.matchAll(/(-?\d+) (years?|mons?|days?)|([+-])?(\d+):(\d\d):(\d\d(?:\.\d+)?)/g)) {
      if (token[1] !== undefined) parts[units[token[2]]] += Number(token[1]);
      else {
        const sign = token[3] === '-' ? -1 : 1;
        parts.hours += sign * Number(token[4]);
        parts.minutes += sign * Number(token[5]);
        parts.seconds += sign * Number(token[6]);
      }
    }
  }
  const days = (parts.years * 12 + parts.months) * DAYS_PER_MONTH + parts.days;
  const seconds = ((days * 24 + parts.hours) * 60 + parts.minutes) * 60;
  // Whole seconds and the fraction apart, so that 6.789 s is 6789000 µs, not 6788999.
  const wholeSeconds = Math.trunc(parts.seconds);
  const fractionMicros = Math.round((parts.seconds - wholeSeconds) * 1_000_000);
  return Math.trunc((seconds + wholeSeconds) * 1_000_000) + fractionMicros;
}
