// Reads the configuration: file (YAML or JSON), then environment overrides,
// then DATABASE_URL, then secrets from files (secrets.ts), then strict validation with errors that name the key path.
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { SINK_TYPES, configSchema, edgeConfigSchema, type Config, type EdgeConfig } from './schema.js';
import { closest, knownKeysAt } from './suggest.js';
import { formatPath } from './paths.js';
import { readSecretFiles } from './secrets.js';
import { configError } from '../relay/errors.js';
import { envLogLevel } from '../relay/log.js';

export const ENV_PREFIX = 'WALRELAY_';
/** Variables with their own meaning, not key overrides. */
const RESERVED_ENV = new Set(['WALRELAY_CONFIG', 'WALRELAY_LOG_LEVEL']);

export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const path = configPath(file, env);
  envLogLevel(env); // read with the file, so that validate catches it too
  return parseConfig(readConfigDocument(path), env, dirname(path));
}

/** The configuration `validate` checks: an edge's (a feed, no source) or else the relay's, the file read and parsed once. */
export function loadRelayOrEdgeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): { edge: EdgeConfig } | { relay: Config } {
  const path = configPath(file, env);
  let raw: unknown;
  let unreadable: unknown;
  try {
    raw = readConfigDocument(path);
  } catch (error) {
    unreadable = error;
  }
  if (unreadable === undefined && isEdgeDocument(raw)) return { edge: parseEdgeConfig(raw, env, dirname(path)) };
  // As loadConfig: a bad WALRELAY_LOG_LEVEL is reported before a file that cannot be read.
  envLogLevel(env);
  if (unreadable !== undefined) throw unreadable;
  return { relay: parseConfig(raw, env, dirname(path)) };
}

function configPath(file: string | undefined, env: NodeJS.ProcessEnv): string {
  const path = file ?? env.WALRELAY_CONFIG;
  if (!path) throw configError('no configuration file given', 'pass -c FILE or set WALRELAY_CONFIG');
  return path;
}

/** The relay's configuration file parsed (an empty file: an empty mapping). */
function readConfigDocument(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw configError(`cannot read configuration file ${path}: ${(error as Error).message}`, 'check the path given with -c or WALRELAY_CONFIG');
  }
  try {
    return parseYaml(text) ?? {};
  } catch (error) {
    throw configError(`${path} is not valid YAML or JSON: ${(error as Error).message}`);
  }
}

/** Whether a document is an edge's configuration (a feed, no source) rather than the relay's. */
function isEdgeDocument(raw: unknown): boolean {
  return raw !== null && typeof raw === 'object' && 'feed' in raw && !('source' in raw);
}

/** The configuration of `walrelay edge` (docs/edges.md): a feed and websocket sinks, no source. */
export function loadEdgeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): EdgeConfig {
  const path = configPath(file, env);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (error) {
    throw configError(`cannot read edge configuration ${path}: ${(error as Error).message}`, 'pass -c FILE with a YAML or JSON edge configuration');
  }
  return parseEdgeConfig(raw, env, dirname(path));
}

function parseEdgeConfig(raw: unknown, env: NodeJS.ProcessEnv, baseDir: string): EdgeConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw configError('the edge configuration must be a mapping with keys feed and sinks');
  const document = structuredClone(raw) as Record<string, unknown>;
  const fromEnvironment = applyEnvironment(document, env);
  readSecretFiles(document, baseDir);
  const result = edgeConfigSchema.safeParse(document);
  if (!result.success) throw configError(result.error.issues.map((issue) => formatIssue(issue, document, { raw, fromEnvironment })).join('; '));
  return result.data;
}

/** Validates an already-parsed document after applying the environment. */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, baseDir: string = process.cwd()): Config {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw configError('the configuration must be a mapping with keys source and sinks');
  }
  const document = structuredClone(raw) as Record<string, unknown>;
  const fromEnvironment = applyEnvironment(document, env);
  readSecretFiles(document, baseDir);
  const result = configSchema.safeParse(document);
  if (!result.success) throw configError(result.error.issues.map((issue) => formatIssue(issue, document, { raw, fromEnvironment })).join('; '));
  // A Redis password given on its own (often from passwordFile) takes the URL's place, where the connection reads it.
  for (const sink of result.data.sinks) {
    if (sink.type !== 'redis' || sink.password === undefined) continue;
    const url = new URL(sink.url);
    url.password = encodeURIComponent(sink.password);
    sink.url = url.toString();
  }
  return result.data;
}

/**
 * WALRELAY_SOURCE__SLOT=x sets source.slot; WALRELAY_SINKS__0__URL sets
 * sinks[0].url; WALRELAY_PIPELINE__BATCH_EVENTS sets pipeline.batchEvents.
 * Values are read as YAML scalars, so numbers, booleans and [lists] work.
 */
export function applyEnvironment(document: Record<string, unknown>, env: NodeJS.ProcessEnv): EnvironmentPaths {
  const overrides = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !RESERVED_ENV.has(name))
    .sort();
  const paths: EnvironmentPaths = [];
  for (const name of overrides) {
    const segments = name.slice(ENV_PREFIX.length).split('__').map(toKey);
    setPath(document, segments, parseEnvValue(env[name] ?? ''));
    paths.push({ path: segments, variable: name });
  }
  const databaseUrl = env.DATABASE_URL;
  const source = document.source;
  const sourceUrlFromEnv = env.WALRELAY_SOURCE__URL !== undefined;
  if (databaseUrl && !sourceUrlFromEnv) {
    if (source === undefined || (typeof source === 'object' && source !== null && !('url' in source) && !('urlFile' in source))) {
      if (source === undefined) document.source = { url: databaseUrl };
      else (source as Record<string, unknown>).url = databaseUrl;
      paths.push({ path: ['source', 'url'], variable: 'DATABASE_URL' });
    }
  }
  return paths;
}

/** Which environment variable set which config path. */
export type EnvironmentPaths = { path: (string | number)[]; variable: string }[];

/**
 * The variable behind a problem at `path`: one that set the value there (or
 * a value around it), or one that created the object holding it, because the
 * file does not have that object at all.
 */
function variableFor(path: readonly PropertyKey[], paths: EnvironmentPaths, file: unknown): string | undefined {
  const startsWith = (long: readonly PropertyKey[], short: readonly PropertyKey[]) => short.every((segment, i) => String(long[i]) === String(segment));
  let created = path.length;
  while (created > 0 && valueAt(file, path.slice(0, created)) === undefined) created--;
  const absentFromFile = path.slice(0, created + 1);
  for (const { path: set, variable } of paths) {
    if (startsWith(path, set)) return variable;
    if (created < path.length && startsWith(set, absentFromFile)) return variable;
  }
  return undefined;
}

/** The variable that would set `path`: sinks[0].maxLen -> WALRELAY_SINKS__0__MAX_LEN. */
function variableName(path: readonly PropertyKey[]): string {
  return ENV_PREFIX + path.map((segment) => String(segment).replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('__');
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


function formatIssue(issue: z.core.$ZodIssue, document: unknown, origin: { raw: unknown; fromEnvironment: EnvironmentPaths }): string {
  const where = formatPath(issue.path);
  // A value that came from the environment is named by its variable too: the file does not hold it.
  const variable = variableFor(issue.path, origin.fromEnvironment, origin.raw);
  const label = (path: string) => (variable ? `${variable} sets ${path}` : path);
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(configSchema, issue.path, document);
    return issue.keys.map((key) => {
      const path = where === '(root)' ? key : `${where}.${key}`;
      const variable = variableFor([...issue.path, key], origin.fromEnvironment, origin.raw);
      const suggestion = closest(key, known);
      if (variable) {
        const instead = suggestion ? `; did you mean ${variableName([...issue.path, suggestion])}?` : '; WALRELAY_* variables override configuration keys: unset it or correct its name';
        return `${variable} sets ${path}: unknown key${instead}`;
      }
      return `${path}: unknown key${suggestion ? `; did you mean ${suggestion}?` : ''}`;
    }).join('; ');
  }
  const message = issue.message.replace(/^Invalid input: /, '');
  const value = valueAt(document, issue.path);
  // A misspelt sink type (`type: redsi`): name the type it is closest to.
  if (issue.code === 'invalid_union' && issue.path.at(-1) === 'type' && typeof value === 'string') {
    const suggestion = closest(value, SINK_TYPES);
    if (suggestion) return `${label(where)}: unknown sink type "${value}"; did you mean ${suggestion}? (${message})`;
  }
  if (issue.code === 'invalid_type' && value === undefined) {
    return `${label(where)}: required key is missing (${message})`;
  }
  return `${label(where)}: ${message}`;
}

function valueAt(document: unknown, path: readonly PropertyKey[]): unknown {
  let node: any = document;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = node[segment as string];
  }
  return node;
}
