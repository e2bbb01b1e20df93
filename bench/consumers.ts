// The consumers measured against the same backlog, each on its own slot:
// pg_recvlogical (PostgreSQL's own client: the ceiling) and walrelay with
// each sink, run as a child process so its RSS and CPU are its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'relay', 'cli.js');
const RECVLOGICAL = '/usr/lib/postgresql/15/bin/pg_recvlogical';

export interface Measurement {
  seconds: number;
  peakRssMb: number | null;
  cpuSeconds: number | null;
}

/** Peak RSS (VmHWM) and CPU seconds of a live process, from /proc. */
export function processFigures(pid: number): { peakRssMb: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const peakRssMb = Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { peakRssMb, cpuSeconds: ticks / 100 };
}

export async function runRecvlogical(url: string, slot: string, publication: string, endLsn: string): Promise<Measurement> {
  const started = performance.now();
  const child = spawn(RECVLOGICAL, ['-d', url, '--slot', slot, '--start', '-o', 'proto_version=1', '-o', `publication_names=${publication}`, '-f', '/dev/null', '-E', endLsn, '--no-loop', '-F', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => { stderr += chunk; });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`pg_recvlogical exited ${code}: ${stderr}`);
  return { seconds: (performance.now() - started) / 1000, peakRssMb: null, cpuSeconds: null };
}

export interface RelayRun {
  child: ChildProcess;
  configFile: string;
  figures(): { peakRssMb: number; cpuSeconds: number };
  stop(): Promise<void>;
}

export function startRelayProcess(config: unknown, extraArgs: string[] = []): RelayRun {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-bench-'));
  const configFile = join(dir, 'walrelay.json');
  writeFileSync(configFile, JSON.stringify(config));
  const child = spawn(process.execPath, [...extraArgs, CLI, 'run', '-c', configFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, WALRELAY_LOG_LEVEL: 'warn' },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => { stderr = (stderr + chunk).slice(-4000); });
  child.on('exit', (code) => { if (code !== 0 && code !== null) process.stderr.write(`walrelay exited ${code}: ${stderr}\n`); });
  return {
    child,
    configFile,
    figures: () => processFigures(child.pid!),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Waits until the slot's confirmed position reaches `target` (every event of the backlog acknowledged). */
export async function waitForConfirmed(pool: pg.Pool, slot: string, target: string, timeoutMs = 900_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = (await pool.query('SELECT confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = $1', [slot, target])).rows;
    if (row?.done) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`slot ${slot} did not reach ${target} within ${timeoutMs} ms`);
}

/** CPU seconds (utime + stime) of a process from /proc, or null once it has exited. */
/** Read and write system calls a process made so far (syscr, syscw from /proc/<pid>/io); null when unreadable. */
/** Read and write system calls, and wake-ups: the main thread's voluntary context switches (each a sleep in the event loop). */
export function syscallsOf(pid: number): { reads: number; writes: number; wakeUps: number } | null {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      reads: Number(/syscr:\s+(\d+)/.exec(io)![1]),
      writes: Number(/syscw:\s+(\d+)/.exec(io)![1]),
      wakeUps: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)![1]),
    };
  } catch {
    return null;
  }
}

export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * Seconds a process's main thread (for Node, the event loop) waited in the
 * run queue, runnable but not running (/proc/<pid>/schedstat), or null once
 * it has exited: on a shared host, the latency the machine's load adds.
 */
export function runQueueSecondsOf(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return null;
  }
}

export interface WalsenderMeter {
  /** The walsender's CPU seconds for this drain (null if it was never seen), after which the meter stops. */
  finish(): number | null;
}

/**
 * Follows the CPU time of the walsender that serves `slot`. A consumer's
 * walsender is a backend started for its connection, so its whole CPU time is
 * this drain's (the first reading, taken as soon as the slot shows an active
 * PID, is the "before"; it covers only the connection's start). The PID is
 * read from pg_replication_slots.active_pid; /proc is then sampled every
 * 50 ms so the last figure survives a walsender that exits with its client
 * (pg_recvlogical stops at the end LSN). `onStreaming` runs when the PID is
 * first seen: the consumer has started streaming.
 */
export function startWalsenderMeter(pool: pg.Pool, slot: string, onStreaming?: () => void): WalsenderMeter {
  let pid: number | null = null;
  let last: number | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const sample = () => {
    if (pid === null) return;
    const now = cpuSecondsOf(pid);
    if (now !== null) last = now;
  };
  const poll = async () => {
    if (stopped) return;
    if (pid === null) {
      try {
        const [row] = (await pool.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows;
        if (row?.active_pid) {
          pid = Number(row.active_pid);
          onStreaming?.();
        }
      } catch { /* the pool is busy or closing: try again */ }
    }
    sample();
    if (!stopped) timer = setTimeout(() => void poll(), pid === null ? 10 : 50);
  };
  void poll();
  return {
    finish() {
      sample();
      stopped = true;
      clearTimeout(timer);
      return last;
    },
  };
}
