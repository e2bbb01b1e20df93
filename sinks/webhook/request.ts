// One HTTP POST over undici's keep-alive connection pool. A receiver that
// accepts the connection and does not answer within `timeoutMs` (or stalls
// that long in the middle of its answer) is abandoned.
// undici rather than node:http: measured (docs/sinks/webhook.md) at about a
// third of node:http's CPU per request, which is most of walrelay's work at
// batchSize 1.
import { Pool } from 'undici';

/** How much of an answer's body is kept (for logs and dead letters); the rest is read and dropped. */
export const BODY_EXCERPT_BYTES = 1024;

export interface HttpAnswer {
  status: number;
  /** The first BODY_EXCERPT_BYTES of the body, as text. */
  body: string;
  /** Retry-After, in milliseconds from now, when the answer carries a valid one. */
  retryAfterMs?: number;
}

export class RequestTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs / 1000} s (timeoutSeconds)`);
    this.name = 'RequestTimeout';
  }
}

export class WebhookClient {
  private readonly url: URL;
  private readonly pool: Pool;
  private readonly path: string;

  constructor(url: string, connections: number, private readonly timeoutMs: number) {
    this.url = new URL(url);
    this.path = `${this.url.pathname}${this.url.search}`;
    // undici's timeouts, not a timer per request (measured: an AbortSignal each cost 7% of the CPU at batchSize 1):
    // the answer's head must come within timeoutMs, then each part of its body within timeoutMs of the last.
    this.pool = new Pool(this.url.origin, { connections, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connect: { timeout: timeoutMs } });
  }

  get address(): string {
    return `${this.url.origin}${this.url.pathname}`;
  }

  async post(body: string, headers: Record<string, string>): Promise<HttpAnswer> {
    try {
      const response = await this.pool.request({ path: this.path, method: 'POST', headers, body });
      const chunks: Buffer[] = [];
      let kept = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        if (kept < BODY_EXCERPT_BYTES) {
          chunks.push(chunk.subarray(0, BODY_EXCERPT_BYTES - kept));
          kept += Math.min(chunk.length, BODY_EXCERPT_BYTES - kept);
        }
      }
      const retryAfter = response.headers['retry-after'];
      return { status: response.statusCode, body: Buffer.concat(chunks).toString('utf8'), retryAfterMs: retryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) };
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') throw new RequestTimeout(this.timeoutMs);
      throw error;
    }
  }

  /** Ends the pooled connections, and with them any request under way. */
  close(): void {
    void this.pool.destroy().catch(() => undefined);
  }
}

/** Retry-After as seconds or as an HTTP date (RFC 9110 10.2.3). */
export function retryAfterMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
