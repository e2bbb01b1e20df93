// Quoting for the few statements that cannot take parameters (DDL, identifiers).
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** "schema.table" → "schema"."table" */
export function quoteQualified(name: string): string {
  const dot = name.indexOf('.');
  return `${quoteIdent(name.slice(0, dot))}.${quoteIdent(name.slice(dot + 1))}`;
}

/** A connection URL without its password, for logs and messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Keywords that cannot stand unquoted as a table or role name. */
const RESERVED = new Set(['all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'both', 'case', 'cast', 'check', 'collate', 'column',
  'constraint', 'create', 'current_user', 'default', 'desc', 'distinct', 'do', 'else', 'end', 'except', 'false', 'for', 'foreign', 'from', 'grant',
  'group', 'having', 'in', 'into', 'limit', 'not', 'null', 'offset', 'on', 'only', 'or', 'order', 'primary', 'references', 'select', 'table',
  'then', 'to', 'true', 'union', 'unique', 'user', 'using', 'when', 'where', 'window', 'with']);

/** An identifier as a person would write it: bare when that means the same, quoted otherwise. */
export function sqlName(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) && !RESERVED.has(name) ? name : quoteIdent(name);
}

/** "schema.table" for SQL shown to a person: public.orders, or "Sales"."Orders" when it must be quoted. */
export function sqlQualified(name: string): string {
  const dot = name.indexOf('.');
  return `${sqlName(name.slice(0, dot))}.${sqlName(name.slice(dot + 1))}`;
}
