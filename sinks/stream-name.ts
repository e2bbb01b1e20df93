// Names of streams and topics from a template with {schema} and {table}.
import type { ChangeEvent } from '../relay/route/event.js';
import { destinationOf } from '../relay/stages/rebuild-target.js';

export class NameTemplate {
  private readonly cache = new Map<string, string>();

  constructor(private readonly template: string, private readonly messageName: string) {}

  nameFor(event: ChangeEvent): string {
    const destination = destinationOf(event);
    if (destination !== undefined) return destination; // backfill --sink --stream-template
    if (event.table === undefined) return this.messageName;
    const qualified = `${event.schema}.${event.table}`;
    let name = this.cache.get(qualified);
    if (name === undefined) {
      name = this.template.replaceAll('{schema}', event.schema ?? '').replaceAll('{table}', event.table);
      this.cache.set(qualified, name);
    }
    return name;
  }
}
