// One pattern language for tables, matched in one place: "schema.table" where
// either side may be "*" or contain "*" wildcards ("public.*", "*.audit_log",
// "app.order_*"), and "*" alone for everything.
export type TableMatcher = (qualifiedName: string) => boolean;

export function compileTablePattern(pattern: string): TableMatcher {
  if (pattern === '*' || pattern === '*.*') return () => true;
  if (!pattern.includes('*')) return (name) => name === pattern;
  const source = pattern.split('*').map(escapeRegExp).join('[^.]*');
  const regex = new RegExp(`^${source}$`);
  return (name) => regex.test(name);
}

/** Matches when any pattern matches; `undefined` patterns match every table. */
export function compileTablePatterns(patterns: readonly string[] | undefined): TableMatcher {
  if (patterns === undefined) return () => true;
  const matchers = patterns.map(compileTablePattern);
  const cache = new Map<string, boolean>();
  return (name) => {
    let hit = cache.get(name);
    if (hit === undefined) {
      hit = matchers.some((match) => match(name));
      if (cache.size < 10_000) cache.set(name, hit);
    }
    return hit;
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.+?()[\]{}|]/g, '\\$&');
}
