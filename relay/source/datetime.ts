// Dates and times in PostgreSQL's text output (datestyle ISO, timezone UTC,
// as the replication session sets them) → one ISO 8601 rendering per type
// (README "Value mapping"). PostgreSQL prints "2026-11-22 10:00:00.5+00",
// "0044-03-15 BC", "10000-01-01", "10:00:00+02": fractional digits trimmed,
// BC as a suffix. walrelay writes a 'T', six fractional digits on every time
// of day, 'Z' for UTC and ±HH:MM for other offsets, and astronomical years:
// 0000–9999 as four digits (1 BC is 0000), others in the expanded form
// ±YYYYYY that ECMAScript's Date.parse reads (44 BC is -000043; a date may
// need a seventh digit). 'infinity' and '-infinity' stay as they are.
// Commit times, which pgoutput sends as microseconds, get the same rendering.
import { PG_EPOCH_MICROS } from './replication-stream.js';

function isoYear(year: number): string {
  if (year >= 0 && year <= 9999) return String(year).padStart(4, '0');
  return (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(6, '0');
}

/** "2026-11-22", "0044-03-15" with BC, "10000-01-01" → ISO 8601 with an astronomical year. */
function isoDate(ymd: string, bc: boolean): string {
  const dash = ymd.indexOf('-');
  if (dash === 4 && !bc) return ymd;
  const year = Number(ymd.slice(0, dash));
  return isoYear(bc ? 1 - year : year) + ymd.slice(dash);
}

/** "+00" → "Z", "+05" → "+05:00"; "+05:30" and "+05:30:15" as PostgreSQL printed them. */
function isoZone(zone: string): string {
  if (zone === '+00' || zone === '-00') return 'Z';
  return zone.length === 3 ? zone + ':00' : zone;
}

/** "10:00:00[.f…][zone]" → "10:00:00.ffffff[zone]", six fractional digits. */
function isoTime(time: string, withZone: boolean): string {
  let end = 8; // "HH:MM:SS"
  let fraction = '.000000';
  if (time.charCodeAt(8) === 0x2e) {
    end = 9;
    while (end < time.length && time.charCodeAt(end) >= 0x30 && time.charCodeAt(end) <= 0x39) end++;
    fraction = time.slice(8, end).padEnd(7, '0');
  }
  const clock = time.slice(0, 8) + fraction;
  return withZone && end < time.length ? clock + isoZone(time.slice(end)) : clock;
}

function isInfinity(text: string): boolean {
  const first = text.charCodeAt(0);
  return first < 0x30 || first > 0x39; // 'infinity', '-infinity'
}

/**
 * "2026-11-22 10:00:00.5+00" → "2026-11-22T10:00:00.500000Z" (withZone),
 * "2026-11-22 10:00:00.123456" → "2026-11-22T10:00:00.123456".
 */
export function timestampToIso(text: string, withZone: boolean): string {
  const length = text.length;
  // The common case: microseconds, a four-digit AD year, UTC. "…59.999 BC"
  // has the same length as "…59.999000", hence the last digit is checked.
  if (text.charCodeAt(4) === 0x2d && text.charCodeAt(19) === 0x2e) {
    if (!withZone && length === 26 && text.charCodeAt(25) !== 0x43) return text.slice(0, 10) + 'T' + text.slice(11);
    if (withZone && length === 29 && text.endsWith('+00')) return text.slice(0, 10) + 'T' + text.slice(11, 26) + 'Z';
  }
  if (isInfinity(text)) return text;
  const bc = text.endsWith(' BC');
  const space = text.indexOf(' ');
  return isoDate(text.slice(0, space), bc) + 'T' + isoTime(text.slice(space + 1, bc ? length - 3 : length), withZone);
}

/** date: "2026-11-22", "0044-03-15 BC" → ISO 8601 (see above). */
export function dateToIso(text: string): string {
  if (isInfinity(text)) return text;
  const bc = text.endsWith(' BC');
  return isoDate(bc ? text.slice(0, -3) : text, bc);
}

/** time and timetz: six fractional digits, ISO offsets. */
export function timeToIso(text: string, withZone: boolean): string {
  return isoTime(text, withZone);
}

const PG_EPOCH_MICROS_NUMBER = Number(PG_EPOCH_MICROS);
/** |pgMicros| below this keeps pgMicros + the epoch exact as a Number. */
const MAX_EXACT_PG_MICROS = BigInt(Number.MAX_SAFE_INTEGER) - 2n * PG_EPOCH_MICROS;
/** "000" to "999". */
const MICROS_TEXT = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** The commit time's millisecond last formatted (Date's ISO text without its 'Z'): commits come many per millisecond. */
let lastMillis = Number.NaN;
let lastMillisText = '';

/** A commit time (microseconds since 2000-01-01) as ISO 8601 UTC with six fractional digits, as timestamptz values. */
export function formatPgTimestamp(pgMicros: bigint): string {
  // Once per transaction: in Number arithmetic while exact (until the year 2255), the millisecond's text reused.
  if (pgMicros <= MAX_EXACT_PG_MICROS && pgMicros >= -MAX_EXACT_PG_MICROS) {
    const unixMicros = Number(pgMicros) + PG_EPOCH_MICROS_NUMBER;
    const micros = ((unixMicros % 1000) + 1000) % 1000;
    const millis = (unixMicros - micros) / 1000;
    if (millis !== lastMillis) {
      lastMillis = millis;
      lastMillisText = new Date(millis).toISOString().slice(0, -1);
    }
    return `${lastMillisText}${MICROS_TEXT[micros]}Z`;
  }
  const unixMicros = pgMicros + PG_EPOCH_MICROS;
  const micros = ((unixMicros % 1000n) + 1000n) % 1000n;
  const millis = (unixMicros - micros) / 1000n; // floor, also before 1970 (BigInt division truncates toward zero)
  const iso = new Date(Number(millis)).toISOString();
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}
