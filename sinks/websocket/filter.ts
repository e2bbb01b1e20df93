// Row filters of the websocket protocol: "column=op.value" with op one of
// eq neq lt lte gt gte in, e.g. "status=eq.paid", "id=in.(1,2,3)".
// Numbers compare numerically (bigint and numeric arrive as strings and still
// compare as numbers), everything else as text; "null" matches NULL.
import type { ChangeEvent, Row } from '../../relay/route/event.js';

export type RowPredicate = (event: ChangeEvent) => boolean;

const OPERATORS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in'] as const;
type Operator = (typeof OPERATORS)[number];

export class FilterSyntaxError extends Error {}

export function parseFilter(text: string): RowPredicate {
  const equals = text.indexOf('=');
  const dot = text.indexOf('.', equals + 1);
  if (equals <= 0 || dot < 0) throw new FilterSyntaxError(`filter '${text}' is not column=op.value (e.g. status=eq.paid, id=in.(1,2))`);
  const column = text.slice(0, equals).trim();
  const operator = text.slice(equals + 1, dot) as Operator;
  const operand = text.slice(dot + 1);
  if (!OPERATORS.includes(operator)) throw new FilterSyntaxError(`filter operator '${operator}' is not one of ${OPERATORS.join(' ')}`);
  if (operator === 'in') {
    if (!operand.startsWith('(') || !operand.endsWith(')')) throw new FilterSyntaxError(`filter '${text}': in takes a list such as in.(1,2,3)`);
    const options = operand.slice(1, -1).split(',').map((option) => option.trim());
    return (event) => {
      const value = rowValue(event, column);
      return value !== undefined && options.some((option) => compare(value, option) === 0);
    };
  }
  return (event) => {
    const value = rowValue(event, column);
    if (value === undefined) return false;
    const order = compare(value, operand);
    switch (operator) {
      case 'eq': return order === 0;
      case 'neq': return order !== 0 && !Number.isNaN(order);
      case 'lt': return order < 0;
      case 'lte': return order <= 0;
      case 'gt': return order > 0;
      case 'gte': return order >= 0;
    }
  };
}

/** The row a filter looks at: the new row, or the old one (or key) for deletes. */
function rowValue(event: ChangeEvent, column: string): unknown {
  const row: Row | null | undefined = event.new ?? event.old ?? event.key;
  if (!row || !(column in row)) return undefined;
  return row[column];
}

/** <0, 0, >0, or NaN when incomparable (NULL against a value). */
function compare(value: unknown, operand: string): number {
  if (value === null) return operand === 'null' ? 0 : Number.NaN;
  if (operand === 'null') return Number.NaN;
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  const left = Number(text);
  const right = Number(operand);
  if (text.trim() !== '' && operand.trim() !== '' && Number.isFinite(left) && Number.isFinite(right)) {
    if (left !== right || (Number.isSafeInteger(left) && Number.isSafeInteger(right))) return left - right;
    // Equal as doubles but maybe not as exact decimals (big ints, long numerics): compare the digits.
    return compareDecimalText(text, operand);
  }
  return text < operand ? -1 : text > operand ? 1 : 0;
}

function compareDecimalText(a: string, b: string): number {
  try {
    if (/^-?\d+$/.test(a) && /^-?\d+$/.test(b)) {
      const difference = BigInt(a) - BigInt(b);
      return difference < 0n ? -1 : difference > 0n ? 1 : 0;
    }
  } catch { /* fall through */ }
  return a === b ? 0 : a < b ? -1 : 1;
}
