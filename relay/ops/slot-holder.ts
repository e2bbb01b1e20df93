// Who holds a replication slot. PostgreSQL's "slot is active for PID n"
// names its own walsender process, not the consumer: the consumer is the
// client of that walsender, which pg_stat_replication shows.
import type { Config } from '../../config/schema.js';
import { withSourceClient } from '../setup/setup.js';

export interface SlotHolder {
  walsenderPid: number;
  clientAddress: string | null;
  applicationName: string | null;
}

/** `queryTimeoutMs`: the relay asks while it waits for the slot, and must not hang on a hung server. */
export async function findSlotHolder(config: Config, queryTimeoutMs?: number): Promise<SlotHolder | null> {
  return withSourceClient(config, async (client) => {
    const row = (await client.query(
      `SELECT s.active_pid AS pid, r.client_addr::text AS addr, r.client_port AS port, r.application_name AS app
         FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
        WHERE s.slot_name = $1 AND s.active_pid IS NOT NULL`, [config.source.slot])).rows[0];
    if (!row) return null;
    const address = row.addr ? `${String(row.addr).replace(/\/\d+$/, '')}:${row.port}` : null;
    return { walsenderPid: row.pid, clientAddress: address, applicationName: row.app || null };
  }, { queryTimeoutMs });
}

/** "walsender PID 812 (a PostgreSQL process) serving walrelay at 127.0.0.1:50412" */
export function describeSlotHolder(holder: SlotHolder): string {
  const client = holder.clientAddress ? ` at ${holder.clientAddress}` : '';
  return `walsender PID ${holder.walsenderPid} (a PostgreSQL server process, not walrelay's) serving ${holder.applicationName ?? 'a client'}${client}`;
}
