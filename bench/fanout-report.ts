// The fan-out benchmark's report (bench/fanout.ts measures): the markdown
// sections of bench/RESULTS.md and where p99 crosses its limit.
import type { FanOutResults, FanOutStep } from './fanout.js';

/** Where the sweep stops: p99 commit-to-client beyond this is "no longer keeping up". */
export const P99_LIMIT_MS = 250;

const thousands = (value: number) => Math.round(value).toLocaleString('en');

/**
 * The frames/s at which p99 crosses P99_LIMIT_MS: interpolated between the
 * last window under it and the window after (disconnects count as past);
 * the first window's rate (an upper bound) when no window was under it;
 * null when the last window tried was still under it.
 */
export function crossingFramesPerSecond(steps: readonly FanOutStep[]): number | null {
  const past = (step: FanOutStep) => step.p99 > P99_LIMIT_MS || step.disconnected > 0;
  let last = -1;
  steps.forEach((step, index) => { if (!past(step)) last = index; });
  if (steps.length === 0 || last === steps.length - 1) return null;
  if (last < 0) return steps[0]!.framesPerSecond;
  const under = steps[last]!;
  const over = steps[last + 1]!;
  if (over.disconnected > 0 || over.p99 === under.p99) return under.framesPerSecond;
  return under.framesPerSecond + ((P99_LIMIT_MS - under.p99) / (over.p99 - under.p99)) * (over.framesPerSecond - under.framesPerSecond);
}

/** The report's fan-out sections (markdown). */
export function fanOutReport({ steps, feed }: FanOutResults): string {
  const sweep = steps.filter((step) => !step.setup.endsWith('·'));
  const edges = steps.filter((step) => step.setup.endsWith('·'));
  const lines: string[] = [];
  if (sweep.length > 0) {
    lines.push(
      '## Fan-out: one process, rows/s stepped up until p99 passes 250 ms',
      '',
      'Every client subscribes to one table and receives every change (frames/s = rows/s × clients). The clients run in a',
      'process of their own (minimal websocket clients, bench/fanout-clients.ts, reading their sockets every millisecond);',
      'the relay and the clients each run in a session of their own (autogroup scheduling); latency is commit time to arrival',
      'in that process. Realtime: vsn 2.0.0, one postgres_changes INSERT binding per client. CPU: the relay process over the',
      'window; "relay waited for a CPU": its event loop runnable but not running (/proc/<pid>/schedstat), the host\'s load.',
      '',
      '"first p99" is commit to the first client\'s arrival per transaction (PostgreSQL, the relay\'s pipeline, one socket), "spread p99"',
      'each frame\'s arrival after the first client got the same change (serving every client); "clients\' loop p99" the clients\'',
      'event-loop delay (above a few ms, the clients themselves add to the latency).',
      '',
      '| protocol | clients | rows/s | frames/s | p50 ms | p99 ms | max ms | first p99 ms | spread p99 ms | frames received | disconnected | relay CPU s | relay CPU µs per frame | relay waited for a CPU s | clients\' CPU s | clients\' loop p99 ms | load average |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...sweep.map((step) => `| ${step.protocol === 'native' ? 'walrelay' : 'Realtime'} | ${thousands(step.clients)} | ${thousands(step.rowsPerSecond)} | ${thousands(step.framesPerSecond)} | ${step.p50} | ${step.p99} | ${step.max} | ${step.firstP99} | ${step.spreadP99} | ${thousands(step.frames)} / ${thousands(step.expectedFrames)} | ${step.disconnected} | ${step.relayCpu.toFixed(2)} | ${((step.relayCpu / (step.frames || 1)) * 1e6).toFixed(2)} | ${step.relayRunQueue.toFixed(2)} | ${step.clientsCpu.toFixed(2)} | ${step.clientsLoopP99.toFixed(0)} | ${step.load.toFixed(1)} |`),
      '',
    );
    for (const protocol of ['native', 'realtime'] as const) {
      const rows = sweep.filter((step) => step.protocol === protocol);
      const under = rows.filter((step) => step.p99 <= P99_LIMIT_MS && step.disconnected === 0).at(-1);
      const over = rows.find((step) => step.p99 > P99_LIMIT_MS || step.disconnected > 0);
      const busiest = rows.at(-1);
      const crossing = crossingFramesPerSecond(rows);
      if (busiest) lines.push(`- ${protocol === 'native' ? 'walrelay protocol' : 'Realtime'}: p99 ≤ ${P99_LIMIT_MS} ms up to ${under ? thousands(under.framesPerSecond) : '–'} frames/s; ${over ? `first past it at ${thousands(over.framesPerSecond)} frames/s` : 'not passed at the highest rate tried'}; p99 crosses ${P99_LIMIT_MS} ms ${crossing === null ? 'in none of the windows tried' : `${under ? 'at about' : 'at or below'} ${thousands(crossing)} frames/s`} (after the last window under it). At the highest rate tried the relay spent ${((busiest.relayCpu / (busiest.frames || 1)) * 1e6).toFixed(2)} CPU µs per frame: one core could send ${thousands(busiest.frames / Math.max(0.01, busiest.relayCpu))} frames/s.`);
    }
    lines.push('');
  }
  if (edges.length > 0) {
    const relay = edges.filter((step) => !step.setup.includes('edges'));
    lines.push(
      '## Fan-out: one relay vs one relay + 2 edges (same clients, same load)',
      '',
      'walrelay\'s protocol. With edges, the relay writes its feed sink to Redis and two `walrelay edge` processes serve the',
      'clients (half each) from it. CPU counts every process the frames pass through (relay, edges, Redis); "feed adds" is',
      'the p50 / p99 difference to the relay alone at the same rows/s. On this 2-core machine every process shares the same',
      'two cores, so edges cannot add capacity here; see docs/edges.md for the per-edge cost and the extrapolation.',
      '',
      '| setup | clients | rows/s | frames/s | p50 ms | p99 ms | relay CPU s | edges CPU s | Redis CPU s | frames per CPU-second | feed adds p50 / p99 ms | load average |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...edges.map((step) => {
        const base = relay.find((other) => Math.abs(other.rowsPerSecond - step.rowsPerSecond) / step.rowsPerSecond < 0.2);
        const adds = step.setup.includes('edges') && base ? `${step.p50 - base.p50} / ${step.p99 - base.p99}` : '–';
        const cpu = step.relayCpu + step.edgesCpu + step.redisCpu;
        return `| ${step.setup.replace(' ·', '')} | ${thousands(step.clients)} | ${thousands(step.rowsPerSecond)} | ${thousands(step.framesPerSecond)} | ${step.p50} | ${step.p99} | ${step.relayCpu.toFixed(2)} | ${step.edgesCpu.toFixed(2)} | ${step.redisCpu.toFixed(2)} | ${thousands(step.frames / Math.max(0.01, cpu))} | ${adds} | ${step.load.toFixed(1)} |`;
      }),
      '',
    );
    if (feed) {
      lines.push(`The feed alone (relay → Redis → 2 edges, no client connected, ${thousands(feed.rowsPerSecond)} rows/s), CPU per row above each process's idle use: relay ${feed.relayUsPerRow.toFixed(0)} µs, each edge ${feed.edgeUsPerRow.toFixed(0)} µs, Redis ${feed.redisUsPerRow.toFixed(0)} µs.`, '');
    }
  }
  return lines.join('\n');
}
