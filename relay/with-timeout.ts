// Waiting for something that may never settle (a server reply, a sink's
// acknowledgement) without waiting forever.

/** Settles when `promise` settles or after `ms`, whichever comes first; never rejects because of the timer. */
export function withTimeout(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise((resolve) => { timer = setTimeout(resolve, Math.max(0, ms)); })]).finally(() => clearTimeout(timer));
}
