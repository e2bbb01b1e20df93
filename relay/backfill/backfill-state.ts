// Backfill progress, saved after every chunk so that an interrupted backfill
// resumes where it stopped. A table's progress is keyed by what makes it the
// same rows: the database cluster (system identifier), the database, the slot
// the events flow through, and the table's oid. A table of the same name in
// another database, behind another slot, or dropped and created again is a
// different table and starts from the beginning.
import { readFileSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type pg from 'pg';
import { WalrelayError } from '../errors.js';

export interface DatabaseIdentity {
  systemIdentifier: string;
  database: string;
  slot: string;
}

export interface TableProgress {
  table: string;
  /** Order-column values of the last row emitted; null before the first chunk. */
  after: (string | null)[] | null;
  rows: number;
  done: boolean;
  updatedAt: string;
}

interface StateFile {
  version: 2;
  tables: Record<string, TableProgress>;
}

export async function databaseIdentity(client: pg.Client, slot: string): Promise<DatabaseIdentity> {
  const row = (await client.query('SELECT system_identifier::text AS id, current_database() AS db FROM pg_control_system()')).rows[0];
  return { systemIdentifier: row.id, database: row.db, slot };
}

export function progressKey(identity: DatabaseIdentity, oid: number): string {
  return `${identity.systemIdentifier}/${identity.database}/${identity.slot}/${oid}`;
}

export class BackfillState {
  private readonly state: StateFile;

  private constructor(readonly file: string | undefined, state: StateFile, readonly ignoredOldFormat: boolean) {
    this.state = state;
  }

  /** No file: progress is kept in memory only (snapshot: initial, which runs once with its slot). */
  static open(file: string | undefined): BackfillState {
    if (!file) return new BackfillState(undefined, { version: 2, tables: {} }, false);
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new BackfillState(file, { version: 2, tables: {} }, false);
      throw new WalrelayError('BACKFILL_STATE', `cannot read backfill state ${file}: ${(error as Error).message}`, { hint: 'delete the file to start the backfill over' });
    }
    const state = parsed as Partial<StateFile>;
    if (state.version !== 2 || typeof state.tables !== 'object' || state.tables === null) {
      // The first format was keyed by table name only: it cannot say which database it describes.
      return new BackfillState(file, { version: 2, tables: {} }, true);
    }
    return new BackfillState(file, state as StateFile, false);
  }

  get(key: string): TableProgress | undefined {
    return this.state.tables[key];
  }

  /** Entries for a table of this name under another key: another database, slot, or an earlier table. */
  othersNamed(table: string, key: string): string[] {
    return Object.entries(this.state.tables).filter(([other, progress]) => other !== key && progress.table === table).map(([other]) => other);
  }

  set(key: string, progress: TableProgress): void {
    this.state.tables[key] = progress;
    this.save();
  }

  private save(): void {
    if (!this.file) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(`${this.file}.tmp`, JSON.stringify(this.state, null, 2));
      renameSync(`${this.file}.tmp`, this.file);
    } catch (error) {
      throw new WalrelayError('BACKFILL_STATE', `cannot write backfill state ${this.file}: ${(error as Error).message}`, {
        hint: 'set backfill.stateFile in the configuration (or --state FILE) to a writable path',
      });
    }
  }
}
