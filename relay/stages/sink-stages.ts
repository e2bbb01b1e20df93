// The steps between the assembler and one sink, in order:
//   1. domain routing (shared by all sinks): outbox inserts and routed
//      messages become domain events, other outbox changes are dropped;
//   2. the sink's column policies;
//   3. begin / commit events around each transaction (transactionEvents: true),
//      and removal of the pipeline's commit markers for every other sink.
//   0. read events of `backfill --sink` reach only their sink (rebuild-target.ts);
// Each step maps a batch to a batch in the same order, so ordering and the
// checkpoint are untouched; a sink without any step gets the batch as is.
import type { Config, SinkConfig } from '../../config/schema.js';
import type { ChangeEvent } from '../route/event.js';
import { OutboxRouter } from './outbox.js';
import { MessageRouter } from './message-routing.js';
import { ColumnPolicy } from './column-policy.js';
import { TransactionEvents, isCommitMarker } from './transaction-events.js';
import { RebuildTargeting } from './rebuild-target.js';

export type EventStage = (events: readonly ChangeEvent[]) => readonly ChangeEvent[];

/** Outbox and message routing, computed once per event whichever sinks ask. */
export class DomainRouter {
  private readonly outbox: OutboxRouter | null;
  private readonly messages: MessageRouter | null;
  private readonly routed = new WeakMap<ChangeEvent, ChangeEvent | null>();

  constructor(config: Config) {
    this.outbox = config.outbox?.length ? new OutboxRouter(config.outbox) : null;
    this.messages = config.messages?.length ? new MessageRouter(config.messages) : null;
  }

  get active(): boolean {
    return this.outbox !== null || this.messages !== null;
  }

  /** The event as the sinks receive it: itself, its domain event, or null (an outbox update or delete). */
  apply(event: ChangeEvent): ChangeEvent | null {
    const outbox = this.outbox?.handles(event) ?? false;
    const message = !outbox && (this.messages?.handles(event) ?? false);
    if (!outbox && !message) return event;
    let routed = this.routed.get(event);
    if (routed === undefined) {
      routed = outbox ? this.outbox!.route(event) : this.messages!.route(event);
      this.routed.set(event, routed);
    }
    return routed;
  }
}

export function sinkStage(config: Config, sink: SinkConfig, index: number, router: DomainRouter): EventStage {
  const policy = sink.columns && Object.keys(sink.columns).length > 0 ? new ColumnPolicy(sink.columns, config.columnHashKey, `sinks[${index}].columns`) : null;
  const markers = config.sinks.some((other) => other.transactionEvents);
  const transactions = sink.transactionEvents ? new TransactionEvents({ debeziumTopicPrefix: sink.format === 'debezium' ? debeziumTopicPrefix(sink) : undefined }) : null;
  const targeting = new RebuildTargeting(sink.name ?? `${sink.type}#${index}`);
  const plain = !router.active && policy === null && !markers;
  return (events) => {
    if (plain && !events.some((event) => event.target !== undefined)) return events;
    const out: ChangeEvent[] = [];
    for (const event of events) {
      if (isCommitMarker(event)) {
        transactions?.push(event, out);
        continue;
      }
      if (!targeting.accepts(event)) continue;
      let routed = router.active ? router.apply(event) : event;
      if (routed === null) continue;
      // Domain events carry the application's payload, which no column policy describes.
      if (policy !== null && !('domain' in routed)) routed = policy.apply(routed);
      if (event.target !== undefined) routed = targeting.address(routed, event);
      if (transactions) transactions.push(routed, out);
      else out.push(routed);
    }
    return out;
  };
}

/** Debezium's topic.prefix for this sink (the `debezium` options, when the configuration has them). */
function debeziumTopicPrefix(sink: SinkConfig): string {
  return (sink as { debezium?: { topicPrefix?: string } }).debezium?.topicPrefix ?? 'walrelay';
}
