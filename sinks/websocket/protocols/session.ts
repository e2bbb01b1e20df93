// What a websocket protocol plugs into the sink: one Session per connected
// socket. The sink owns the port, the replay ring, authentication and the
// fan-out loop; a session turns client frames into subscriptions and each
// change into the frames its protocol sends (walrelay's own: native.ts;
// Supabase Realtime: realtime/session.ts).
import type { RawData } from 'ws';
import type { Logger } from 'pino';
import type { ChangeEvent } from '../../../relay/route/event.js';
import type { WebsocketSinkConfig } from '../../../config/schema.js';
import type { Verifier } from '../auth.js';
import type { Client } from '../client.js';
import type { ReplayRing } from '../ring.js';
import type { RefusalReason } from '../admission.js';
import type { FrameCache } from '../frame-cache.js';
import type { SinkFeedHistory } from '../feed-history.js';

export interface SessionContext {
  readonly config: WebsocketSinkConfig;
  readonly ring: ReplayRing;
  readonly verify: Verifier;
  readonly logger: Logger;
  /** Change frames of the change being fanned out, built once for every client that gets the same bytes. */
  readonly frames: FrameCache;
  /** The source database's name (Debezium's source.db); on an edge it comes with each event's origin instead. */
  readonly database?: string;
  /** On `walrelay edge`: the feed, read when a client resumes from further back than the ring holds. */
  readonly history?: SinkFeedHistory;
  /** Closes the client's socket with a close code, counted in the metrics. */
  drop(client: Client, code: number, reason: string): void;
  /** Counts a refusal in walrelay_websocket_refused_total{reason}. */
  refused(reason: RefusalReason): void;
}

export interface Session {
  readonly client: Client;
  /** A frame from the client. */
  receive(data: RawData, isBinary: boolean): void | Promise<void>;
  /** One change, already in the ring at `position`; `name` is schema.table, null for messages. */
  deliver(event: ChangeEvent, name: string | null, position: number): void;
  /** The socket is gone (closed by either side): stop timers, remember what resuming needs. */
  end(): void;
}

/** Total bytes of a frame as ws hands it over. */
export function frameSize(data: RawData): number {
  return Array.isArray(data) ? data.reduce((total, part) => total + part.length, 0) : (data as Buffer).byteLength;
}
