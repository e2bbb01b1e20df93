// A strict JSON parser that keeps every number as the text it was written
// in, so that tests can compare 12345678901234567890 or 1.000 digit for
// digit (JSON.parse would round the one and shorten the other). Anything that
// is not valid JSON throws, naming the position.

/** A JSON number, as written. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON forbids raw control characters in strings; this is that rule
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const SPACE = /[ \t\n\r]*/y;

export function parseLossless(text: string): unknown {
  let position = 0;

  const fail = (expected: string): never => {
    throw new SyntaxError(`invalid JSON: expected ${expected} at ${position} in ${JSON.stringify(text.slice(Math.max(0, position - 40), position + 40))}`);
  };
  const skipSpace = () => {
    SPACE.lastIndex = position;
    SPACE.exec(text);
    position = SPACE.lastIndex;
  };
  const token = (pattern: RegExp): string | null => {
    pattern.lastIndex = position;
    const match = pattern.exec(text);
    if (!match) return null;
    position = pattern.lastIndex;
    return match[0];
  };

  function value(): unknown {
    skipSpace();
    const c = text[position];
    if (c === '{') {
      position++;
      const object: Record<string, unknown> = {};
      skipSpace();
      if (text[position] === '}') { position++; return object; }
      for (;;) {
        skipSpace();
        const key = token(STRING) ?? fail('a string key');
        skipSpace();
        if (text[position++] !== ':') fail("':'");
        Object.defineProperty(object, JSON.parse(key), { value: value(), enumerable: true, writable: true, configurable: true });
        skipSpace();
        const next = text[position++];
        if (next === '}') return object;
        if (next !== ',') fail("',' or '}'");
      }
    }
    if (c === '[') {
      position++;
      const array: unknown[] = [];
      skipSpace();
      if (text[position] === ']') { position++; return array; }
      for (;;) {
        array.push(value());
        skipSpace();
        const next = text[position++];
        if (next === ']') return array;
        if (next !== ',') fail("',' or ']'");
      }
    }
    if (c === '"') return JSON.parse(token(STRING) ?? fail('a valid string'));
    for (const [literal, result] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(literal, position)) { position += literal.length; return result; }
    }
    return new JsonNumber(token(NUMBER) ?? fail('a value'));
  }

  const result = value();
  skipSpace();
  if (position !== text.length) fail('the end');
  return result;
}
