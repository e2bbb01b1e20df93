// Messages routed by prefix (`messages:` in the configuration): an outbox
// without a table. pg_logical_emit_message(true, prefix, content) in the
// application's transaction becomes a domain event to the destination
// template ({prefix} available); the value is the content, as is when it is
// JSON, else as a JSON string. Only transactional messages are routed: a
// non-transactional one is not tied to a commit and stays a plain message.
import type { Config } from '../../config/schema.js';
import type { ChangeEvent } from '../route/event.js';
import { asJsonText, compileTemplate, type DomainEvent } from './domain-event.js';

export class MessageRouter {
  private readonly routes = new Map<string, (lookup: (name: string) => unknown) => string>();

  constructor(messages: NonNullable<Config['messages']>) {
    messages.forEach((entry, index) => {
      if (!this.routes.has(entry.prefix)) {
        this.routes.set(entry.prefix, compileTemplate(entry.destination, `messages[${index}].destination`, (name) => name === 'prefix'));
      }
    });
  }

  handles(event: ChangeEvent): boolean {
    return event.op === 'message' && event.transactional === true && event.prefix !== undefined && this.routes.has(event.prefix);
  }

  route(event: ChangeEvent): DomainEvent {
    const destination = this.routes.get(event.prefix!)!;
    const value = event.contentEncoding === 'base64' ? JSON.stringify(event.content) : asJsonText(event.content ?? '');
    return {
      ...event,
      domain: {
        destination: destination(() => event.prefix),
        key: null,
        value,
        headers: [['prefix', event.prefix!], ['walrelay-id', event.id], ['walrelay-lsn', event.lsn]],
      },
    };
  }
}
