// Runs a write's requests with up to `concurrency` in flight while keeping
// per-key commit order: a request waits for every earlier request sharing
// one of its lanes (a row key, a message prefix, a domain destination and
// key). A request without lanes is a barrier (a truncate, a schema or gap
// event, a transaction boundary): it waits for everything before it, and
// everything after waits for it.
//
// Each request knows only its direct predecessors, so scheduling costs a
// few map operations per request, however hot one key is.

export interface OrderedJob {
  /** null: a barrier. */
  lanes: readonly string[] | null;
  run(): Promise<void>;
}

export function runOrdered(jobs: readonly OrderedJob[], concurrency: number): Promise<void> {
  const count = jobs.length;
  if (count === 0) return Promise.resolve();
  const waitingOn = new Uint32Array(count);
  const dependents: number[][] = jobs.map(() => []);
  const lastInLane = new Map<string, number>();
  let sinceBarrier: number[] = [];
  let barrier = -1;
  const depend = (job: number, on: number) => {
    dependents[on].push(job);
    waitingOn[job]++;
  };
  jobs.forEach((job, index) => {
    if (job.lanes === null) {
      // Jobs since the last barrier already wait for it: depending on them covers everything earlier.
      if (sinceBarrier.length > 0) for (const earlier of sinceBarrier) depend(index, earlier);
      else if (barrier >= 0) depend(index, barrier);
      sinceBarrier = [];
      barrier = index;
      lastInLane.clear();
      return;
    }
    const before = new Set<number>();
    if (barrier >= 0) before.add(barrier);
    for (const lane of job.lanes) {
      const previous = lastInLane.get(lane);
      // A request holding two events of one key must not wait for itself.
      if (previous !== undefined && previous !== index) before.add(previous);
      lastInLane.set(lane, index);
    }
    for (const earlier of before) depend(index, earlier);
    sinceBarrier.push(index);
  });

  return new Promise<void>((resolve, reject) => {
    const ready: number[] = [];
    for (let index = 0; index < count; index++) if (waitingOn[index] === 0) ready.push(index);
    let head = 0;
    let running = 0;
    let finished = 0;
    let failure: { error: unknown } | null = null;
    const pump = () => {
      while (failure === null && running < concurrency && head < ready.length) {
        const index = ready[head++];
        running++;
        jobs[index].run().then(() => {
          running--;
          finished++;
          for (const next of dependents[index]) if (--waitingOn[next] === 0) ready.push(next);
          if (finished === count) resolve();
          else settle();
        }, (error: unknown) => {
          running--;
          failure ??= { error };
          settle();
        });
      }
    };
    // After a failure nothing new starts; the write fails once the requests under way are over.
    const settle = () => {
      if (failure !== null) {
        if (running === 0) reject(failure.error);
        return;
      }
      pump();
    };
    pump();
  });
}
