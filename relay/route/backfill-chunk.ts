// Reads the content of a backfill message (written by `walrelay backfill`,
// relay/backfill/backfill.ts) and checks its shape before any of it is used: the
// bytes come from the replication stream like any other, and a chunk that is
// not what backfill writes is a decode error with a code, not a TypeError.
import { WalrelayError } from '../errors.js';
import { DECODE_ERROR_HINT } from '../source/pgoutput.js';
import type { BackfillChunk } from '../backfill/backfill.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function readBackfillChunk(content: Buffer): BackfillChunk {
  let chunk: any;
  try {
    chunk = JSON.parse(utf8.decode(content));
  } catch (error) {
    throw malformed(`its content is not UTF-8 JSON (${(error as Error).message})`);
  }
  if (chunk === null || typeof chunk !== 'object' || chunk.v !== 1) throw malformed('its content is not a version 1 chunk');
  if (typeof chunk.schema !== 'string' || typeof chunk.table !== 'string') throw malformed('schema or table is not a string');
  if (!isStrings(chunk.columns) || !isStrings(chunk.key)) throw malformed('columns or key is not an array of strings');
  if (!Array.isArray(chunk.types) || chunk.types.length !== chunk.columns.length || !chunk.types.every(isOid)) {
    throw malformed('types is not one type OID per column');
  }
  if (chunk.typeMods !== undefined && (!Array.isArray(chunk.typeMods) || chunk.typeMods.length !== chunk.columns.length || !chunk.typeMods.every(Number.isInteger))) {
    throw malformed('typeMods is not one type modifier per column');
  }
  if (!chunk.key.every((column: string) => chunk.columns.includes(column))) throw malformed('key names a column the chunk lacks');
  if (!Array.isArray(chunk.rows)) throw malformed('rows is not an array');
  for (const row of chunk.rows) {
    if (!Array.isArray(row) || row.length !== chunk.columns.length || !row.every((value) => value === null || typeof value === 'string')) {
      throw malformed(`a row is not ${chunk.columns.length} text values or nulls`);
    }
  }
  if (chunk.target !== undefined && (typeof chunk.target?.sink !== 'string' || (chunk.target.stream !== undefined && typeof chunk.target.stream !== 'string'))) {
    throw malformed('target is not { sink, stream? } strings');
  }
  return chunk as BackfillChunk;
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function isOid(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff;
}

function malformed(reason: string): WalrelayError {
  return new WalrelayError('BACKFILL_MALFORMED', `a backfill message in the replication stream cannot be read: ${reason}`, { hint: DECODE_ERROR_HINT });
}
