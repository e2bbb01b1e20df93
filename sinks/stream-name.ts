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

  /** The last table named, and its name: a backlog's events come table after table (no key string built and hashed per event). */
  private lastSchema: string | undefined;
  private lastTable: string | undefined;
  private lastName = '';

  nameFor(event: ChangeEvent): string {
    const destination = destinationOf(event);
    if (destination !== undefined) return this.sanitize(destination); // backfill --sink --stream-template
    const table = event.table;
    if (table === undefined) return this.messageName;
    const schema = event.schema;
    if (table === this.lastTable && schema === this.lastSchema) return this.lastName;
    const qualified = `${schema}.${table}`;
    let name = this.cache.get(qualified);
    if (name === undefined) {
      name = this.sanitize(this.template.replaceAll('{schema}', schema ?? '').replaceAll('{table}', table));
      this.cache.set(qualified, name);
    }
    this.lastSchema = schema;
    this.lastTable = table;
    this.lastName = name;
    return name;
  }
}
