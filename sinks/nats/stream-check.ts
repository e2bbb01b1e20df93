// At start: does a JetStream stream capture each subject the sink will
// publish to? A plain NATS publish to a subject no stream captures is dropped
// without a word; a JetStream publish is refused at once ("no responders"),
// which this check turns into an error before anything streams.
//
// A subject is probed with a publish that no stream can accept
// (Nats-Expected-Last-Sequence far beyond any stream's last sequence): a
// stream that captures the subject answers with an error and stores
// nothing; without one, nobody answers. The probe needs no permission beyond
// publishing to the subject, which the sink needs anyway. A subject with
// wildcards (a template whose tables are not known in advance) cannot be
// published to; it is looked up among the streams' subjects instead.
import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';

export type SubjectCheck = { subject: string; captured: true } | { subject: string; captured: false } | { subject: string; captured: 'unknown'; reason: string };

export async function checkSubject(connection: NatsConnection, subject: string, timeoutMs: number): Promise<SubjectCheck> {
  if (/(^|\.)(\*|>)(\.|$)/.test(subject)) return checkWildcardSubject(connection, subject, timeoutMs);
  try {
    await jetstream(connection, { timeout: timeoutMs }).publish(subject, undefined, { expect: { lastSequence: Number.MAX_SAFE_INTEGER }, timeout: timeoutMs });
    // Accepted: a stream whose last sequence is that far cannot be, but the message landed somewhere, so it is captured.
    return { subject, captured: true };
  } catch (error) {
    if (error instanceof JetStreamApiError) return { subject, captured: true };
    if (isNoStream(error)) return { subject, captured: false };
    return { subject, captured: 'unknown', reason: (error as Error).message };
  }
}

async function checkWildcardSubject(connection: NatsConnection, subject: string, timeoutMs: number): Promise<SubjectCheck> {
  try {
    const manager = await jetstreamManager(connection, { timeout: timeoutMs });
    // The server lists the streams whose subjects overlap the filter.
    for await (const _ of manager.streams.names(subject)) return { subject, captured: true };
    return { subject, captured: false };
  } catch (error) {
    return { subject, captured: 'unknown', reason: (error as Error).message };
  }
}

/** A JetStream publish nobody answered: no stream captures the subject (or the server has no JetStream). */
export function isNoStream(error: unknown): boolean {
  return (error as Error)?.name === 'JetStreamNotEnabled' || (error as Error)?.name === 'NoRespondersError';
}
