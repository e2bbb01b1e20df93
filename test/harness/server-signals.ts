// Signals to a whole PostgreSQL server: the postmaster and every backend.
// Not to its process group: each backend calls setsid() and leads a group of
// its own, so a signal to the postmaster's group reaches the postmaster
// alone. SIGSTOP that way leaves a "hung" server whose walsenders still
// stream and answer keepalives (how an earlier hang test was misled).
import { readdirSync, readFileSync } from 'node:fs';

/** The processes whose parent is `pid` (from /proc; Linux). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/**
 * `signal` to the postmaster, then to its backends (listed before, should
 * the postmaster die and its children be adopted, and again after: stopped
 * or dead, the postmaster forks no new ones meanwhile).
 */
export function signalServer(postmaster: number, signal: NodeJS.Signals): void {
  const before = childrenOf(postmaster);
  try { process.kill(postmaster, signal); } catch { /* gone already */ }
  for (const pid of new Set([...before, ...childrenOf(postmaster)])) {
    try { process.kill(pid, signal); } catch { /* gone already */ }
  }
}
