// Reads the output of PostgreSQL's own example decoder, test_decoding (the
// oracle of the differential test), as pg_logical_slot_peek_binary_changes
// returns it with include-xids and include-timestamp: one row per callback,
// with the LSN PostgreSQL stamped it with. The text forms are test_decoding.c's:
//
//   BEGIN 771
//   table public.items: INSERT: id[integer]:1 name[text]:'it''s' big[text]:null
//   table public.items: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 big[text]:unchanged-toast-datum
//   table public.items: DELETE: id[integer]:2            (or: (no-tuple-data))
//   table public.a, public.b: TRUNCATE: restart_seqs cascade      (or: (no-flags))
//   message: transactional: 1 prefix: app, sz: 5 content:hello
//   COMMIT 771 (at 2026-11-22 10:00:00.123456+00)
//
// Values: int2/int4/int8/oid/float4/float8/numeric unquoted, bool as
// true/false, bit/varbit as B'…', everything else quoted with '' doubled;
// `null` for NULL (old-key skips NULL columns), `unchanged-toast-datum` for a
// TOASTed value that was not logged. Names are quote_identifier'd.

/** A TOASTed value test_decoding could not see (unchanged, not logged). */
export const UNCHANGED_TOAST: unique symbol = Symbol('unchanged-toast-datum');

export interface DecodedColumn {
  name: string;
  /** format_type_be: "integer", "timestamp with time zone", "mood[]". */
  type: string;
  /** The type's output text (quotes and B'' removed), null, or UNCHANGED_TOAST. */
  value: string | null | typeof UNCHANGED_TOAST;
}

export interface QualifiedName {
  schema: string;
  table: string;
}

export type DecodedRecord =
  | { kind: 'begin'; lsn: string; xid: number }
  | { kind: 'commit'; lsn: string; xid: number; commitTime: string }
  | { kind: 'change'; lsn: string; op: 'insert' | 'update' | 'delete'; schema: string; table: string; old: DecodedColumn[] | null; new: DecodedColumn[] | null }
  | { kind: 'truncate'; lsn: string; tables: QualifiedName[]; restartIdentity: boolean; cascade: boolean }
  | { kind: 'message'; lsn: string; transactional: boolean; prefix: string; content: Buffer };

export interface PeekRow {
  lsn: string;
  data: Buffer;
}

export function parseTestDecoding(rows: readonly PeekRow[]): DecodedRecord[] {
  return rows.map((row) => parseRecord(row.lsn, row.data));
}

const MESSAGE_HEAD = /^message: transactional: ([01]) prefix: (.*?), sz: (\d+) content:/s;

export function parseRecord(lsn: string, data: Buffer): DecodedRecord {
  // The message content is raw bytes; everything else is UTF-8 text.
  const head = data.subarray(0, 400).toString('latin1');
  const message = MESSAGE_HEAD.exec(head);
  if (message) {
    const start = Buffer.byteLength(message[0], 'latin1');
    const size = Number(message[3]);
    if (data.length !== start + size) throw new Error(`test_decoding message at ${lsn}: sz ${size} but ${data.length - start} bytes follow`);
    return { kind: 'message', lsn, transactional: message[1] === '1', prefix: Buffer.from(message[2], 'latin1').toString('utf8'), content: data.subarray(start) };
  }
  const text = data.toString('utf8');
  let match = /^BEGIN (\d+)$/.exec(text);
  if (match) return { kind: 'begin', lsn, xid: Number(match[1]) };
  match = /^COMMIT (\d+) \(at (.+)\)$/.exec(text);
  if (match) return { kind: 'commit', lsn, xid: Number(match[1]), commitTime: match[2] };
  if (text.startsWith('table ')) return new LineReader(text, lsn).tableRecord();
  throw new Error(`test_decoding output not understood at ${lsn}: ${text.slice(0, 200)}`);
}

class LineReader {
  private position = 0;

  constructor(private readonly text: string, private readonly lsn: string) {}

  tableRecord(): DecodedRecord {
    this.expect('table ');
    const tables: QualifiedName[] = [this.qualifiedName()];
    while (this.take(', ')) tables.push(this.qualifiedName());
    this.expect(': ');
    if (this.take('TRUNCATE:')) {
      const flags = this.rest().trim();
      if (flags !== '(no-flags)' && !/^(restart_seqs)?( ?cascade)?$/.test(flags)) this.fail(`truncate flags '${flags}'`);
      return { kind: 'truncate', lsn: this.lsn, tables, restartIdentity: flags.includes('restart_seqs'), cascade: flags.includes('cascade') };
    }
    const [{ schema, table }] = tables;
    if (this.take('INSERT:')) return { kind: 'change', lsn: this.lsn, op: 'insert', schema, table, old: null, new: this.tuple() };
    if (this.take('DELETE:')) return { kind: 'change', lsn: this.lsn, op: 'delete', schema, table, old: this.tuple(), new: null };
    this.expect('UPDATE:');
    let old: DecodedColumn[] | null = null;
    if (this.take(' old-key:')) {
      old = this.columnsUntil(' new-tuple:');
      this.expect(' new-tuple:');
    }
    return { kind: 'change', lsn: this.lsn, op: 'update', schema, table, old, new: this.tuple() };
  }

  /** The columns to the end of the line, or null for " (no-tuple-data)". */
  private tuple(): DecodedColumn[] | null {
    if (this.take(' (no-tuple-data)')) {
      this.expectEnd();
      return null;
    }
    const columns = this.columnsUntil(null);
    this.expectEnd();
    return columns;
  }

  private columnsUntil(stop: string | null): DecodedColumn[] {
    const columns: DecodedColumn[] = [];
    while (this.position < this.text.length && !(stop && this.text.startsWith(stop, this.position))) {
      this.expect(' ');
      const name = this.identifier('[');
      this.expect('[');
      const typeEnd = this.text.indexOf(']:', this.position);
      if (typeEnd < 0) this.fail("']:' after a type name");
      const type = this.text.slice(this.position, typeEnd);
      this.position = typeEnd + 2;
      columns.push({ name, type, value: this.value() });
    }
    return columns;
  }

  private value(): string | null | typeof UNCHANGED_TOAST {
    if (this.take("B'")) return this.quotedRest();
    if (this.take("'")) return this.quotedRest();
    let end = this.text.indexOf(' ', this.position);
    if (end < 0) end = this.text.length;
    const token = this.text.slice(this.position, end);
    this.position = end;
    if (token === 'null') return null;
    if (token === 'unchanged-toast-datum') return UNCHANGED_TOAST;
    return token;
  }

  /** After an opening quote: up to the closing one, '' standing for '. */
  private quotedRest(): string {
    let value = '';
    for (;;) {
      const quote = this.text.indexOf("'", this.position);
      if (quote < 0) this.fail('a closing quote');
      value += this.text.slice(this.position, quote);
      this.position = quote + 1;
      if (this.text[this.position] !== "'") return value;
      value += "'";
      this.position++;
    }
  }

  private qualifiedName(): QualifiedName {
    const schema = this.identifier('.');
    this.expect('.');
    return { schema, table: this.identifier(':,') };
  }

  /** A quote_identifier'd name: "…" with "" doubled, or bare up to one of `stops`. */
  private identifier(stops: string): string {
    if (this.take('"')) {
      let name = '';
      for (;;) {
        const quote = this.text.indexOf('"', this.position);
        if (quote < 0) this.fail('a closing double quote');
        name += this.text.slice(this.position, quote);
        this.position = quote + 1;
        if (this.text[this.position] !== '"') return name;
        name += '"';
        this.position++;
      }
    }
    const start = this.position;
    while (this.position < this.text.length && !stops.includes(this.text[this.position])) this.position++;
    if (this.position === start) this.fail('a name');
    return this.text.slice(start, this.position);
  }

  private take(literal: string): boolean {
    if (!this.text.startsWith(literal, this.position)) return false;
    this.position += literal.length;
    return true;
  }

  private expect(literal: string): void {
    if (!this.take(literal)) this.fail(JSON.stringify(literal));
  }

  private expectEnd(): void {
    if (this.position !== this.text.length) this.fail('the end of the line');
  }

  private rest(): string {
    const rest = this.text.slice(this.position);
    this.position = this.text.length;
    return rest;
  }

  private fail(expected: string): never {
    throw new Error(`test_decoding line at ${this.lsn}: expected ${expected} at character ${this.position} of ${JSON.stringify(this.text.slice(0, 300))}`);
  }
}
