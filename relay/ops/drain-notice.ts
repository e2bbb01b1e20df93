// What a shutdown waits for when sinks have not acknowledged everything yet:
// which sinks, how many events, how long, and how not to wait.
import type { Logger } from 'pino';
import type { SinkRoute } from '../route/sink-route.js';

/** A shutdown that has to wait: for which sinks, how many events, how long, and how not to wait. */
export function announceDrainWait(routes: readonly SinkRoute[], timeoutSeconds: number, logger: Logger): void {
  const waiting = routes.filter((route) => route.unacknowledged > 0)
    .map((route) => ({ sink: route.sink.name, events: route.unacknowledged, connected: route.sink.isReady() }));
  if (waiting.length === 0) return;
  const what = waiting.map((item) => `sink ${item.sink} to acknowledge ${item.events} event(s)${item.connected ? '' : ' (not connected)'}`).join(', ');
  // A warning only when a sink is down; a connected sink that is merely slow is worth an info line.
  const level = waiting.some((item) => !item.connected) ? 'warn' : 'info';
  logger[level]({ waitingFor: waiting, timeoutSeconds },
    `shutdown: waiting up to ${timeoutSeconds} s (pipeline.drainTimeoutSeconds) for ${what}; send the signal again (Ctrl-C) to exit now: unconfirmed changes are re-sent on restart`);
}
