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

  /** Delivers the records not yet in Kafka, with the checkpoint, as one transaction. `ids[i]` and `lsns[i]` belong to `records[i]`. */
  async deliver(records: readonly AddressedRecord[], ids: readonly string[], lsns: readonly string[]): Promise<void> {
    try {
      if (this.committed === undefined) {
        await this.producer.connect(); // a new epoch: fences older producers, aborts their open transaction
        const value = await this.producer.readLastCommitted(this.checkpointTopic, this.transactionalId);
        this.committed = value === null ? null : (JSON.parse(value) as Checkpoint).lastEventId;
        this.logger.info({ transactionalId: this.transactionalId, lastEventId: this.committed }, 'kafka exactly-once: read the last committed checkpoint');
      }
      const committed = this.committed;
      let start = 0;
      if (committed !== null) while (start < ids.length && ids[start] <= committed) start++;
      if (start > 0) this.logger.info({ skipped: start, lastEventId: committed }, 'kafka exactly-once: skipped events Kafka already has');
      if (start === records.length) return;
      const last = records.length - 1;
      const checkpoint: Checkpoint = { lastEventId: ids[last], lsn: lsns[last] };
      const fresh = start === 0 ? [...records] : records.slice(start);
      fresh.push(addressedRecord(this.checkpointTopic, this.transactionalId, JSON.stringify(checkpoint), []));
      await this.producer.sendTransaction(fresh);
      this.committed = ids[last];
    } catch (error) {
      // Whatever this attempt left open is aborted by the next epoch; the checkpoint is read again then.
      this.producer.abandonTransaction();
      this.committed = undefined;
      throw error;
    }
  }
}
