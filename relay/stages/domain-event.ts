// A domain event: a change re-addressed by a routing rule (outbox.ts,
// message-routing.ts). It still is a change event for the pipeline (id, LSN,
// commit position: ordering and the checkpoint work unchanged), and carries
// the record the sink writes instead of the change: its own destination
// (Kafka topic or Redis stream), key, value and headers. Formats do not apply
// to it: the value is the application's payload, as Debezium's outbox router
// emits it.
import type { ChangeEvent } from '../route/event.js';
import { WalrelayError } from '../errors.js';

export interface DomainRecord {
  /** Kafka topic or Redis stream. */
  destination: string;
  /** JSON text of the record key, or null. */
  key: string | null;
  /** JSON text of the record value. */
  value: string;
  /** name, value pairs: Kafka headers, Redis stream fields. */
  headers: [string, string][];
}

export type DomainEvent = ChangeEvent & { domain: DomainRecord };

export function domainRecordOf(event: ChangeEvent): DomainRecord | undefined {
  return (event as Partial<DomainEvent>).domain;
}

/** One line for text sinks (stdout): the record as a consumer of the destination sees it. */
export function domainRecordJson(record: DomainRecord): string {
  return `{"destination":${JSON.stringify(record.destination)},"key":${record.key ?? 'null'},"headers":${JSON.stringify(Object.fromEntries(record.headers))},"value":${record.value}}`;
}

/** JSON text of a value that may already be JSON text (a text column or message holding JSON is passed through as is). */
export function asJsonText(value: unknown): string {
  if (typeof value === 'string') {
    try {
      JSON.parse(value);
      return value;
    } catch {
      return JSON.stringify(value);
    }
  }
  return JSON.stringify(value ?? null);
}

/**
 * A destination template: `{name}` is replaced by `lookup(name)`. A name the
 * lookup does not know is a configuration error naming the template.
 */
export function compileTemplate(template: string, where: string, known: (name: string) => boolean): (lookup: (name: string) => unknown) => string {
  const parts = template.split(/\{([^{}]+)\}/);
  for (let i = 1; i < parts.length; i += 2) {
    if (!known(parts[i])) {
      throw new WalrelayError('CONFIG_INVALID', `${where}: "${template}" names {${parts[i]}}, which is not available`, { kind: 'config', hint: 'use the placeholders listed in the README\'s "Domain events" section' });
    }
  }
  return (lookup) => {
    let out = parts[0];
    for (let i = 1; i < parts.length; i += 2) {
      const value = lookup(parts[i]);
      out += (value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value)) + parts[i + 1];
    }
    return out;
  };
}
