// Dead letters: events a sink gave up on (a permanent refusal, or
// `maxAttempts` used up) handed to another sink, named by the first sink's
// `deadLetter` key, with the failure beside each event.
//
// A dead letter is a domain event (relay/stages/domain-event.ts), so every
// sink that writes domain events takes it as it is: a Redis stream or Kafka
// topic named DEAD_LETTER_DESTINATION, or a webhook with that destination in
// its walrelay-destination header. Its id is the original event's id, so a
// dead letter written again after a crash is recognisably the same one.
//
// Dead letters go through the target sink's own queue (SinkRoute), never
// beside it: a sink writes one batch at a time, and the checkpoint must not
// pass the event before the target acknowledged its dead letter. The target's
// `tables` filter and stages do not apply: it receives every dead letter.
import type { ChangeEvent } from '../relay/route/event.js';
import { keyJson } from '../relay/route/event.js';
import type { DomainEvent } from '../relay/stages/domain-event.js';
import { WalrelayError } from '../relay/errors.js';

/** Stream, topic or walrelay-destination header of every dead letter. */
export const DEAD_LETTER_DESTINATION = 'walrelay.deadletter';

/** Why a sink gave up on an event. */
export interface DeliveryFailure {
  /** HTTP status (or the server's error code) of the last attempt, when it answered. */
  status?: number;
  /** A bounded excerpt of the last answer's body. */
  body?: string;
  /** The last attempt's error when there was no answer (timeout, connection refused). */
  error?: string;
  attempts: number;
  firstAttemptAt: string;
  lastAttemptAt: string;
}

/** Hands dead letters to a sink and resolves when that sink acknowledged them. */
export type DeadLetterWriter = (events: readonly ChangeEvent[]) => Promise<void>;

/** The sinks that can take dead letters, by label; filled by the daemon once every sink's queue exists. */
export class DeadLetterTargets {
  private readonly writers = new Map<string, DeadLetterWriter>();

  register(sink: string, writer: DeadLetterWriter): void {
    this.writers.set(sink, writer);
  }

  /** The writer for `target`; the configuration check makes an unknown name impossible in a running relay. */
  writerFor(target: string, from: string): DeadLetterWriter {
    const writer = this.writers.get(target);
    if (!writer) {
      throw new WalrelayError('CONFIG_INVALID', `sink ${from}: deadLetter names "${target}", which is not a running sink`, { kind: 'config', hint: 'set deadLetter to the name of another sink of this configuration' });
    }
    return writer;
  }
}

/**
 * The dead letter of `event`: the payload `sink` tried to send (JSON text, as
 * sent) and the failure, as one JSON value, keyed like the event.
 */
export function deadLetterEvent(event: ChangeEvent, sink: string, payload: string, failure: DeliveryFailure): DomainEvent {
  const value = `{"sink":${JSON.stringify(sink)},"failure":${JSON.stringify(failure)},"event":${payload}}`;
  return {
    id: event.id,
    op: event.op,
    ...(event.schema === undefined ? {} : { schema: event.schema, table: event.table }),
    lsn: event.lsn,
    commitLsn: event.commitLsn,
    xid: event.xid,
    commitTime: event.commitTime,
    domain: {
      destination: DEAD_LETTER_DESTINATION,
      key: keyJson(event),
      value,
      headers: [['walrelay-dead-letter-sink', sink], ['walrelay-id', event.id], ...(failure.status === undefined ? [] : [['walrelay-failure-status', String(failure.status)] as [string, string]])],
    },
  };
}
