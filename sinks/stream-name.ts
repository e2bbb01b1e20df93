// Names of streams and topics from a template with {schema} and {table}.
import type { ChangeEvent } from '../relay/route/event.js';
import { destinationOf } from '../relay/stages/rebuild-target.js';

export class NameTemplate {
  private readonly cache = new Map<string, string>();

  private readonly messageName: string;

  /** `sanitize`: what the destination's naming rules make of a name (Kafka: kafkaTopicName), applied once per table. */
  constructor(private readonly template: string, messageName: string, private readonly sanitize: (name: string) => string = (name) => name) {
    this.messageName = sanitize(messageName);
  }

  nameFor(event: ChangeEvent): string {
    const destination = destinationOf(event);
    if (destination !== undefined) return this.sanitize(destination); // backfill --sink --stream-template
    if (event.table === undefined) return this.messageName;
    const qualified = `${event.schema}.${event.table}`;
    let name = this.cache.get(qualified);
    if (name === undefined) {
      name = this.sanitize(this.template.replaceAll('{schema}', event.schema ?? '').replaceAll('{table}', event.table));
      this.cache.set(qualified, name);
    }
    return name;
  }
}
