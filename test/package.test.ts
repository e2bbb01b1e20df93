// The published package: `npm pack` gives a tarball that installs globally
// and runs, with only its own dependencies (no development ones).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('npm pack makes a tarball that installs globally and runs walrelay --version and walrelay demo --help', () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-pack-'));
  const npm = (args: string[]) => execFileSync('npm', args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, npm_config_yes: 'true' }, timeout: 300_000 });
  const tarball = join(dir, npm(['pack', '--silent', '--pack-destination', dir]).trim().split('\n').pop()!);
  const prefix = join(dir, 'prefix');
  npm(['install', '--global', '--prefix', prefix, '--omit=dev', '--omit=optional', '--no-audit', '--no-fund', tarball]);
  const walrelay = join(prefix, 'bin', 'walrelay');
  const run = (args: string[]) => execFileSync(walrelay, args, { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(run(['--version']).trim(), version);
  assert.match(run(['demo', '--help']), /Usage: walrelay demo/);
  assert.match(run(['config-schema']), /"title": "walrelay configuration"/);
});
