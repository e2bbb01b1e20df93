// What a message broker without record keys (NATS JetStream, RabbitMQ)
// receives for one event: where it goes (subject or routing key), an id that
// is the same on every re-delivery (Nats-Msg-Id, AMQP message_id), the body
// in the sink's format and headers naming the event.
//
// Debezium: the records with a value (a delete's tombstone only matters to a
// compacted Kafka topic, so it is left out, as Debezium Server's NATS and
// RabbitMQ sinks leave it out). A domain event (outbox, routed message)
// carries its own destination, value and headers; formats do not apply.
import { keyJson, type ChangeEvent } from '../relay/route/event.js';
import { domainRecordOf } from '../relay/stages/domain-event.js';
import { debeziumValues, encodeEvent, type Format, type FormatContext } from './formats.js';
import type { NameTemplate } from './stream-name.js';

export interface BrokerMessage {
  /** Subject or routing key. */
  destination: string;
  /** The event id; "<event id>+n" for a Debezium event's n-th further record. */
  id: string;
  body: string;
  /** name, value pairs. */
  headers: [string, string][];
}

export class BrokerMessages {
  constructor(private readonly format: Format, private readonly names: NameTemplate, private readonly context: FormatContext) {}

  of(event: ChangeEvent): BrokerMessage[] {
    const domain = domainRecordOf(event);
    if (domain) {
      const headers: [string, string][] = domain.key === null ? domain.headers : [...domain.headers, ['walrelay-key', domain.key]];
      return [{ destination: domain.destination, id: event.id, body: domain.value, headers }];
    }
    const destination = this.names.nameFor(event);
    const key = keyJson(event);
    const headers: [string, string][] = [['walrelay-id', event.id], ['walrelay-op', event.op], ['walrelay-lsn', event.lsn]];
    if (key !== null) headers.push(['walrelay-key', key]);
    if (this.format !== 'debezium') return [{ destination, id: event.id, body: encodeEvent(event, this.format, this.context), headers }];
    return debeziumValues(event, this.context)
      .map((body, index) => ({ destination, id: index === 0 ? event.id : `${event.id}+${index}`, body, headers }));
  }
}
