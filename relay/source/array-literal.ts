// Parses PostgreSQL's text form of arrays: {1,2,NULL}, {{1,2},{3,4}},
// {"a b","c\"d"}, [0:1]={1,2} (explicit bounds are dropped: JSON arrays start
// at 0 whatever the lower bound), with a custom delimiter for types such as
// box (';'). Only what array_out writes needs handling: elements are quoted
// when they contain a delimiter, brace, quote, backslash or whitespace, or
// spell NULL, and inside quotes only " and \ are escaped.
import { WalrelayError } from '../errors.js';

/** PostgreSQL's MAXDIM: deeper nesting is corruption, and would otherwise recurse until the stack overflows. */
const MAX_DIMENSIONS = 6;

export type ArrayItem<T> = T | null | ArrayItem<T>[];

export function parseArrayLiteral<T = unknown>(text: string, convert: (element: string) => T, delimiter = ','): ArrayItem<T>[] {
  let position = 0;
  if (text.charCodeAt(0) === 0x5b) { // [lower:upper]...={...}
    const equals = text.indexOf('=');
    if (equals < 0) throw malformed(text, 0, "'=' after the dimensions");
    position = equals + 1;
  }
  const delimiterCode = delimiter.charCodeAt(0);
  const length = text.length;

  function parseLevel(depth: number): ArrayItem<T>[] {
    if (text.charCodeAt(position) !== 0x7b) throw malformed(text, position, "'{'");
    if (depth > MAX_DIMENSIONS) throw malformed(text, position, `at most ${MAX_DIMENSIONS} dimensions (PostgreSQL's limit)`);
    position++;
    const items: ArrayItem<T>[] = [];
    if (text.charCodeAt(position) === 0x7d) { // }
      position++;
      return items;
    }
    for (;;) {
      const code = text.charCodeAt(position);
      if (code === 0x7b) { // {
        items.push(parseLevel(depth + 1));
      } else if (code === 0x22) { // "
        position++;
        let value = '';
        let start = position;
        for (;;) {
          if (position >= length) throw malformed(text, position, 'a closing quote');
          const c = text.charCodeAt(position);
          if (c === 0x5c) { // a backslash escapes the next character
            if (position + 1 >= length) throw malformed(text, position, 'a character after the backslash');
            value += text.slice(start, position) + text[position + 1];
            position += 2;
            start = position;
          } else if (c === 0x22) {
            value += text.slice(start, position);
            position++;
            break;
          } else {
            position++;
          }
        }
        items.push(convert(value));
      } else {
        const start = position;
        while (position < length) {
          const c = text.charCodeAt(position);
          if (c === delimiterCode || c === 0x7d) break;
          position++;
        }
        if (position === start) throw malformed(text, position, 'an element');
        const raw = text.slice(start, position);
        items.push(raw.length === 4 && (raw === 'NULL' || raw.toUpperCase() === 'NULL') ? null : convert(raw));
      }
      if (position >= length) throw malformed(text, position, "',' or '}'");
      const next = text.charCodeAt(position);
      position++;
      if (next === 0x7d) return items;
      if (next !== delimiterCode) throw malformed(text, position - 1, `'${delimiter}' or '}'`);
    }
  }

  const result = parseLevel(1);
  if (position !== length) throw malformed(text, position, 'the end of the literal');
  return result;
}

/** Nested arrays of JSON fragments (from a JSON-fragment element converter) → one JSON array text. */
export function joinJsonArray(items: ArrayItem<string>[]): string {
  let json = '[';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) json += ',';
    const item = items[i];
    json += item === null ? 'null' : typeof item === 'string' ? item : joinJsonArray(item);
  }
  return json + ']';
}

function malformed(text: string, position: number, expected: string): WalrelayError {
  return new WalrelayError('VALUE_MALFORMED', `cannot parse array literal: expected ${expected} at character ${position} of ${JSON.stringify(text.slice(0, 80))}`, { retriable: false });
}
