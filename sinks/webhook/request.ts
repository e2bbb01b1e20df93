// One HTTP POST over a keep-alive connection pool (node:http's Agent), with a
// deadline for the whole exchange: a receiver that accepts the connection and
// never answers is abandoned after `timeoutMs`, its socket destroyed.
import http from 'node:http';
import https from 'node:https';

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
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;

  constructor(url: string, maxSockets: number, private readonly timeoutMs: number) {
    this.url = new URL(url);
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
    this.request = secure ? https.request : http.request;
  }

  get address(): string {
    return `${this.url.origin}${this.url.pathname}`;
  }

  post(body: string, headers: Record<string, string>): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const request = this.request(this.url, { method: 'POST', agent: this.agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (response) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        response.on('data', (chunk: Buffer) => {
          if (kept < BODY_EXCERPT_BYTES) {
            chunks.push(chunk.subarray(0, BODY_EXCERPT_BYTES - kept));
            kept += Math.min(chunk.length, BODY_EXCERPT_BYTES - kept);
          }
        });
        response.on('end', () => {
          clearTimeout(timer);
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), retryAfterMs: retryAfterMs(response.headers['retry-after']) });
        });
        response.on('error', fail);
        response.on('aborted', () => fail(new Error('the receiver closed the connection before the end of its answer')));
      });
      const timer = setTimeout(() => request.destroy(new RequestTimeout(this.timeoutMs)), this.timeoutMs);
      function fail(error: Error): void {
        clearTimeout(timer);
        reject(error);
      }
      request.on('error', fail);
      request.end(body);
    });
  }

  /** Ends the pooled connections, and with them any request under way. */
  close(): void {
    this.agent.destroy();
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
