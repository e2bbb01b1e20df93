// Logs are JSON lines on stderr (stdout may carry events), pretty when stderr is a terminal.
import pino, { type Logger } from 'pino';
import { configError } from './errors.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** WALRELAY_LOG_LEVEL, checked here so that a typo is a configuration error naming the variable, not pino's own message. */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const level = env.WALRELAY_LOG_LEVEL;
  if (level === undefined || level === '') return undefined;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw configError(`WALRELAY_LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got '${level}'`, 'set WALRELAY_LOG_LEVEL to one of those levels, or unset it');
  }
  return level;
}

export function createLogger(level: string = envLogLevel() ?? 'info'): Logger {
  if (process.stderr.isTTY) {
    return pino({ level, base: undefined }, pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true } }));
  }
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}
