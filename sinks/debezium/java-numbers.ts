// Numbers as Debezium's JSON converter prints them: Jackson writes a Java
// double or float with Double.toString / Float.toString (shortest digits
// that read back to the same value, JDK 19+), which differs from
// JavaScript's: "1.0" not "1", "1.0E20" not "100000000000000000000",
// "1.25E-7" not "1.25e-7". Decimals travel as Java's BigInteger.toByteArray
// (big-endian two's complement, fewest bytes), base64-encoded.

/** Java's layout of shortest digits: plain for 1e-3 ≤ |x| < 1e7, else d.dddE±n. */
function javaLayout(value: number, exponential: string): string {
  if (Number.isNaN(value)) return '"NaN"';
  if (value === Infinity) return '"Infinity"';
  if (value === -Infinity) return '"-Infinity"';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const negative = exponential.startsWith('-');
  const [mantissa, exponentText] = (negative ? exponential.slice(1) : exponential).split('e');
  const digits = mantissa.replace('.', '').replace(/(.)0+$/, '$1');
  const exponent = Number(exponentText);
  let text: string;
  if (exponent >= -3 && exponent < 7) {
    if (exponent >= 0) {
      const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
      text = whole + '.' + (digits.slice(exponent + 1) || '0');
    } else {
      text = '0.' + '0'.repeat(-exponent - 1) + digits;
    }
  } else {
    text = digits[0] + '.' + (digits.slice(1) || '0') + 'E' + exponent;
  }
  return negative ? '-' + text : text;
}

/**
 * Java picks the shortest digits that read back, but never fewer than two:
 * when one digit would do, the two-digit decimal closest to the value
 * (4.9E-324, not 5.0E-324).
 */
function shortestJavaDigits(value: number, shortest: string): string {
  return /^-?\de/.test(shortest) ? value.toExponential(1) : shortest;
}

/** JSON text of a Java double (NaN and infinities quoted, as Jackson writes them by default). */
export function javaDouble(value: number): string {
  if (!Number.isFinite(value) || value === 0) return javaLayout(value, '');
  return javaLayout(value, shortestJavaDigits(value, value.toExponential()));
}

/** JSON text of a Java float holding `value` (a float4 read back as a double). */
export function javaFloat(value: number): string {
  if (!Number.isFinite(value) || value === 0) return javaLayout(value, '');
  const single = Math.fround(value);
  for (let precision = 1; precision <= 9; precision++) {
    const candidate = Number(single.toPrecision(precision));
    if (Math.fround(candidate) === single) return javaLayout(candidate, precision === 1 ? single.toExponential(1) : candidate.toExponential());
  }
  return javaLayout(single, single.toExponential());
}

/** BigInteger.toByteArray of `value`, base64. */
export function unscaledBase64(value: bigint): string {
  let hex: string;
  if (value >= 0n) {
    hex = value.toString(16);
    if (hex.length % 2 === 1) hex = '0' + hex;
    if (parseInt(hex[0], 16) >= 8) hex = '00' + hex;
  } else {
    let bytes = 1;
    while (value < -(1n << BigInt(8 * bytes - 1))) bytes++;
    hex = ((1n << BigInt(8 * bytes)) + value).toString(16).padStart(2 * bytes, '0');
  }
  return Buffer.from(hex, 'hex').toString('base64');
}

export interface Decimal {
  /** The digits without the point, signed. */
  unscaled: bigint;
  scale: number;
}

/** "-12.340" → { unscaled: -12340n, scale: 3 }; also "1e5"-free PostgreSQL numeric text only. Null for NaN/Infinity. */
export function parseDecimal(text: string): Decimal | null {
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match) return null;
  const fraction = match[3] ?? '';
  const digits = (match[2] + fraction) || '0';
  const unscaled = BigInt(digits);
  return { unscaled: match[1] === '-' ? -unscaled : unscaled, scale: fraction.length };
}

/** The same number at another scale (HALF_UP when digits are dropped). */
export function rescale(decimal: Decimal, scale: number): Decimal {
  if (scale === decimal.scale) return decimal;
  if (scale > decimal.scale) return { unscaled: decimal.unscaled * 10n ** BigInt(scale - decimal.scale), scale };
  const divisor = 10n ** BigInt(decimal.scale - scale);
  const negative = decimal.unscaled < 0n;
  const magnitude = negative ? -decimal.unscaled : decimal.unscaled;
  let quotient = magnitude / divisor;
  if ((magnitude % divisor) * 2n >= divisor) quotient++;
  return { unscaled: negative ? -quotient : quotient, scale };
}

/** BigDecimal.stripTrailingZeros, with a scale never below 0 (as Debezium adjusts it). */
export function stripTrailingZeros(decimal: Decimal): Decimal {
  let { unscaled, scale } = decimal;
  if (unscaled === 0n) return { unscaled: 0n, scale: 0 };
  while (scale > 0 && unscaled % 10n === 0n) {
    unscaled /= 10n;
    scale--;
  }
  return { unscaled, scale };
}

/** BigDecimal.toPlainString. */
export function plainString(decimal: Decimal): string {
  const negative = decimal.unscaled < 0n;
  const digits = (negative ? -decimal.unscaled : decimal.unscaled).toString();
  if (decimal.scale === 0) return (negative ? '-' : '') + digits;
  const padded = digits.padStart(decimal.scale + 1, '0');
  return (negative ? '-' : '') + padded.slice(0, -decimal.scale) + '.' + padded.slice(-decimal.scale);
}
