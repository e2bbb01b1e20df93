// Logs go to stderr (stdout may carry events): JSON lines for machines, one
// readable line per entry on a terminal. log.format (or WALRELAY_LOG_FORMAT)
// chooses; "auto" means readable when stderr is a terminal, JSON otherwise.
import pino, { type Logger } from 'pino';
import { configError } from './errors.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** WALRELAY_LOG_LEVEL, checked here so that a typo is a configuration error naming the variable, not pino's own message. */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return envChoice(env, 'WALRELAY_LOG_LEVEL', LOG_LEVELS);
}

/** WALRELAY_LOG_FORMAT, checked the same way. */
export function envLogFormat(env: NodeJS.ProcessEnv = process.env): LogFormat | undefined {
  return envChoice(env, 'WALRELAY_LOG_FORMAT', LOG_FORMATS);
}

function envChoice<T extends string>(env: NodeJS.ProcessEnv, name: string, choices: readonly T[]): T | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw configError(`${name}: expected one of ${choices.join(', ')}, got '${value}'`, `set ${name} to one of those values, or unset it`);
  }
  return value as T;
}

export function createLogger(level: string = envLogLevel() ?? 'info', format: LogFormat = envLogFormat() ?? 'auto'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true);
  if (pretty) return pino({ level, base: undefined }, readableLines(process.stderr));
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOURS: Record<number, string> = { 40: '\x1b[33m', 50: '\x1b[31m', 60: '\x1b[31m' };

/** Formats one pino JSON line as "12:00:01 INFO  streaming slot=walrelay from=0/16B3748". */
export function readableLine(json: string, colour: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, ...fields } = entry;
  const clock = new Date(typeof time === 'number' ? time : Date.now()).toISOString().slice(11, 19);
  const name = LEVEL_NAMES[level as number] ?? String(level);
  const tint = colour ? LEVEL_COLOURS[level as number] : undefined;
  const rest = Object.entries(fields).map(([key, value]) => `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`);
  const line = [clock, tint ? `${tint}${name}\x1b[0m` : name, String(msg ?? ''), ...rest].join(' ');
  return `${line}\n`;
}

function readableLines(out: NodeJS.WriteStream): { write(chunk: string): void } {
  const colour = out.isTTY === true && !process.env.NO_COLOR;
  return { write: (chunk: string) => { out.write(readableLine(chunk, colour)); } };
}
