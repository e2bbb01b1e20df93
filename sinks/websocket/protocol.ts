// Client → server frames, validated; anything else becomes an error frame.
export interface SubscribeFrame {
  type: 'subscribe';
  id: string;
  table: string;
  ops?: string[];
  filter?: string;
  since?: string;
  /** Replay this many of the latest held events that match, before live ones (a page opened late shows recent changes). */
  recent?: number;
  conflate?: boolean;
}

export type ClientFrame =
  | SubscribeFrame
  | { type: 'unsubscribe'; id: string }
  | { type: 'auth'; token: string };

/**
 * A walrelay event id: the commit (or message) LSN as 16 upper-case hex
 * digits, then the position in the transaction (or -.begin / -~commit; a
 * schema event's id ends in .schema, schema-event.ts).
 * Anything else would compare as an id ahead of every held event and wait.
 */
const EVENT_ID = /^[0-9A-F]{16}(-([0-9]{10}(\.schema)?|\.begin|\.schema|~commit))?$/;

export class FrameError extends Error {
  constructor(readonly code: string, message: string, readonly id?: string) {
    super(message);
  }
}

/** A bound on what one subscribe may ask to replay. */
export const MAX_RECENT = 1000;

const OPS = new Set(['insert', 'update', 'delete', 'truncate', 'message', 'read', 'gap', 'schema']);

export function parseClientFrame(text: string): ClientFrame {
  let frame: any;
  try {
    frame = JSON.parse(text);
  } catch {
    throw new FrameError('bad_request', 'malformed JSON');
  }
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) throw new FrameError('bad_request', 'a frame must be a JSON object with a type');
  const id = typeof frame.id === 'string' ? frame.id : undefined;
  switch (frame.type) {
    case 'subscribe': {
      if (!id) throw new FrameError('bad_request', 'subscribe needs a string id');
      if (typeof frame.table !== 'string' || !/^(\*|[^.\s]+\.[^.\s]+)$/.test(frame.table)) {
        throw new FrameError('bad_request', 'subscribe needs table: "schema.table" (patterns such as "public.*" allowed)', id);
      }
      if (frame.ops !== undefined && (!Array.isArray(frame.ops) || !frame.ops.every((op: unknown) => typeof op === 'string' && OPS.has(op)))) {
        throw new FrameError('bad_request', `ops must be an array of ${[...OPS].join(', ')}`, id);
      }
      if (frame.filter !== undefined && typeof frame.filter !== 'string') throw new FrameError('bad_request', 'filter must be a string such as "status=eq.paid"', id);
      if (frame.since !== undefined && (typeof frame.since !== 'string' || !EVENT_ID.test(frame.since))) {
        throw new FrameError('bad_request', 'since must be an event id, as the change frames carry it (e.g. 00000000016B3A28-0000000003)', id);
      }
      if (frame.recent !== undefined && (!Number.isInteger(frame.recent) || frame.recent < 0 || frame.recent > MAX_RECENT)) throw new FrameError('bad_request', `recent must be an integer from 0 to ${MAX_RECENT}`, id);
      if (frame.recent !== undefined && frame.since !== undefined) throw new FrameError('bad_request', 'give since (resume after an event) or recent (the latest events), not both', id);
      if (frame.conflate !== undefined && typeof frame.conflate !== 'boolean') throw new FrameError('bad_request', 'conflate must be true or false', id);
      return { type: 'subscribe', id, table: frame.table, ops: frame.ops, filter: frame.filter, since: frame.since, recent: frame.recent, conflate: frame.conflate };
    }
    case 'unsubscribe':
      if (!id) throw new FrameError('bad_request', 'unsubscribe needs the subscription id');
      return { type: 'unsubscribe', id };
    case 'auth':
      if (typeof frame.token !== 'string') throw new FrameError('bad_request', 'auth needs a token');
      return { type: 'auth', token: frame.token };
    default:
      throw new FrameError('bad_request', `unknown frame type ${JSON.stringify(frame.type)}; expected subscribe, unsubscribe or auth`, id);
  }
}

export function errorFrame(code: string, message: string, id?: string): string {
  return JSON.stringify(id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message });
}
