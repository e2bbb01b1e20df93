// The README's value mapping ("Value mapping"), written a second time, from
// the README rather than from relay/source/values.ts, to turn test_decoding's
// text values into the JSON walrelay must deliver. Numbers come out as
// JsonNumber (digits as written), to be compared with events read by
// parseLossless. Simple and slow on purpose: it is the reference.
import { JsonNumber, parseLossless } from './lossless-json.js';

/** User types of a corpus: a domain → its base type's name; an enum, composite or range → 'text'. */
export type UserTypes = Record<string, string>;

/** PostgreSQL's text output of a value of type `type` (format_type_be's name) → the documented JSON value. */
export function documentedValue(type: string, text: string, userTypes: UserTypes = {}): unknown {
  const resolved = resolveType(type, userTypes);
  if (resolved.endsWith('[]')) {
    const element = resolved.slice(0, -2);
    return mapArray(parseArray(text, element === 'box' ? ';' : ','), (item) => documentedValue(element, item, userTypes));
  }
  return documentedScalar(resolved, text);
}

function resolveType(type: string, userTypes: UserTypes): string {
  let resolved = type;
  for (let depth = 0; userTypes[resolved] !== undefined && depth < 10; depth++) resolved = userTypes[resolved];
  return resolved;
}

function documentedScalar(type: string, text: string): unknown {
  switch (type) {
    case 'smallint': case 'integer': case 'oid':
      return new JsonNumber(text);
    case 'real': case 'double precision':
      return ['NaN', 'Infinity', '-Infinity'].includes(text) ? text : new JsonNumber(text);
    case 'bigint': case 'numeric':
      return text;
    case 'boolean':
      return text === 't' || text === 'true';
    case 'json': case 'jsonb':
      return parseLossless(minimalJson(text));
    case 'bytea':
      return Buffer.from(text.replace(/^\\x/, ''), 'hex').toString('base64');
    case 'date': return isoDate(text);
    case 'time without time zone': return isoTime(text, false);
    case 'time with time zone': return isoTime(text, true);
    case 'timestamp without time zone': return isoTimestamp(text, false);
    case 'timestamp with time zone': return isoTimestamp(text, true);
    default:
      return text;
  }
}

/** JSON text without whitespace between tokens; string and number tokens untouched. */
export function minimalJson(text: string): string {
  return (text.match(/"(?:[^"\\]|\\.)*"|[^\s"]+/gs) ?? []).join('');
}

// Dates and times: ISO 8601 with 'T', six fractional digits, 'Z' for UTC,
// astronomical years (1 BC = 0000) with four digits from 0000 to 9999 and
// ±YYYYYY (at least six digits) outside; 'infinity' and '-infinity' as they are.

function year(digits: string, bc: boolean): string {
  const astronomical = bc ? 1 - Number(digits) : Number(digits);
  if (astronomical >= 0 && astronomical <= 9999) return String(astronomical).padStart(4, '0');
  return (astronomical < 0 ? '-' : '+') + String(Math.abs(astronomical)).padStart(6, '0');
}

function zone(offset: string): string {
  if (/^[+-]00$/.test(offset)) return 'Z';
  return /^[+-]\d\d$/.test(offset) ? `${offset}:00` : offset;
}

function isoDate(text: string): string {
  if (text === 'infinity' || text === '-infinity') return text;
  const match = /^(\d{4,})(-\d\d-\d\d)( BC)?$/.exec(text);
  if (!match) throw new Error(`not a date: ${text}`);
  return year(match[1], match[3] !== undefined) + match[2];
}

function isoTime(text: string, withZone: boolean): string {
  const match = /^(\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?([+-]\d\d(?::\d\d){0,2})?$/.exec(text);
  if (!match || (match[3] !== undefined) !== withZone) throw new Error(`not a time${withZone ? ' with zone' : ''}: ${text}`);
  return `${match[1]}.${(match[2] ?? '').padEnd(6, '0')}${withZone ? zone(match[3]) : ''}`;
}

function isoTimestamp(text: string, withZone: boolean): string {
  if (text === 'infinity' || text === '-infinity') return text;
  const match = /^(\d{4,})(-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:[+-]\d\d(?::\d\d){0,2})?)( BC)?$/.exec(text);
  if (!match) throw new Error(`not a timestamp: ${text}`);
  return `${year(match[1], match[4] !== undefined)}${match[2]}T${isoTime(match[3], withZone)}`;
}

type Nested = string | null | Nested[];

function mapArray(items: Nested[], map: (item: string) => unknown): unknown[] {
  return items.map((item) => (item === null ? null : Array.isArray(item) ? mapArray(item, map) : map(item)));
}

/** array_out's text: {a,"b c",NULL,{…}}, optional [l:u]= bounds (dropped), " and \ escaped inside quotes. */
export function parseArray(text: string, delimiter: string): Nested[] {
  let i = text.startsWith('[') ? text.indexOf('=') + 1 : 0;
  const level = (): Nested[] => {
    if (text[i++] !== '{') throw new Error(`array literal: '{' expected at ${i - 1} of ${text}`);
    const items: Nested[] = [];
    if (text[i] === '}') { i++; return items; }
    for (;;) {
      if (text[i] === '{') {
        items.push(level());
      } else if (text[i] === '"') {
        let value = '';
        for (i++; text[i] !== '"'; i++) value += text[i] === '\\' ? text[++i] : text[i];
        i++;
        items.push(value);
      } else {
        let value = '';
        while (text[i] !== delimiter && text[i] !== '}') value += text[i++];
        items.push(value === 'NULL' ? null : value);
      }
      const next = text[i++];
      if (next === '}') return items;
      if (next !== delimiter) throw new Error(`array literal: '${delimiter}' or '}' expected at ${i - 1} of ${text}`);
    }
  };
  return level();
}
