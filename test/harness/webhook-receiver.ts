// A webhook receiver for tests: a real HTTP server on a random loopback
// port that records every request (headers and exact body), answers as the
// test says (a status, Retry-After, a delay, or never), and notices when two
// requests holding events of the same row key are in flight at once.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  headers: IncomingHttpHeaders;
  body: string;
  /** The events of the body (one, or the array's). */
  events: Record<string, any>[];
  status?: number;
  /** When the request arrived (ms since the epoch). */
  at: number;
}

/** What to answer: a status (with headers and body), or "hang" (never answer). */
export type Answer = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'hang';

export interface WebhookReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** Decides the answer to each request; default 200 at once. */
  answer: (request: ReceivedRequest) => Answer;
  /** Most requests in flight at once so far. */
  readonly peakInFlight: number;
  /** Row keys seen in two requests in flight at the same time. */
  readonly overlappingKeys: string[];
  /** Events of the requests answered 2xx, in the order the answers were sent. */
  accepted(): Record<string, any>[];
  close(): Promise<void>;
}

/** A row event's key as a string (schema.table + key JSON); other events have none. */
export function rowKey(event: Record<string, any>): string | null {
  return event.key ? `${event.schema}.${event.table}:${JSON.stringify(event.key)}` : null;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: ReceivedRequest[] = [];
  const acceptedEvents: Record<string, any>[] = [];
  const inFlightKeys = new Map<string, number>();
  const overlapping: string[] = [];
  const hanging = new Set<ServerResponse>();
  let inFlight = 0;
  let peak = 0;
  const receiver: WebhookReceiver = {
    url: '',
    requests,
    answer: () => ({ status: 200 }),
    get peakInFlight() { return peak; },
    get overlappingKeys() { return overlapping; },
    accepted: () => acceptedEvents,
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let parsed: unknown;
      try { parsed = JSON.parse(body); } catch { parsed = null; }
      const events = (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, any>[];
      const received: ReceivedRequest = { headers: request.headers, body, events, at: Date.now() };
      requests.push(received);
      const keys = [...new Set(events.map((event) => (event && typeof event === 'object' ? rowKey(event.data ?? event) : null)).filter((key): key is string => key !== null))];
      for (const key of keys) {
        if ((inFlightKeys.get(key) ?? 0) > 0) overlapping.push(key);
        inFlightKeys.set(key, (inFlightKeys.get(key) ?? 0) + 1);
      }
      inFlight++;
      peak = Math.max(peak, inFlight);
      const done = () => {
        inFlight--;
        for (const key of keys) inFlightKeys.set(key, inFlightKeys.get(key)! - 1);
      };
      const answer = receiver.answer(received);
      if (answer === 'hang') {
        hanging.add(response);
        response.on('close', () => { hanging.delete(response); done(); });
        return;
      }
      const send = () => {
        done();
        received.status = answer.status;
        if (answer.status >= 200 && answer.status < 300) acceptedEvents.push(...events);
        response.writeHead(answer.status, answer.headers ?? {});
        response.end(answer.body ?? '');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return receiver;
}
