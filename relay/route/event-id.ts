// An event of a transaction is identified by its transaction's commit LSN
// (16 hex digits and '-', the id prefix) and its position in the transaction
// in 10 digits, zero-padded so that ids sort as strings (assembler.ts).

/** Digits of an event's position in its id. */
export const SEQ_DIGITS = 10;

/** The id of the event at position `seq` of the transaction with `idPrefix`. */
export function eventId(idPrefix: string, seq: number): string {
  return idPrefix + String(seq).padStart(SEQ_DIGITS, '0');
}
