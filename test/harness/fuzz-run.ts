// The pgoutput fuzz loop: real captured transactions (PostgreSQL 15 and 18),
// a backfill chunk and an origin, each with one or more messages damaged
// (fuzz-mutations.ts) or reordered, fed message by message to the parser and
// the transaction assembler, as the pipeline does. What must hold:
// - every failure is a WalrelayError with one of the expected codes and a hint;
// - every call returns (the worker wrapper watches for hangs).
// Events are counted, and those that are not valid JSON too: values are not
// checked against their type's text form (README "Decoder robustness"), so a
// number or a json value damaged inside intact framing is copied as it came.
import { parsePgoutput, type PgoutputMessage } from '../../relay/source/pgoutput.js';
import { TransactionAssembler } from '../../relay/route/assembler.js';
import { RelationDecoder } from '../../relay/source/relation.js';
import { TypeCatalog, type Queryable } from '../../relay/source/type-catalog.js';
import { eventJson, type ChangeEvent } from '../../relay/route/event.js';
import { WalrelayError } from '../../relay/errors.js';
import { BACKFILL_PREFIX } from '../../relay/backfill/backfill.js';
import type { Lsn } from '../../relay/lsn.js';
import { Bytes, capturedTransactions } from './pgoutput-bytes.js';
import { caseRandom, mutate, type Rng } from './fuzz-mutations.js';

/** The codes a damaged stream may produce; a new one must be added here on purpose. */
export const DECODE_ERROR_CODES = new Set([
  'PGOUTPUT_MALFORMED', 'PGOUTPUT_UNSUPPORTED', 'PGOUTPUT_UNKNOWN_RELATION', 'PGOUTPUT_OUT_OF_TRANSACTION',
  'VALUE_MALFORMED', 'BACKFILL_MALFORMED',
]);

export interface FuzzFailure {
  seed: number;
  index: number;
  stage: 'parse' | 'apply' | 'decode';
  mutations: string[];
  messageHex: string;
  error: string;
}

export interface FuzzStats {
  cases: number;
  messages: number;
  mutated: number;
  decoded: number;
  errors: Record<string, number>;
  events: number;
  /** Events whose JSON does not parse: a value damaged inside intact framing, copied as it came. */
  invalidEvents: number;
}

/** A backfill transaction as `walrelay backfill` writes it: Begin, one transactional message, Commit. */
function backfillTransaction(): Buffer[] {
  const chunk = JSON.stringify({
    v: 1, schema: 'public', table: 'kinds', columns: ['id', 'note', 'doc', 'tags', 'ok', 'at'], types: [23, 25, 3802, 1007, 16, 1184], key: ['id'],
    rows: [['1', 'a "b"', '{"k": [1, 2.50]}', '{1,NULL,3}', 't', '2026-11-22 10:00:00.5+00'], ['2', null, 'null', '{}', 'f', 'infinity']],
  });
  return [
    new Bytes().tag('B').u64(0x3000n).u64(1n).u32(900).done(),
    new Bytes().tag('M').u8(1).u64(0x2f00n).cstring(BACKFILL_PREFIX).u32(Buffer.byteLength(chunk)).raw(Buffer.from(chunk)).done(),
    new Bytes().tag('C').u8(0).u64(0x3000n).u64(0x3030n).u64(2n).done(),
  ];
}

/** A replicated transaction carries an Origin message after Begin (none in the capture: it needs a replication origin). */
function originTransaction(): Buffer[] {
  return [
    new Bytes().tag('B').u64(0x4000n).u64(1n).u32(901).done(),
    new Bytes().tag('O').u64(0x1234n).cstring('upstream').done(),
    new Bytes().tag('C').u8(0).u64(0x4000n).u64(0x4030n).u64(2n).done(),
  ];
}

export function fuzzCorpus(): Buffer[][] {
  return [...capturedTransactions('pg15'), ...capturedTransactions('pg18'), backfillTransaction(), originTransaction()];
}

/** pg_type as a catalog would see it after every user type was dropped: Type messages are all there is. */
const CATALOG_OF_DROPPED_TYPES: Queryable = {
  async query(text, values) {
    if (text.includes('to_regtype')) return { rows: (values![0] as unknown[]).map(() => ({ oid: null })) };
    return { rows: [] };
  },
};

const int = (rng: Rng, below: number) => Math.floor(rng() * below);

/** The messages of case `index`: a corpus transaction, damaged. */
export function fuzzCase(corpus: Buffer[][], seed: number, index: number): { messages: Buffer[]; mutated: Set<number>; mutations: string[] } {
  const rng = caseRandom(seed, index);
  const messages = corpus[int(rng, corpus.length)].slice();
  const mutated = new Set<number>();
  const mutations: string[] = [];
  const other = () => { const t = corpus[int(rng, corpus.length)]; return t[int(rng, t.length)]; };
  const roll = rng();
  if (roll < 0.1 && messages.length > 1) { // the sequence damaged, every message intact
    const i = int(rng, messages.length);
    const j = int(rng, messages.length);
    if (rng() < 0.5) { messages.splice(i, 1); mutations.push(`drop ${i}`); } else { [messages[i], messages[j]] = [messages[j], messages[i]]; mutations.push(`swap ${i} ${j}`); }
  }
  const count = roll > 0.8 ? 1 + int(rng, 3) : 1;
  for (let n = 0; n < count; n++) {
    const i = int(rng, messages.length);
    const result = mutate(messages[i], rng, other());
    messages[i] = result.bytes;
    mutated.add(i);
    mutations.push(`${i}: ${result.applied.join('+')}`);
  }
  return { messages, mutated, mutations };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.constructor.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
}

/**
 * Runs cases until `minMutated` damaged messages went through; returns the
 * first failure (or null) and what was seen. `onProgress` is called every
 * 500 cases.
 */
export async function runFuzz(seed: number, minMutated: number, onProgress: (index: number) => void = () => undefined): Promise<{ failure: FuzzFailure | null; stats: FuzzStats }> {
  const corpus = fuzzCorpus();
  const catalog = new TypeCatalog(CATALOG_OF_DROPPED_TYPES);
  const stats: FuzzStats = { cases: 0, messages: 0, mutated: 0, decoded: 0, errors: {}, events: 0, invalidEvents: 0 };
  for (let index = 0; stats.mutated < minMutated; index++) {
    if (index % 500 === 0) onProgress(index);
    const { messages, mutated, mutations } = fuzzCase(corpus, seed, index);
    stats.cases++;
    const events: ChangeEvent[] = [];
    const assembler = new TransactionAssembler(catalog, { event: (event) => { events.push(event); }, commit: () => undefined });
    const relations = new Map<number, RelationDecoder>();
    let stage: FuzzFailure['stage'] = 'parse';
    let current = messages[0];
    const fail = (error: unknown): FuzzFailure => ({ seed, index, stage, mutations, messageHex: current.subarray(0, 256).toString('hex') + (current.length > 256 ? `… (${current.length} bytes)` : ''), error: describe(error) });
    try {
      for (let i = 0; i < messages.length; i++) {
        current = messages[i];
        stats.messages++;
        if (mutated.has(i)) stats.mutated++;
        stage = 'parse';
        const message: PgoutputMessage = parsePgoutput(current);
        stage = 'apply';
        const pending = assembler.apply(message, BigInt(0x1000 + i) as Lsn);
        if (pending) await pending;
        stage = 'decode'; // the value converters too, not only the JSON fragments of the event path
        if (message.tag === 'relation') relations.set(message.relationId, new RelationDecoder(message, catalog));
        if (message.tag === 'insert' || message.tag === 'update' || message.tag === 'delete') {
          const relation = relations.get(message.relationId)!;
          for (const tuple of [(message as any).newTuple, (message as any).oldTuple, (message as any).keyTuple]) {
            if (tuple) { relation.decodeRow(tuple); relation.keyOf(tuple); stats.decoded++; }
          }
        }
        for (const event of events.splice(0)) {
          stats.events++;
          try { JSON.parse(eventJson(event)); } catch { stats.invalidEvents++; }
        }
      }
    } catch (error) {
      if (!(error instanceof WalrelayError) || !DECODE_ERROR_CODES.has(error.code) || !error.hint) {
        return { failure: fail(error), stats };
      }
      stats.errors[error.code] = (stats.errors[error.code] ?? 0) + 1;
    }
  }
  onProgress(stats.cases);
  return { failure: null, stats };
}
