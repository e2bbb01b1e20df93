// Credentials that are files by nature (a NATS NKey seed or .creds file),
// read once when the sink is built, so a missing file is an error at start
// that names the key, not a failed login later. Secrets with a `…File` twin
// (passwordFile, urlFile, …) are read earlier, by config/secrets.ts.
import { readFileSync } from 'node:fs';
import { WalrelayError } from '../relay/errors.js';

export function readSecretFile(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new WalrelayError('CONFIG_INVALID', `${key}: cannot read ${file}: ${(error as Error).message}`, {
      kind: 'config',
      hint: 'check the path and that walrelay may read the file',
    });
  }
}
