// "Did you mean": for an unknown key, the known key at the same place in the
// schema that is closest by edit distance, so `sinks[0].stram` points at
// `stream` instead of leaving the operator to read the reference.
import type { z } from 'zod';

/**
 * Edit distance with swapped neighbours counting as one edit (`prot` is one
 * edit from `port`), case-insensitive (a key typed in the wrong case is a near miss too).
 */
export function editDistance(a: string, b: string): number {
  const left = a.toLowerCase();
  const right = b.toLowerCase();
  const rows: number[][] = [Array.from({ length: right.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= left.length; i++) {
    const row = [i];
    for (let j = 1; j <= right.length; j++) {
      const cost = left[i - 1] === right[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && left[i - 1] === right[j - 2] && left[i - 2] === right[j - 1]) best = Math.min(best, rows[i - 2][j - 2] + 1);
      row.push(best);
    }
    rows.push(row);
  }
  return rows[left.length][right.length];
}

/** The closest candidate, when it is close enough to be a typo (at most a third of the word, at least 1). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * The keys the schema accepts for the object at `path` of `document`. For a
 * sink (a union told apart by `type`), the keys of the sink with the
 * document's type.
 */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[], document: unknown): string[] {
  let node: any = schema;
  let value: any = document;
  for (let i = 0; i <= path.length; i++) {
    node = unwrap(node, value);
    if (!node) return [];
    if (i === path.length) break;
    const segment = path[i];
    const def = node._zod.def;
    if (def.type === 'object') node = def.shape[segment as string];
    else if (def.type === 'array') node = def.element;
    else return [];
    value = value !== null && typeof value === 'object' ? value[segment as string] : undefined;
  }
  return node._zod.def.type === 'object' ? Object.keys(node._zod.def.shape) : [];
}

/** Looks through optional/default wrappers and picks a union's member by the value's `type`. */
function unwrap(node: any, value: any): any {
  for (;;) {
    const def = node?._zod?.def;
    if (!def) return undefined;
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault') {
      node = def.innerType;
    } else if (def.type === 'pipe') {
      node = def.in;
    } else if (def.type === 'union') {
      const objects = def.options.map((option: any) => unwrap(option, value)).filter((option: any) => option?._zod.def.type === 'object');
      const typed = objects.find((option: any) => option._zod.def.shape.type?._zod.def.values?.includes(value?.type));
      return typed ?? objects[0];
    } else {
      return node;
    }
  }
}
