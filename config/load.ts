// Reads the configuration: file (YAML or JSON), then environment overrides,
// then DATABASE_URL, then strict validation with errors that name the key path.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { configError } from '../relay/errors.js';

export const ENV_PREFIX = 'WALRELAY_';
/** Variables with their own meaning, not key overrides. */
const RESERVED_ENV = new Set(['WALRELAY_CONFIG', 'WALRELAY_LOG_LEVEL']);

export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const path = file ?? env.WALRELAY_CONFIG;
  if (!path) throw configError('no configuration file given', 'pass -c FILE or set WALRELAY_CONFIG');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw configError(`cannot read configuration file ${path}: ${(error as Error).message}`, 'check the path given with -c or WALRELAY_CONFIG');
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (error) {
    throw configError(`${path} is not valid YAML or JSON: ${(error as Error).message}`);
  }
  return parseConfig(raw, env);
}

/** Validates an already-parsed document after applying the environment. */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw configError('the configuration must be a mapping with keys source and sinks');
  }
  const document = structuredClone(raw) as Record<string, unknown>;
  applyEnvironment(document, env);
  const result = configSchema.safeParse(document);
  if (!result.success) throw configError(result.error.issues.map((issue) => formatIssue(issue, document)).join('; '));
  return result.data;
}

/**
 * WALRELAY_SOURCE__SLOT=x sets source.slot; WALRELAY_SINKS__0__URL sets
 * sinks[0].url; WALRELAY_PIPELINE__BATCH_EVENTS sets pipeline.batchEvents.
 * Values are read as YAML scalars, so numbers, booleans and [lists] work.
 */
export function applyEnvironment(document: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const overrides = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !RESERVED_ENV.has(name))
    .sort();
  for (const name of overrides) {
    const segments = name.slice(ENV_PREFIX.length).split('__').map(toKey);
    setPath(document, segments, parseEnvValue(env[name] ?? ''));
  }
  const databaseUrl = env.DATABASE_URL;
  const source = document.source;
  const sourceUrlFromEnv = env.WALRELAY_SOURCE__URL !== undefined;
  if (databaseUrl && !sourceUrlFromEnv) {
    if (source === undefined) document.source = { url: databaseUrl };
    else if (typeof source === 'object' && source !== null && !('url' in source)) (source as Record<string, unknown>).url = databaseUrl;
  }
}

function toKey(segment: string): string | number {
  if (/^\d+$/.test(segment)) return Number(segment);
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function parseEnvValue(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

function setPath(target: Record<string, unknown> | unknown[], segments: (string | number)[], value: unknown): void {
  let node: any = target;
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i];
    if (node[segment] === undefined || node[segment] === null || typeof node[segment] !== 'object') {
      node[segment] = typeof segments[i + 1] === 'number' ? [] : {};
    }
    node = node[segment];
  }
  node[segments[segments.length - 1]] = value;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out || '(root)';
}

function formatIssue(issue: z.core.$ZodIssue, document: unknown): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${where === '(root)' ? key : `${where}.${key}`}: unknown key`).join('; ');
  }
  const message = issue.message.replace(/^Invalid input: /, '');
  if (issue.code === 'invalid_type' && valueAt(document, issue.path) === undefined) {
    return `${where}: required key is missing (${message})`;
  }
  return `${where}: ${message}`;
}

function valueAt(document: unknown, path: readonly PropertyKey[]): unknown {
  let node: any = document;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = node[segment as string];
  }
  return node;
}
