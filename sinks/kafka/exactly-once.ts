// Exactly-once delivery into Kafka (`exactlyOnce: true`): each batch of
// events and walrelay's checkpoint (the id of the batch's last event) are
// written in one Kafka transaction, under a transactional id.
//
// After a crash, restart or any failed attempt, the writer starts a new epoch
// of the transactional id (InitProducerId): that aborts whatever an earlier
// attempt or an earlier walrelay left open, and fences any older producer of
// the id — a paused walrelay that wakes up can no longer commit. It then
// reads the last committed checkpoint (read_committed) and skips the events
// Kafka already has: PostgreSQL re-sends from the confirmed LSN, which may be
// behind what Kafka committed. Event ids sort in stream order (commit LSN
// then position), so "already has" is a string comparison.
import type { Logger } from 'pino';
import { addressedRecord, type AddressedRecord, type KafkaProducer } from './protocol/producer.js';

/** One event's records, in order. */
export interface EventRecords {
  id: string;
  lsn: string;
  records: readonly AddressedRecord[];
}

interface Checkpoint {
  lastEventId: string;
  lsn: string;
}

export class ExactlyOnceWriter {
  /** The last event id Kafka committed for this sink; undefined until read under the current epoch. */
  private committed: string | null | undefined = undefined;

  constructor(
    private readonly producer: KafkaProducer,
    private readonly checkpointTopic: string,
    private readonly transactionalId: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Delivers the events not yet in Kafka, with the checkpoint, as one
   * transaction. An event may be several records (Debezium: a delete and its
   * tombstone; a key change is a delete, a tombstone and a create) or none:
   * skipping and the checkpoint go by event, what is sent by record.
   */
  async deliver(events: readonly EventRecords[]): Promise<void> {
    try {
      if (this.committed === undefined) {
        await this.producer.connect(); // a new epoch: fences older producers, aborts their open transaction
        const value = await this.producer.readLastCommitted(this.checkpointTopic, this.transactionalId);
        this.committed = value === null ? null : lastEventIdOf(value, this.transactionalId, this.logger);
        this.logger.info({ transactionalId: this.transactionalId, lastEventId: this.committed }, 'kafka exactly-once: read the last committed checkpoint');
      }
      const committed = this.committed;
      let start = 0;
      if (committed !== null) while (start < events.length && events[start].id <= committed) start++;
      if (start > 0) this.logger.info({ skipped: start, lastEventId: committed }, 'kafka exactly-once: skipped events Kafka already has');
      if (start === events.length) return;
      const last = events[events.length - 1];
      const checkpoint: Checkpoint = { lastEventId: last.id, lsn: last.lsn };
      const fresh = events.slice(start).flatMap((event) => event.records);
      fresh.push(addressedRecord(this.checkpointTopic, this.transactionalId, JSON.stringify(checkpoint), []));
      await this.producer.sendTransaction(fresh);
      this.committed = last.id;
    } catch (error) {
      // Whatever this attempt left open is aborted by the next epoch; the checkpoint is read again then.
      this.producer.abandonTransaction();
      this.committed = undefined;
      throw error;
    }
  }
}

/**
 * The event id a checkpoint record holds, or null. Walrelay before this fix
 * wrote `{}` for a batch of Debezium records ending in a delete; such a
 * checkpoint names nothing, so nothing is skipped once (what that version
 * delivered anyway), said in a warning.
 */
function lastEventIdOf(value: string, transactionalId: string, logger: Logger): string | null {
  let parsed: Partial<Checkpoint> | undefined;
  try {
    parsed = JSON.parse(value) as Partial<Checkpoint>;
  } catch {
    parsed = undefined;
  }
  if (typeof parsed?.lastEventId === 'string') return parsed.lastEventId;
  logger.warn({ transactionalId, checkpoint: value.slice(0, 200) },
    'kafka exactly-once: the last checkpoint names no event (written by an older walrelay); events PostgreSQL re-sends now may be in Kafka twice, once');
  return null;
}
