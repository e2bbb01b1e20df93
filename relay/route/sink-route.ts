// One sink as the pipeline sees it: which events it takes (its `tables`
// patterns), and a queue that hands it one write at a time, so that a retry
// inside the sink can never let a later batch overtake an earlier one.
// Batches that arrive while a write is under way are merged into the next
// write: under load a sink sees few large writes, when idle small prompt ones.
import type { Sink } from '../../sinks/sink.js';
import type { ChangeEvent } from './event.js';
import { compileTablePatterns, type TableMatcher } from './table-pattern.js';
import type { Metrics } from '../ops/metrics.js';
import type { EventStage } from '../stages/sink-stages.js';
import { abandoned } from '../../sinks/retry.js';

/** Most events handed to a sink in one write. */
const MAX_WRITE_EVENTS = 10_000;

interface Pending {
  events: readonly ChangeEvent[];
  resolve(): void;
  reject(error: Error): void;
}

export class SinkRoute {
  private readonly matches: TableMatcher;
  private readonly everything: boolean;
  private readonly pending: Pending[] = [];
  private writing = false;
  /** `schemaEvents: true` on the sink: it takes op "schema" events (schema-event.ts). */
  private schemaEvents = false;
  private writingEvents = 0;
  /** Aborts the write under way when its session ends (abandon()). */
  private abort = new AbortController();
  /** Settles when the write loop has nothing more to do. */
  private loop: Promise<void> = Promise.resolve();

  /** `stage`: routing and column policies of this sink (sink-stages.ts), applied after the `tables` filter. */
  constructor(readonly sink: Sink, tables: readonly string[] | undefined, private readonly metrics: Metrics, private readonly stage?: EventStage) {
    this.matches = compileTablePatterns(tables);
    this.everything = tables === undefined;
    metrics.delivered(sink.name, 0); // the sink's series exists from the start (at 0), as the docs list it
  }

  withSchemaEvents(enabled: boolean | undefined): this {
    this.schemaEvents = enabled === true;
    return this;
  }

  /** Whether this sink takes `event` by its `tables` and schemaEvents (as deliver() selects; edges filter what they read back from the feed with it). */
  takes(event: ChangeEvent): boolean {
    if (event.op === 'schema' && !this.schemaEvents) return false;
    return this.everything || event.op === 'gap' || event.op === 'commit' || (event.table !== undefined && this.matches(`${event.schema}.${event.table}`));
  }

  /** Events handed to this route and not yet acknowledged by its sink (what a shutdown waits for). */
  get unacknowledged(): number {
    let count = this.writingEvents;
    for (const item of this.pending) count += item.events.length;
    return count;
  }

  /** Queues the events this sink takes; resolves when the sink acknowledged them (undefined when none matched). */
  deliver(all: readonly ChangeEvent[]): Promise<void> | undefined {
    const events = this.schemaEvents ? all : withoutSchemaEvents(all);
    // A gap concerns every table, so every sink gets it whatever its `tables`; so does a commit marker (sink-stages.ts).
    const filtered = this.everything ? events : events.filter((event) => event.op === 'gap' || event.op === 'commit' || (event.table !== undefined && this.matches(`${event.schema}.${event.table}`)));
    let selected = filtered;
    if (this.stage && filtered.length > 0) {
      try {
        selected = this.stage(filtered);
      } catch (error) {
        // A routing or policy error (e.g. a policy dropping the key of a table published later) stops a durable sink's
        // delivery, hence the relay; a websocket sink just does not get the batch (its failure never stops the relay).
        const failed = Promise.reject(error as Error);
        if (!this.sink.durable) failed.catch(() => undefined);
        return failed;
      }
    }
    if (selected.length === 0) return undefined;
    const delivery = new Promise<void>((resolve, reject) => this.pending.push({ events: selected, resolve, reject }));
    if (!this.sink.durable) delivery.catch(() => undefined); // nothing waits for a non-durable sink (abandon() rejects)
    if (!this.writing) this.loop = this.writeLoop();
    return delivery;
  }

  /**
   * Queues events for this sink as they are, past its `tables` filter and
   * stages: dead letters (sinks/dead-letter.ts), which the sink takes
   * whatever it is configured to select, in turn with its other writes.
   */
  deliverAsIs(events: readonly ChangeEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const delivery = new Promise<void>((resolve, reject) => this.pending.push({ events, resolve, reject }));
    if (!this.writing) void this.writeLoop();
    return delivery;
  }

  /**
   * The replication session that queued the pending batches ended:
   * PostgreSQL sends their events again to the next session, so they are
   * dropped here, and a write under way stops retrying. Otherwise each
   * reconnect while the sink is down would queue another copy of the
   * backlog, delivered later behind (and after) newer versions of the rows.
   * Resolves once the sink is idle, so the next session's first batch goes
   * after whatever the ended attempt did.
   */
  async abandon(): Promise<number> {
    const dropped = this.unacknowledged;
    const error = abandoned(this.sink.name);
    for (const item of this.pending.splice(0)) item.reject(error);
    this.abort.abort(error);
    await this.loop;
    this.abort = new AbortController();
    return dropped;
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    while (this.pending.length > 0) {
      const settlers: Array<Pick<Pending, 'resolve' | 'reject'>> = [];
      const batches: (readonly ChangeEvent[])[] = [];
      let count = 0;
      while (this.pending.length > 0 && (batches.length === 0 || count + this.pending[0].events.length <= MAX_WRITE_EVENTS)) {
        const { events, resolve, reject } = this.pending.shift()!;
        settlers.push({ resolve, reject });
        batches.push(events);
        count += events.length;
      }
      this.writingEvents = count;
      try {
        // Nothing here holds the events while the sink works on them: a sink
        // that encodes them up front lets them be collected young.
        const written = this.sink.write(batches.length === 1 ? batches[0] : batches.flat(), this.abort.signal);
        batches.length = 0;
        await written;
        this.metrics.delivered(this.sink.name, count);
        settlers.forEach((item) => item.resolve());
      } catch (error) {
        // The sink gave up (closed, or a permanent failure): nothing after this may be delivered out of order.
        for (const item of [...settlers, ...this.pending.splice(0)]) item.reject(error as Error);
      }
      this.writingEvents = 0;
    }
    this.writing = false;
  }
}

function withoutSchemaEvents(events: readonly ChangeEvent[]): readonly ChangeEvent[] {
  for (const event of events) if (event.op === 'schema') return events.filter((item) => item.op !== 'schema');
  return events;
}
