// What JSON a column's values become (README "Value mapping"), decided the
// way values.ts picks a converter: by the type's OID, through domains to
// their base type and arrays to their element. `walrelay schema` turns it
// into JSON Schema and TypeScript.
import type { TypeCatalog } from '../source/type-catalog.js';

export type ValueKind =
  | { kind: 'integer' | 'float' | 'decimal' | 'boolean' | 'json' | 'string' | 'base64' }
  | { kind: 'array'; element: ValueKind };

const BY_OID: Record<number, ValueKind['kind']> = {
  21: 'integer', 23: 'integer', 26: 'integer', // int2, int4, oid
  700: 'float', 701: 'float', // float4, float8: NaN and ±Infinity as strings
  20: 'decimal', 1700: 'decimal', // int8, numeric: strings, every digit kept
  16: 'boolean',
  114: 'json', 3802: 'json',
  17: 'base64',
};

export function valueKindOf(typeOid: number, catalog: TypeCatalog, depth = 0): ValueKind {
  const special = BY_OID[typeOid];
  if (special) return { kind: special } as ValueKind;
  const info = catalog.info(typeOid);
  if (!info || depth > 16) return { kind: 'string' };
  if (info.kind === 'domain') return valueKindOf(info.base, catalog, depth + 1);
  if (info.kind === 'array') return { kind: 'array', element: valueKindOf(info.element, catalog, depth + 1) };
  return { kind: 'string' };
}
