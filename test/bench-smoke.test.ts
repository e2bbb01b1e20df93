// `npm run bench -- --quick` runs end to end: every consumer drains every
// scenario and the report is written. No timing is asserted (shared machines
// make timings flaky); the figures only have to exist.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'run.js');

it('runs the quick benchmark and writes RESULTS.md and ratios.svg', async () => {
  const out = mkdtempSync(join(tmpdir(), 'walrelay-bench-smoke-'));
  try {
    const child = spawn(process.execPath, [BENCH, '--quick', '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-8000); });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, stderr);
    const report = readFileSync(join(out, 'RESULTS.md'), 'utf8');
    for (const scenario of ['small transactions', 'one large transaction', 'wide rows', 'TOASTed values', 'mixed insert/update/delete']) {
      for (const consumer of ['pg_recvlogical', 'walrelay → stdout', 'walrelay → redis', 'walrelay → kafka', 'walrelay → nats', 'walrelay → rabbitmq']) {
        assert.match(report, new RegExp(`\\| ${scenario} \\| ${consumer} \\| [\\d,]+ \\| [\\d,]+ \\|`), `${scenario} / ${consumer} in the report`);
      }
    }
    assert.match(report, /## Commit-to-Redis latency[\s\S]*\| 5,000 \| [\d,]+ \| [\d,]+ \|/);
    assert.match(report, /## Commit-to-browser latency[\s\S]*\| [\d,]+ \| [\d,]+ \| [\d,]+ \| \d+ \| \d+ \| \d+ \| \d+ \|/);
    assert.match(report, /## Supabase Realtime protocol[\s\S]*\| [\d,]+ \| [\d,]+ \| [\d,]+ \| [\d,]+ \| \d+ \| \d+ \| \d+ \| \d+ \|/);
    assert.ok(existsSync(join(out, 'ratios.svg')));
    process.stdout.write(`${report}\n`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
