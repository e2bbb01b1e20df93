// A timeline's history, as the replication command TIMELINE_HISTORY returns
// it: the history file of that timeline, one line per ancestor timeline,
// "parentTLI<tab>switchpoint<tab>reason". The switchpoint is where the parent
// timeline ended on this server's history: WAL below it is shared with the
// parent, WAL from it on is this branch's own. A promoted standby's switchpoint
// is the end of the WAL it had received, which may be below what its old
// primary had written (asynchronous replication): the two histories fork there.
import type pg from 'pg';
import { type Lsn, parseLsn } from '../lsn.js';

export interface TimelineSwitch {
  /** The ancestor timeline. */
  timeline: number;
  /** Where that timeline ended on this history (the first LSN of the next one). */
  switchpoint: Lsn;
}

/** The history file's entries, oldest first; blank and comment lines are skipped, as PostgreSQL's reader does. */
export function parseTimelineHistory(content: string): TimelineSwitch[] {
  const switches: TimelineSwitch[] = [];
  for (const line of content.split('\n')) {
    const match = /^\s*(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})/.exec(line);
    if (match) switches.push({ timeline: Number(match[1]), switchpoint: parseLsn(match[2]) });
  }
  return switches;
}

/** TIMELINE_HISTORY on a replication connection (timeline 1 has none: it is the first). */
export async function readTimelineHistory(client: pg.Client, timeline: number): Promise<TimelineSwitch[]> {
  if (!Number.isSafeInteger(timeline) || timeline < 2) return [];
  // The content column is labelled bytea but sent as the file's text: read it unparsed.
  const result = await client.query({ text: `TIMELINE_HISTORY ${timeline}`, types: { getTypeParser: () => (value: string) => value } } as pg.QueryConfig);
  return parseTimelineHistory(String(result.rows[0]?.content ?? ''));
}
