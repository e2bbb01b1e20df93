// Standard Webhooks signatures (https://www.standardwebhooks.com): the
// receiver recomputes HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>"
// with the key that follows "whsec_" (base64), and compares it with the
// "v1,<base64>" in webhook-signature. The timestamp is taken per attempt:
// verifiers refuse one more than five minutes old, and a retry can come later.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WalrelayError } from '../../relay/errors.js';

const SECRET_FORM = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

export type Signer = (id: string, timestamp: number, body: string) => string;

export function signerFor(secret: string): Signer {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return (id, timestamp, body) => `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`;
}

/** The secret of `secretFile`: the file's text without its trailing newline (as `echo` or a Kubernetes secret leaves it). */
export function readSecretFile(file: string, where: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new WalrelayError('CONFIG_INVALID', `${where}: cannot read ${file}: ${(error as Error).message}`, { kind: 'config', hint: 'point secretFile at a readable file holding the whsec_… secret' });
  }
  const secret = text.replace(/\r?\n$/, '');
  // The secret itself is never echoed: the message says what is wrong with it, not what it is.
  if (!SECRET_FORM.test(secret)) {
    throw new WalrelayError('CONFIG_INVALID', `${where}: ${file} does not hold a secret of the form whsec_<base64>`, { kind: 'config', hint: 'write the secret as whsec_ followed by the key in base64, alone in the file' });
  }
  return secret;
}
