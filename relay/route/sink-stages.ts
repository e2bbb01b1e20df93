// The steps between the assembler and one sink, in order:
//   1. domain routing (shared by all sinks): outbox inserts and routed
//      messages become domain events, other outbox changes are dropped;
//   2. the sink's column policies;
// Each step maps a batch to a batch in the same order, so ordering and the
// checkpoint are untouched; a sink without any step gets the batch as is.
import type { Config, SinkConfig } from '../../config/schema.js';
import type { ChangeEvent } from './event.js';
import { OutboxRouter } from './outbox.js';
import { MessageRouter } from './message-routing.js';
import { ColumnPolicy } from './column-policy.js';

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

export function sinkStage(config: Config, sink: SinkConfig, index: number, router: DomainRouter): EventStage | undefined {
  const policy = sink.columns && Object.keys(sink.columns).length > 0 ? new ColumnPolicy(sink.columns, config.columnHashKey, `sinks[${index}].columns`) : null;
  if (!router.active && policy === null) return undefined;
  return (events) => {
    const out: ChangeEvent[] = [];
    for (const event of events) {
      const routed = router.active ? router.apply(event) : event;
      if (routed === null) continue;
      // Domain events carry the application's payload, which no column policy describes.
      out.push(policy === null || 'domain' in routed ? routed : policy.apply(routed));
    }
    return out;
  };
}
