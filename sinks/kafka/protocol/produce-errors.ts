// What the idempotent producer does with each partition's answer to a
// Produce request, decided in one place (after the Java client's Sender and
// TransactionManager):
// - a duplicate sequence means the broker already holds the batch: delivered;
// - the partition moved (leader changed, broker gone): refresh metadata at
//   once and re-send the same batch to the new leader;
// - transient trouble (too few in-sync replicas, a timeout): re-send the same
//   batch after a short pause;
// - the broker lost or refused this producer's identity: only then start
//   over under a new producer id (and the log says so: what had landed
//   unacknowledged may appear twice);
// - anything else (too large, not authorised) goes to the sink, which stops
//   or retries it with backoff.
export type ProduceOutcome = 'delivered' | 'moved' | 'transient' | 'out-of-order' | 'reset-producer' | 'fail';

const MOVED = new Set([
  3, // UNKNOWN_TOPIC_OR_PARTITION
  5, // LEADER_NOT_AVAILABLE
  6, // NOT_LEADER_OR_FOLLOWER
  8, // BROKER_NOT_AVAILABLE
  9, // REPLICA_NOT_AVAILABLE
  13, // NETWORK_EXCEPTION
  56, // KAFKA_STORAGE_ERROR
  74, // FENCED_LEADER_EPOCH
  75, // UNKNOWN_LEADER_EPOCH
]);

const TRANSIENT = new Set([
  -1, // UNKNOWN_SERVER_ERROR: never drop; the sink's retry logs it if it persists
  2, // CORRUPT_MESSAGE (a bit flip on the way: re-send)
  7, // REQUEST_TIMED_OUT
  14, // COORDINATOR_LOAD_IN_PROGRESS
  15, // COORDINATOR_NOT_AVAILABLE
  16, // NOT_COORDINATOR
  19, // NOT_ENOUGH_REPLICAS
  20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND (appended but not replicated: the re-send is recognised)
  41, // NOT_CONTROLLER
  51, // CONCURRENT_TRANSACTIONS
  89, // THROTTLING_QUOTA_EXCEEDED
]);

const RESET = new Set([
  47, // INVALID_PRODUCER_EPOCH
  59, // UNKNOWN_PRODUCER_ID (the broker expired this producer's state)
  90, // PRODUCER_FENCED
]);

export const OUT_OF_ORDER_SEQUENCE_NUMBER = 45;
const DUPLICATE_SEQUENCE_NUMBER = 46;

export function produceOutcome(code: number): ProduceOutcome {
  if (code === 0 || code === DUPLICATE_SEQUENCE_NUMBER) return 'delivered';
  if (MOVED.has(code)) return 'moved';
  if (TRANSIENT.has(code)) return 'transient';
  // Out of order after an earlier batch of the partition failed is expected
  // (the broker wants that one first); only on the oldest batch is it fatal.
  if (code === OUT_OF_ORDER_SEQUENCE_NUMBER) return 'out-of-order';
  if (RESET.has(code)) return 'reset-producer';
  return 'fail';
}
