// The fan-out benchmark's clients (fanout-clients.ts) in one or more
// processes of their own, driven over IPC as one: a connect order is split
// between them, their reports are added up. With more than one process the
// spread (first to every client) is measured within each process.
import { fork, type ChildProcess } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf, runQueueSecondsOf } from './consumers.js';
import type { ClientsReport, ConnectOrder } from './fanout-clients.js';

const CLIENTS_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'fanout-clients.js');

/** The clients' process, and a typed request/answer over its IPC channel. */
class ClientsProcess {
  private readonly child: ChildProcess;
  private waiting: ((answer: any) => void) | null = null;

  /** `ownSession`: started in a session of its own (setsid), so autogroup scheduling gives it a share of its own (fanout.ts startWalrelay). */
  constructor(ownSession: boolean) {
    this.child = fork(CLIENTS_SCRIPT, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: ownSession });
    this.child.on('message', (answer) => {
      const resolve = this.waiting;
      this.waiting = null;
      resolve?.(answer);
    });
  }

  private ask<T>(message: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting = (answer) => (answer?.error ? reject(new Error(answer.error)) : resolve(answer));
      this.child.send(message as object);
    });
  }

  async connect(order: ConnectOrder): Promise<void> {
    await this.ask({ connect: order });
  }

  async reset(): Promise<void> {
    await this.ask({ reset: true });
  }

  report(): Promise<ClientsReport> {
    return this.ask<ClientsReport>({ report: true });
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ stop: true });
    await exited;
  }

  cpuSeconds(): number {
    return cpuSecondsOf(this.child.pid!) ?? 0;
  }

  runQueueSeconds(): number {
    return runQueueSecondsOf(this.child.pid!) ?? 0;
  }

}

/** Several clients' processes as one. */
export class ClientsProcesses {
  private readonly processes: ClientsProcess[];

  constructor(count: number, ownSessions = true) {
    this.processes = Array.from({ length: Math.max(1, count) }, () => new ClientsProcess(ownSessions));
  }

  async connect(order: ConnectOrder): Promise<void> {
    const count = this.processes.length;
    await Promise.all(this.processes.map((process, index) => process.connect({ ...order, clients: Math.floor(order.clients / count) + (index < order.clients % count ? 1 : 0) })));
  }

  async reset(): Promise<void> {
    await Promise.all(this.processes.map((process) => process.reset()));
  }

  async report(): Promise<ClientsReport> {
    const reports = await Promise.all(this.processes.map((process) => process.report()));
    const merge = (pick: (report: ClientsReport) => [number, number][]) => {
      const counts = new Map<number, number>();
      for (const report of reports) for (const [ms, count] of pick(report)) counts.set(ms, (counts.get(ms) ?? 0) + count);
      return [...counts].sort((a, b) => a[0] - b[0]);
    };
    return {
      frames: reports.reduce((sum, report) => sum + report.frames, 0),
      histogram: merge((report) => report.histogram),
      spread: merge((report) => report.spread),
      first: merge((report) => report.first),
      disconnected: reports.reduce((sum, report) => sum + report.disconnected, 0),
      loopDelayMs: { p99: Math.max(...reports.map((report) => report.loopDelayMs.p99)), max: Math.max(...reports.map((report) => report.loopDelayMs.max)) },
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((process) => process.stop()));
  }

  cpuSeconds(): number {
    return this.processes.reduce((sum, process) => sum + process.cpuSeconds(), 0);
  }

  runQueueSeconds(): number {
    return this.processes.reduce((sum, process) => sum + process.runQueueSeconds(), 0);
  }
}
