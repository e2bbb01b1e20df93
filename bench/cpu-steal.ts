// CPU time the hypervisor gave to other guests ("steal" in /proc/stat), as a
// share of all CPU time while a measurement ran. On a shared virtual machine
// it explains runs that are slower for no reason of their own.
import { readFileSync } from 'node:fs';

function cpuTimes(): { steal: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest times are already in user/nice)
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { steal: fields[7] ?? 0, total };
}

/** Starts a measurement; the returned function gives the steal percentage since. */
export function startStealMeter(): () => number {
  const start = cpuTimes();
  return () => {
    const end = cpuTimes();
    const total = end.total - start.total;
    return total > 0 ? ((end.steal - start.steal) / total) * 100 : 0;
  };
}
