// Runs the fuzz loop in a worker thread, so the test can watch it: a
// message that never returns shows as progress that stops, and the worker is
// terminated with the seed and case number to replay.
import { parentPort, workerData } from 'node:worker_threads';
import { runFuzz } from './fuzz-run.js';

const { seed, minMutated } = workerData as { seed: number; minMutated: number };
const result = await runFuzz(seed, minMutated, (index) => parentPort!.postMessage({ progress: index }));
parentPort!.postMessage({ result });
