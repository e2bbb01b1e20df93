// The configuration reference and the JSON Schema come from config/schema.ts;
// these tests fail when docs/configuration.md is stale, and when an example
// configuration anywhere in the docs or deploy files no longer validates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync, mkdtempSync, writeFileSync } from 'node:fs';
import { SECRET_KEYS } from '../../config/secrets.js';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parse as parseYaml } from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';
import { renderReference, REFERENCE_PATH } from '../../config/reference.js';
import { runCli } from '../harness/relay.js';

const ROOT = join(REFERENCE_PATH, '..', '..');

test('docs/configuration.md is what npm run docs:config generates from config/schema.ts', () => {
  assert.equal(readFileSync(REFERENCE_PATH, 'utf8'), renderReference(), 'stale: run npm run docs:config and commit docs/configuration.md');
});

/** Every full walrelay configuration in the repository: files, a Kubernetes ConfigMap's, and fenced yaml blocks in Markdown. */
function exampleConfigs(): Array<{ where: string; document: Record<string, unknown> }> {
  const found: Array<{ where: string; document: Record<string, unknown> }> = [];
  const consider = (where: string, text: string) => {
    let document: unknown;
    try {
      document = parseYaml(text);
    } catch {
      return; // a shell or compose fragment, not a configuration
    }
    if (document && typeof document === 'object' && 'source' in document && 'sinks' in document) found.push({ where, document: document as Record<string, unknown> });
  };
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
      if (statSync(path).isDirectory()) { visit(path); continue; }
      const relative = path.slice(ROOT.length + 1);
      if (/\.ya?ml$/.test(name)) {
        const text = readFileSync(path, 'utf8');
        consider(relative, text);
        for (const document of text.split(/^---$/m)) {
          const data = (parseYamlQuiet(document) as { data?: Record<string, string> } | undefined)?.data;
          for (const [key, value] of Object.entries(data ?? {})) if (/\.ya?ml$/.test(key)) consider(`${relative} (${key})`, value);
        }
      } else if (name.endsWith('.md')) {
        const text = readFileSync(path, 'utf8');
        let index = 0;
        for (const match of text.matchAll(/```ya?ml\n([\s\S]*?)```/g)) consider(`${relative} (yaml block ${++index})`, match[1]);
      }
    }
  };
  for (const dir of ['docs', 'deploy', 'examples']) visit(join(ROOT, dir));
  for (const file of ['README.md']) {
    let index = 0;
    for (const match of readFileSync(join(ROOT, file), 'utf8').matchAll(/```ya?ml\n([\s\S]*?)```/g)) consider(`${file} (yaml block ${++index})`, match[1]);
  }
  return found;
}

/** Secret files (…File) that exist only where the example is deployed are replaced by local files with a placeholder. */
function withPlaceholderSecrets(node: unknown, dir: string, key = ''): unknown {
  if (Array.isArray(node)) return node.map((item) => withPlaceholderSecrets(item, dir));
  if (node === null || typeof node !== 'object') return node;
  const copy: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(node)) {
    if (name.endsWith('File') && SECRET_KEYS.some((secret) => `${secret}File` === name) && typeof value === 'string' && !existsSync(value)) {
      const placeholder = join(dir, `${key}-${name}`);
      writeFileSync(placeholder, name === 'urlFile' && key === 'source' ? 'postgres://walrelay@127.0.0.1:1/app\n' : `placeholder-secret-of-at-least-32-bytes-${name}\n`);
      copy[name] = placeholder;
    } else copy[name] = withPlaceholderSecrets(value, dir, name);
  }
  return copy;
}

function parseYamlQuiet(text: string): unknown {
  try { return parseYaml(text); } catch { return undefined; }
}

test('every example configuration passes the JSON Schema that walrelay config-schema prints, and walrelay validate', async () => {
  const printed = await runCli(['config-schema']);
  assert.equal(printed.code, 0, printed.stderr);
  const ajv = new Ajv2020.default({ strict: false, allErrors: true });
  const check = ajv.compile(JSON.parse(printed.stdout));
  const examples = exampleConfigs();
  assert.ok(examples.length >= 3, `found only ${examples.length} example configurations`);
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-examples-'));
  for (const [index, { where, document }] of examples.entries()) {
    assert.ok(check(document), `${where}: ${ajv.errorsText(check.errors)}`);
    const file = join(dir, `example-${index}.json`);
    writeFileSync(file, JSON.stringify(withPlaceholderSecrets(document, dir)));
    // No PostgreSQL answers at the examples' hosts: validate checks the file alone.
    const sourceUrl = (document.source as { url?: string; urlFile?: string }).url || (document.source as { urlFile?: string }).urlFile ? {} : { DATABASE_URL: 'postgres://walrelay@127.0.0.1:1/app' };
    const validated = await runCli(['validate', '-c', file], sourceUrl);
    assert.equal(validated.code, 0, `${where}: ${validated.stderr}${validated.stdout}`);
  }
});

test('an invalid configuration fails the JSON Schema too (the schema is not vacuous)', async () => {
  const printed = await runCli(['config-schema']);
  const ajv = new Ajv2020.default({ strict: false });
  const check = ajv.compile(JSON.parse(printed.stdout));
  assert.equal(check({ source: { url: 'postgres://x/y' }, sinks: [{ type: 'redis', colour: 'blue' }] }), false);
  assert.equal(check({ source: { url: 'postgres://x/y' }, sinks: [] }), false);
  assert.equal(check({ source: { url: 'postgres://x/y' }, sinks: [{ type: 'stdout' }] }), true);
});
