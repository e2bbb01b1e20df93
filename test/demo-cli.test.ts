// `walrelay demo` as a terminal runs it: Ctrl-C goes to the whole foreground
// process group, and the demo must still stop quietly, leave no PostgreSQL
// running and no temp folder behind; a busy port is refused before anything
// starts, with the flag that fixes it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './harness/relay.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/wait.js';

interface Demo {
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  pid: number;
}

/** Starts the demo as a terminal would: in its own process group, with TMPDIR pointing at `temp`. */
function spawnDemo(port: number, temp: string): Demo {
  const child = spawn(process.execPath, [CLI, 'demo', '-p', String(port)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: temp, WALRELAY_LOG_LEVEL: 'info' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => { stdout += chunk; });
  child.stderr!.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code, signal) => resolve(signal ? null : code)));
  return { stdout: () => stdout, stderr: () => stderr, exited, pid: child.pid! };
}

/** Processes whose command line mentions `text` (a PostgreSQL started with a data folder under it). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (command.includes(text)) found.push(`${pid}: ${command}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/** Log lines at warn (40) or above. */
function problems(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /"level":(4|5|6)\d/.test(line) || /REPLICATION_FAILED|Error/.test(line));
}

describe('walrelay demo in a terminal', () => {
  let temp: string;

  before(() => {
    temp = mkdtempSync(join(tmpdir(), 'walrelay-demo-test-'));
    chmodSync(temp, 0o755); // as root, the demo's PostgreSQL runs as user postgres and must reach its folder
  });

  after(() => {
    for (const line of processesMentioning(temp)) process.kill(Number(line.split(':')[0]), 'SIGKILL');
    rmSync(temp, { recursive: true, force: true });
  });

  it('stops quietly on Ctrl-C to the process group: exit 0, no warnings, no PostgreSQL, no temp folder', async () => {
    const demo = spawnDemo(await freePort(), temp);
    try {
      await waitFor(() => /walrelay demo: open http/.test(demo.stdout()), { what: `the demo to start; stderr:\n${demo.stderr()}`, timeoutMs: 120_000 });
      assert.ok(processesMentioning(temp).length > 0, 'the demo runs a PostgreSQL under TMPDIR');
      await waitFor(() => /"msg":"streaming"/.test(demo.stderr()), { what: 'the relay to stream', timeoutMs: 60_000 });
      process.kill(-demo.pid, 'SIGINT'); // what the terminal does on Ctrl-C
      const code = await demo.exited;
      assert.equal(code, 0, demo.stderr());
      assert.deepEqual(problems(demo.stderr()), []);
      assert.match(demo.stderr(), /demo stopped and cleaned up/);
      assert.deepEqual(readdirSync(temp), [], 'temp folder removed');
      assert.deepEqual(processesMentioning(temp), [], 'no PostgreSQL left');
    } finally {
      try { process.kill(-demo.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  });

  it('refuses a busy port before starting PostgreSQL, with the -p flag that fixes it', async () => {
    const port = await freePort();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', () => resolve()));
    try {
      const demo = spawnDemo(port, temp);
      const code = await demo.exited;
      assert.equal(code, 2, demo.stderr());
      assert.match(demo.stderr(), new RegExp(`DEMO_PORT_IN_USE: port ${port} .*npm run demo -- -p 8081`));
      assert.doesNotMatch(demo.stderr(), /sinks\[\]\.port/);
      assert.doesNotMatch(demo.stderr(), /starting embedded PostgreSQL/);
      assert.deepEqual(readdirSync(temp), []);
    } finally {
      squatter.close();
    }
  });
});
