// Secrets kept in files (`passwordFile`, `urlFile`, …), as Kubernetes and
// Docker mount them: read once when the sink is built, so a missing file is
// an error at start that names the key, not a failed login later.
import { readFileSync } from 'node:fs';
import { WalrelayError } from '../relay/errors.js';

/** The value itself, else the content of `file` without its trailing newline (editors and `echo` add one). */
export function secretValue(value: string | undefined, file: string | undefined, key: string): string | undefined {
  if (value !== undefined || file === undefined) return value;
  return readSecretFile(file, key);
}

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
