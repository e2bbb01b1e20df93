// A projection consumer: account balances built from walrelay's change
// events of the `events` table, read from Redis Streams.
//
// Idempotent twice over: walrelay delivers at least once, so an event whose
// walrelay id is not above the last one applied from that stream is a
// re-delivery and skipped; and a rebuilt projection sees some events twice
// (as a backfill `read` and as a live `insert`), so each account's events
// are applied by version, each version once. A version that skips one is a
// lost event: the projection refuses to guess.
import type { Redis } from 'ioredis';

interface EventRow {
  stream_id: string;
  version: number;
  type: string;
  data: { amount?: number };
}

export class BalanceProjection {
  readonly balances = new Map<string, number>();
  private readonly versions = new Map<string, number>();
  /** Last walrelay id applied, per source stream. */
  private readonly lastIds = new Map<string, string>();
  /** Redis stream entry id to read after, per source stream. */
  private readonly cursors = new Map<string, string>();
  applied = 0;

  constructor(private readonly redis: Redis) {}

  /** Reads what `stream` holds after its cursor (from `from`, default the beginning) and applies it. */
  async catchUp(stream: string, from = '0'): Promise<number> {
    let cursor = this.cursors.get(stream) ?? from;
    let count = 0;
    for (;;) {
      const entries = await this.redis.xrange(stream, cursor === '0' ? '-' : `(${cursor}`, '+', 'COUNT', 1000);
      for (const [entryId, fields] of entries) {
        this.apply(stream, JSON.parse(fields[fields.indexOf('event') + 1]));
        cursor = entryId;
        count++;
      }
      if (entries.length < 1000) break;
    }
    this.cursors.set(stream, cursor);
    return count;
  }

  private apply(stream: string, event: { id: string; op: string; new: EventRow | null }): void {
    const last = this.lastIds.get(stream);
    if (last !== undefined && event.id <= last) return; // re-delivered
    this.lastIds.set(stream, event.id);
    if ((event.op !== 'insert' && event.op !== 'read') || !event.new) return;
    const row = event.new;
    const applied = this.versions.get(row.stream_id) ?? 0;
    if (row.version <= applied) return; // seen already (read and live insert of the same event)
    if (row.version !== applied + 1) throw new Error(`${row.stream_id}: version ${row.version} follows ${applied}: an event is missing`);
    this.versions.set(row.stream_id, row.version);
    const amount = row.data.amount ?? 0;
    const delta = row.type === 'MoneyDeposited' ? amount : row.type === 'MoneyWithdrawn' ? -amount : 0;
    this.balances.set(row.stream_id, (this.balances.get(row.stream_id) ?? 0) + delta);
    this.applied++;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.balances.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** Publishes the balances where readers look them up, as `name`. */
  async publish(name: string): Promise<void> {
    const flat = [...this.balances.entries()].flatMap(([account, balance]) => [account, String(balance)]);
    if (flat.length > 0) await this.redis.hset(name, ...flat);
  }
}
