// One error type for the whole daemon. `code` is stable (tests and operators
// match on it), `hint` tells the operator what to do, `retriable` decides
// whether the relay waits and tries again or stops, and the exit code of the
// CLI follows from `kind`.
export type ErrorKind = 'config' | 'runtime';

export interface WalrelayErrorOptions {
  hint?: string;
  retriable?: boolean;
  kind?: ErrorKind;
  cause?: unknown;
}

export class WalrelayError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly retriable: boolean;
  readonly kind: ErrorKind;

  constructor(code: string, message: string, options: WalrelayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WalrelayError';
    this.code = code;
    this.hint = options.hint;
    this.retriable = options.retriable ?? false;
    this.kind = options.kind ?? 'runtime';
  }

  /** The line printed to the operator: what failed, then what to do. */
  describe(): string {
    return this.hint ? `${this.code}: ${this.message}; ${this.hint}` : `${this.code}: ${this.message}`;
  }
}

export function configError(message: string, hint?: string): WalrelayError {
  return new WalrelayError('CONFIG_INVALID', message, { kind: 'config', hint });
}

export function exitCodeOf(error: unknown): number {
  return error instanceof WalrelayError && error.kind === 'config' ? 2 : 1;
}

export function describeError(error: unknown): string {
  if (error instanceof WalrelayError) return error.describe();
  if (error instanceof Error) return error.message;
  return String(error);
}
