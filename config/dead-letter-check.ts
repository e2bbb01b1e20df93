// The `deadLetter` key of any sink names another sink by its label (its
// `name`, or "<type>#<index>" without one). Checked with the configuration,
// so that `walrelay validate` refuses what could never work: an unknown or
// ambiguous name, the sink itself, a sink that does not keep what it gets
// (websocket), and a loop (A's dead letters to B, B's to A: each would wait
// on the other's queue for ever).

interface SinkLike {
  type: string;
  name?: string;
  deadLetter?: string;
}

export interface DeadLetterIssue {
  path: (string | number)[];
  message: string;
}

/** Sinks that acknowledge only what their server keeps (sinks/sink.ts `durable`). */
const NOT_DURABLE = new Set(['websocket']);

export function sinkLabel(sink: SinkLike, index: number): string {
  return sink.name ?? `${sink.type}#${index}`;
}

export function deadLetterIssues(sinks: readonly SinkLike[]): DeadLetterIssue[] {
  const labels = sinks.map(sinkLabel);
  const issues: DeadLetterIssue[] = [];
  const targetOf = new Map<number, number>();
  sinks.forEach((sink, index) => {
    const wanted = sink.deadLetter;
    if (wanted === undefined) return;
    const path = ['sinks', index, 'deadLetter'];
    const matches = labels.flatMap((label, other) => (label === wanted ? [other] : []));
    if (matches.length === 0) {
      issues.push({ path, message: `no sink is named "${wanted}"; sinks are ${labels.map((label) => `"${label}"`).join(', ')} (give the dead-letter sink a name)` });
    } else if (matches.length > 1) {
      issues.push({ path, message: `${matches.length} sinks are named "${wanted}"; give the dead-letter sink a name of its own` });
    } else if (matches[0] === index) {
      issues.push({ path, message: 'a sink cannot be its own dead-letter sink; name another sink' });
    } else if (NOT_DURABLE.has(sinks[matches[0]].type)) {
      issues.push({ path, message: `"${wanted}" is a ${sinks[matches[0]].type} sink, which does not keep what it receives; name a durable sink (redis, kafka, webhook…)` });
    } else {
      targetOf.set(index, matches[0]);
    }
  });
  for (const start of targetOf.keys()) {
    const seen = [start];
    for (let next = targetOf.get(start); next !== undefined; next = targetOf.get(next)) {
      if (next === start) {
        issues.push({ path: ['sinks', start, 'deadLetter'], message: `dead-letter sinks form a loop (${[...seen, start].map((i) => `"${labels[i]}"`).join(' -> ')}); end the chain at a sink without deadLetter` });
        break;
      }
      if (seen.includes(next)) break;
      seen.push(next);
    }
  }
  return issues;
}
