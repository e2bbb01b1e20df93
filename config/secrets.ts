// Secrets from files (Kubernetes and Docker secrets): beside every secret key
// may stand its "…File" twin, read here before validation, so each sink sees
// only the secret itself. Secret files usually end in a newline; it is not
// part of the secret.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { configError } from '../relay/errors.js';
import { formatPath } from './paths.js';

/** Keys that hold secrets, wherever they appear (source.url, sinks[].secret, auth.jwtSecret, sasl.password, …). */
export const SECRET_KEYS = ['url', 'jwtSecret', 'password', 'secret', 'token'] as const;

export const fileTwin = (key: string) => `${key}File`;

/** Replaces every `<key>File` in the document by `<key>` read from that file (relative to baseDir). */
export function readSecretFiles(document: unknown, baseDir: string, path: (string | number)[] = []): void {
  if (document === null || typeof document !== 'object') return;
  if (Array.isArray(document)) {
    document.forEach((item, index) => readSecretFiles(item, baseDir, [...path, index]));
    return;
  }
  const node = document as Record<string, unknown>;
  for (const key of SECRET_KEYS) {
    const twin = fileTwin(key);
    if (!(twin in node)) continue;
    const file = node[twin];
    const where = formatPath([...path, twin]);
    if (typeof file !== 'string' || file === '') throw configError(`${where}: expected a file path`);
    if (key in node) throw configError(`${formatPath([...path, key])} and ${where} are both set`, `keep one: ${key} holds the secret itself, ${twin} names a file that holds it`);
    let text: string;
    try {
      text = readFileSync(isAbsolute(file) ? file : resolve(baseDir, file), 'utf8');
    } catch (error) {
      throw configError(`${where}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'mount the secret at that path, or correct the path (relative paths are relative to the configuration file)');
    }
    node[key] = text.replace(/\r?\n$/, '');
    delete node[twin];
  }
  for (const [key, value] of Object.entries(node)) readSecretFiles(value, baseDir, [...path, key]);
}
