// One subscription of one client: which events it takes, and the frame
// prefix its change frames start with (built once).
import type { ChangeEvent } from '../../relay/route/event.js';
import { compileTablePattern, type TableMatcher } from '../../relay/route/table-pattern.js';
import { parseFilter, type RowPredicate } from './filter.js';
import type { SubscribeFrame } from './protocol.js';

export class Subscription {
  readonly id: string;
  readonly conflate: boolean;
  readonly tablePattern: string;
  /** `{"type":"change","subscription":"s1","event":` — the event JSON and `}` follow. */
  readonly framePrefix: string;
  private readonly table: TableMatcher;
  private readonly ops: Set<string> | null;
  private readonly filter: RowPredicate | null;
  private readonly allTables: boolean;
  /** Set when `since` named an event not received yet (edges): events up to it are skipped, the client has them. */
  resumeAfter: string | null = null;
  /** Set while the subscription is caught up from the feed (edges, feed-catch-up.ts): live changes are not sent meanwhile. */
  catchingUp = false;

  constructor(frame: SubscribeFrame) {
    this.id = frame.id;
    this.conflate = frame.conflate === true;
    this.tablePattern = frame.table;
    this.table = compileTablePattern(frame.table);
    this.allTables = frame.table === '*';
    this.ops = frame.ops ? new Set(frame.ops) : null;
    this.filter = frame.filter ? parseFilter(frame.filter) : null;
    this.framePrefix = `{"type":"change","subscription":${JSON.stringify(frame.id)},"event":`;
  }

  matches(event: ChangeEvent, qualifiedName: string | null): boolean {
    // A gap (changes lost with the slot) concerns every table: every subscription sees it, unless its ops leave it out.
    if (event.op === 'gap') return this.ops === null || this.ops.has('gap');
    // Messages (pg_logical_emit_message) belong to no table: only "*" subscriptions see them.
    if (qualifiedName === null) return this.allTables && (this.ops === null || this.ops.has('message')) && this.filter === null;
    return this.table(qualifiedName) && (this.ops === null || this.ops.has(event.op)) && (this.filter === null || this.filter(event));
  }
}
