// Standard Webhooks signatures (https://www.standardwebhooks.com): the
// receiver recomputes HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>"
// with the key that follows "whsec_" (base64), and compares it with the
// "v1,<base64>" in webhook-signature. The timestamp is taken per attempt:
// verifiers refuse one more than five minutes old, and a retry can come later.
import { createHmac } from 'node:crypto';

export type Signer = (id: string, timestamp: number, body: string) => string;

export function signerFor(secret: string): Signer {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return (id, timestamp, body) => `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
}
