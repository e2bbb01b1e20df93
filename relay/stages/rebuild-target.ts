// `walrelay backfill --sink NAME [--stream-template T]`: a projection
// rebuild. The backfill's read events carry their target (the chunk names
// it); every other sink leaves them out, and the target sink writes them to
// the streams or topics named by T ({schema}, {table}) instead of its own
// template, while live changes keep flowing as before.
import type { ChangeEvent } from '../route/event.js';

/** Streams chosen per event; a WeakMap so the name is never serialised with the event. */
const destinations = new WeakMap<ChangeEvent, string>();
/** No rebuild has addressed an event in this process: sinks ask per event, and a WeakMap lookup is not free. */
let noDestinations = true;

/** The stream or topic this event goes to instead of the sink's template, if any. */
export function destinationOf(event: ChangeEvent): string | undefined {
  return noDestinations ? undefined : destinations.get(event);
}

export class RebuildTargeting {
  constructor(private readonly sinkName: string) {}

  /** False for a rebuild's read event meant for another sink. */
  accepts(event: ChangeEvent): boolean {
    return event.target === undefined || event.target.sink === this.sinkName;
  }

  /** `event` as this sink writes it (`original` is the event before column policies, which carries the target). */
  address(event: ChangeEvent, original: ChangeEvent): ChangeEvent {
    const template = original.target?.stream;
    if (template === undefined) return event;
    // The same object may be another sink's event too (no policy changed it): give this sink its own.
    const own = event === original ? copyOf(event) : event;
    noDestinations = false;
    destinations.set(own, template.replaceAll('{schema}', original.schema ?? '').replaceAll('{table}', original.table ?? ''));
    return own;
  }
}

function copyOf(event: ChangeEvent): ChangeEvent {
  const toJSON = (event as { toJSON?: () => unknown }).toJSON;
  return (typeof toJSON === 'function' ? toJSON.call(event) : { ...event }) as ChangeEvent;
}
