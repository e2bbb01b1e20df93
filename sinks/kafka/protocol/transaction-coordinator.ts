// The transaction coordinator of one transactional id: the broker that
// InitProducerId, AddPartitionsToTxn and EndTxn go to. It is found with
// FindCoordinator and found again when it moves; answers that mean "not
// now" (loading, moved, the previous transaction still completing) are
// retried after a short pause, for up to a bounded time.
import type { KafkaConnection } from './connection.js';
import { KafkaResponseError } from './messages.js';
import { Backoff } from '../../../relay/backoff.js';
import {
  TXN_API, writeFindTransactionCoordinator, readFindCoordinator, writeTransactionalInitProducerId,
  writeAddPartitionsToTxn, readAddPartitionsToTxn, writeEndTxn, readEndTxn, type TxnIdentity,
} from './transaction-messages.js';
import { readInitProducerIdResponse } from './messages.js';

/** COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS. */
const NOT_NOW = new Set([14, 15, 16, 51]);
const MOVED = new Set([15, 16]);
const RETRY_MS = 100;
const GIVE_UP_MS = 30_000;

export class TransactionCoordinator {
  private connection: KafkaConnection | null = null;

  constructor(
    readonly transactionalId: string,
    private readonly transactionTimeoutMs: number,
    private readonly anyBroker: () => Promise<KafkaConnection>,
    private readonly open: (host: string, port: number) => Promise<KafkaConnection>,
  ) {}

  /** Fences every earlier producer of this id (aborting its open transaction) and returns the new epoch. */
  async initProducerId(): Promise<TxnIdentity> {
    const response = await this.call('InitProducerId', TXN_API.initProducerId,
      (w) => writeTransactionalInitProducerId(w, this.transactionalId, this.transactionTimeoutMs),
      (r) => { const answer = readInitProducerIdResponse(r); return { code: answer.errorCode, value: answer }; });
    return { transactionalId: this.transactionalId, producerId: response.producerId, producerEpoch: response.producerEpoch };
  }

  async addPartitions(identity: TxnIdentity, partitions: Map<string, number[]>): Promise<void> {
    await this.call('AddPartitionsToTxn', TXN_API.addPartitionsToTxn, (w) => writeAddPartitionsToTxn(w, identity, partitions), (r) => ({ code: readAddPartitionsToTxn(r), value: null }));
  }

  async end(identity: TxnIdentity, commit: boolean): Promise<void> {
    await this.call(commit ? 'EndTxn(commit)' : 'EndTxn(abort)', TXN_API.endTxn, (w) => writeEndTxn(w, identity, commit), (r) => ({ code: readEndTxn(r), value: null }));
  }

  close(): void {
    this.connection?.close();
    this.connection = null;
  }

  private async call<T>(what: string, api: { key: number; version: number }, write: Parameters<KafkaConnection['request']>[1], read: (reader: Awaited<ReturnType<KafkaConnection['request']>>) => { code: number; value: T }): Promise<T> {
    const deadline = Date.now() + GIVE_UP_MS;
    const pause = new Backoff(RETRY_MS, RETRY_MS);
    for (;;) {
      const connection = await this.coordinator();
      const { code, value } = read(await connection.request(api, write));
      if (code === 0) return value;
      if (!NOT_NOW.has(code) || Date.now() > deadline) throw new KafkaResponseError(code, `${what} for transactional id ${this.transactionalId}`);
      if (MOVED.has(code)) this.close();
      await pause.wait();
    }
  }

  private async coordinator(): Promise<KafkaConnection> {
    if (this.connection && !this.connection.broken) return this.connection;
    const deadline = Date.now() + GIVE_UP_MS;
    const pause = new Backoff(RETRY_MS, RETRY_MS);
    for (;;) {
      const broker = await this.anyBroker();
      const found = readFindCoordinator(await broker.request(TXN_API.findCoordinator, (w) => writeFindTransactionCoordinator(w, this.transactionalId)));
      if (found.errorCode === 0) {
        this.connection = await this.open(found.host, found.port);
        return this.connection;
      }
      if (!NOT_NOW.has(found.errorCode) || Date.now() > deadline) throw new KafkaResponseError(found.errorCode, `FindCoordinator for transactional id ${this.transactionalId}`);
      await pause.wait();
    }
  }
}
