// A converter of a built-in type must fail with VALUE_MALFORMED, never with
// a SyntaxError or a RangeError: json's JSON.parse, for one, throws on text
// that is not JSON, which PostgreSQL never sends but a corrupted stream can
// (test/pgoutput-fuzz.test.ts).
//
// The text is not checked against the type's form on the way (digits for
// integers, JSON for json, ...): that costs a quarter of the row encoding,
// and a value damaged inside intact framing can as well be damaged into
// another valid value, which no check sees. README "Decoder robustness".
import { WalrelayError } from '../errors.js';
import { DECODE_ERROR_HINT } from './pgoutput.js';

export function guarded<T extends (text: string) => unknown>(typeOid: number, convert: T): T {
  return ((text: string) => {
    try {
      return convert(text);
    } catch (error) {
      if (error instanceof WalrelayError) throw error;
      throw new WalrelayError('VALUE_MALFORMED', `a value of type ${typeOid} is not PostgreSQL's text form of the type (${(error as Error).message}): ${JSON.stringify(text.slice(0, 80))}`,
        { hint: DECODE_ERROR_HINT, cause: error });
    }
  }) as T;
}
