// Runs walrelay as a real child process (for signal and crash tests) or in
// process, and reads what it delivered to Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { parseConfig } from '../../config/load.js';
import { startRelay, type RunningRelay } from '../../relay/ops/daemon.js';
import { setupReplication } from '../../relay/setup/setup.js';
import type { ChangeEvent } from '../../relay/route/event.js';

/** dist/relay/cli.js, next to this compiled file's folder. */
export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'relay', 'cli.js');

export function writeConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-config-'));
  const file = join(dir, 'walrelay.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI command to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface RelayProcess {
  child: ChildProcess;
  logs(): string;
  /** What the relay wrote to standard output (the stdout sink), when spawned with keepStdout. */
  stdout(): string;
  /** Resolves when a log line's msg matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  signal(name: NodeJS.Signals): void;
}

export function spawnRelay(configFile: string, env: NodeJS.ProcessEnv = {}, options: { keepStdout?: boolean; nodeArgs?: string[] } = {}): RelayProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'run', '-c', configFile], {
    env: { ...cleanEnv(), WALRELAY_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  const listeners: (() => void)[] = [];
  child.stderr!.on('data', (chunk) => { logs += chunk; listeners.forEach((listener) => listener()); });
  let stdout = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', options.keepStdout ? (chunk: string) => { stdout += chunk; } : () => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ? null : code)));
  return {
    child,
    logs: () => logs,
    stdout: () => stdout,
    exited,
    signal: (name) => { child.kill(name); },
    waitForLog(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(logs)) { clearTimeout(timer); resolve(); return true; }
          return false;
        };
        const timer = setTimeout(() => reject(new Error(`relay did not log ${pattern} within ${timeoutMs} ms; logs:\n${logs.slice(-3000)}`)), timeoutMs);
        if (check()) return;
        listeners.push(() => { check(); });
        exited.then((code) => { if (!pattern.test(logs)) { clearTimeout(timer); reject(new Error(`relay exited (${code}) before logging ${pattern}; logs:\n${logs.slice(-3000)}`)); } });
      });
    },
  };
}

/** Writes the config, runs `walrelay setup` with it and spawns `walrelay run`; resolves once it streams. */
export async function setupAndSpawnRelay(config: unknown, env: NodeJS.ProcessEnv = {}, options: { keepStdout?: boolean } = {}): Promise<RelayProcess> {
  const configFile = writeConfig(config);
  const setup = await runCli(['setup', '-c', configFile], env);
  if (setup.code !== 0) throw new Error(`walrelay setup exited ${setup.code}:\n${setup.stderr}`);
  const relay = spawnRelay(configFile, env, options);
  await relay.waitForLog(/"msg":"streaming"/);
  return relay;
}

/** An environment without the developer's WALRELAY_* or DATABASE_URL settings. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('WALRELAY_') && key !== 'DATABASE_URL') env[key] = value;
  }
  return env;
}

export const silentLogger = pino({ level: process.env.WALRELAY_TEST_LOG ?? 'silent' });

/** Sets up publication and slot and starts the relay in this process. */
export async function startRelayInProcess(raw: unknown): Promise<RunningRelay> {
  const config = parseConfig(raw, {});
  await setupReplication(config, silentLogger);
  return startRelay(config, silentLogger);
}

/** The stream's events in order, a page at a time (a million events need not be held at once). */
export async function* streamEvents(redis: Redis, stream: string): AsyncGenerator<ChangeEvent> {
  let start = '-';
  for (;;) {
    const entries = await redis.xrange(stream, start, '+', 'COUNT', 10_000);
    for (const [, fields] of entries) yield JSON.parse(fields[fields.indexOf('event') + 1]);
    if (entries.length < 10_000) return;
    start = '(' + entries[entries.length - 1][0];
  }
}

export async function readStream(redis: Redis, stream: string): Promise<ChangeEvent[]> {
  const events: ChangeEvent[] = [];
  for await (const event of streamEvents(redis, stream)) events.push(event);
  return events;
}

export async function waitForStreamLength(redis: Redis, stream: string, count: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let length = 0;
  while (Date.now() < deadline) {
    length = await redis.xlen(stream);
    if (length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`stream ${stream} has ${length} entries after ${timeoutMs} ms; expected at least ${count}`);
}
