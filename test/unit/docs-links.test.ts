// Every relative link in the README and docs/ points to a file in the clone,
// and every #anchor to a heading (or an explicit id) in its target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function markdownFiles(): string[] {
  const found = [join(ROOT, 'README.md'), join(ROOT, 'CONTRIBUTING.md'), join(ROOT, 'CHANGELOG.md')].filter((file) => existsSync(file));
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) visit(path);
      else if (name.endsWith('.md')) found.push(path);
    }
  };
  visit(join(ROOT, 'docs'));
  return found;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (fenced) continue;
    const heading = /^#{1,6} (.*)$/.exec(line);
    if (heading) {
      const base = heading[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, '').replace(/ /g, '-');
      const seen = counts.get(base) ?? 0;
      counts.set(base, seen + 1);
      anchors.add(seen ? `${base}-${seen}` : base);
    }
    for (const id of line.matchAll(/<a (?:id|name)="([^"]+)"/g)) anchors.add(id[1]);
  }
  return anchors;
}

test('relative links and anchors in the README and docs/ resolve', () => {
  const problems: string[] = [];
  const files = markdownFiles();
  assert.ok(files.length > 10, 'the docs are found');
  for (const file of files) {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(https?:|mailto:)/.test(target)) continue;
      const [path, anchor] = target.split('#');
      const destination = path ? resolve(dirname(file), path) : file;
      const where = `${relative(ROOT, file)} → ${target}`;
      if (!existsSync(destination)) { problems.push(`${where}: no such file`); continue; }
      if (relative(ROOT, destination).startsWith('..')) problems.push(`${where}: outside the clone`);
      if (anchor && destination.endsWith('.md') && !anchorsOf(readFileSync(destination, 'utf8')).has(anchor)) problems.push(`${where}: no such heading`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the README is the front door: short, with the quick start on its first screen', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const lines = readme.split('\n');
  assert.ok(lines.length <= 300, `README has ${lines.length} lines; the reference belongs in docs/`);
  assert.ok(lines.findIndex((line) => /npm ci && npm run demo/.test(line)) < 40, 'the two commands come first');
});
