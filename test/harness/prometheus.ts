// A throwaway Prometheus server (Debian's `prometheus` package) on a random
// loopback port, scraping given targets every second and evaluating rules
// every second, queried through its HTTP API.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface PrometheusAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
}

export interface TestPrometheus {
  url: string;
  /** An instant query; throws with Prometheus's error when it fails to evaluate. */
  query(expr: string): Promise<unknown[]>;
  /** Pending and firing alerts (resolved ones are no longer listed). */
  alerts(): Promise<PrometheusAlert[]>;
  stop(): Promise<void>;
}

export async function startPrometheus(options: { job: string; targets: string[]; ruleFiles: string[] }): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-prometheus-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, JSON.stringify({
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: options.ruleFiles,
    scrape_configs: [{ job_name: options.job, static_configs: [{ targets: options.targets }] }],
  }));
  let output = '';
  const child: ChildProcess = spawn('prometheus', [
    `--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
  child.stderr!.on('data', (chunk) => { output = (output + chunk).slice(-4000); });
  const exited = new Promise((resolve) => child.once('exit', resolve));

  const api = async (path: string): Promise<any> => {
    const response = await fetch(url + path);
    const body = await response.json() as { status: string; data: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error ?? response.status}`);
    return body.data;
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited: ${output}`);
      return (await fetch(`${url}/-/ready`)).ok;
    }, { what: `prometheus on port ${port}`, timeoutMs: 60_000 });
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${output}`);
  }
  return {
    url,
    query: async (expr) => (await api(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api('/api/v1/alerts')).alerts,
    stop,
  };
}
