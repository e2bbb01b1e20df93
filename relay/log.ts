// Logs are JSON lines on stderr (stdout may carry events), pretty when stderr is a terminal.
import pino, { type Logger } from 'pino';

export function createLogger(level: string = process.env.WALRELAY_LOG_LEVEL ?? 'info'): Logger {
  if (process.stderr.isTTY) {
    return pino({ level, base: undefined }, pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true } }));
  }
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}
