// source.failoverSlot: PostgreSQL 17+ synchronizes a logical slot created
// with FAILOVER to standbys that run with sync_replication_slots, so that
// after a promotion walrelay continues from the slot on the new primary
// instead of losing it (docs/failover.md). And what makes that safe:
// synchronized_standby_slots on the primary holds back walrelay's changes
// until those standbys have the WAL, so a promoted standby is never behind
// what walrelay already delivered.
import pg from 'pg';
import type { Config } from '../../config/schema.js';
import { WalrelayError } from '../errors.js';
import { hostUrl } from '../source/primary.js';
import type { SourceHost } from '../source/hosts.js';
import { step } from './pg-errors.js';

export const FAILOVER_MIN_VERSION = 170000;

/** Whether walrelay's slot should be a failover slot on this server; `true` before 17 is an error. */
export function wantsFailover(config: Config, serverVersion: number): boolean {
  const setting = config.source.failoverSlot;
  if (serverVersion >= FAILOVER_MIN_VERSION) return setting !== false;
  if (setting === true) {
    throw new WalrelayError('FAILOVER_UNSUPPORTED', `source.failoverSlot is true, but PostgreSQL ${Math.floor(serverVersion / 10000)} has no failover slots (PostgreSQL 17 added them)`, {
      kind: 'config', hint: 'set source.failoverSlot: auto (or false), or upgrade PostgreSQL to 17 or newer',
    });
  }
  return false;
}

export interface FailoverState {
  /** The slot's failover flag; false when the server has none or the slot does not exist. */
  failover: boolean;
  /** The primary's synchronized_standby_slots; null when empty or unknown to the server. */
  synchronizedStandbySlots: string | null;
}

export async function readFailoverState(client: pg.Client, slot: string, serverVersion: number): Promise<FailoverState> {
  if (serverVersion < FAILOVER_MIN_VERSION) return { failover: false, synchronizedStandbySlots: null };
  const row = (await client.query(`SELECT (SELECT failover FROM pg_replication_slots WHERE slot_name = $1) AS failover,
    current_setting('synchronized_standby_slots') AS standby_slots`, [slot])).rows[0];
  return { failover: row.failover === true, synchronizedStandbySlots: row.standby_slots || null };
}

/** The warning for a failover slot whose primary does not wait for any standby. */
export function unsynchronizedWarning(state: FailoverState): string | null {
  if (!state.failover || state.synchronizedStandbySlots) return null;
  return 'synchronized_standby_slots is empty on the primary: a standby can be promoted behind walrelay, so changes walrelay already delivered ' +
    'would not exist on the new primary (phantoms) and its copy of the slot could be older than what walrelay confirmed; ' +
    "set synchronized_standby_slots to the physical slots of the standbys that may be promoted (ALTER SYSTEM SET synchronized_standby_slots = 'standby1'; SELECT pg_reload_conf())";
}

/** ALTER_REPLICATION_SLOT … (FAILOVER true): a replication command, so on a replication connection of its own. */
export async function enableFailover(config: Config, host: SourceHost): Promise<void> {
  const client = new pg.Client({
    connectionString: hostUrl(config.source.url, host),
    replication: 'database',
    application_name: 'walrelay-admin',
    connectionTimeoutMillis: config.source.timeoutSeconds * 1000,
  } as pg.ClientConfig);
  client.on('error', () => undefined);
  await step(`turning on FAILOVER for replication slot ${config.source.slot}`, async () => {
    try {
      await client.connect();
      await client.query(`ALTER_REPLICATION_SLOT "${config.source.slot}" (FAILOVER true)`); // the slot name is a validated identifier
    } finally {
      await client.end().catch(() => undefined);
    }
  });
}
