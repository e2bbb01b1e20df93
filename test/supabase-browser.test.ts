// @supabase/supabase-js (its UMD build, unmodified) in a real Chromium, on a
// page served by this test, subscribing through walrelay with `supabase:
// true` on PostgreSQL 18: createClient(walrelay's URL, a key with walrelay's
// claims).channel(…).on('postgres_changes', …) receives inserts, updates and
// deletes, and a filtered binding only its row.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startRealtimeRelay, mintKey, type RealtimeRelay } from './harness/realtime.js';
import { waitFor } from './harness/wait.js';

const require = createRequire(import.meta.url);
const SUPABASE_UMD = require.resolve('@supabase/supabase-js').replace(/dist\/.*$/, 'dist/umd/supabase.js');

function page(relayUrl: string, key: string, table: string): string {
  return `<!doctype html><meta charset="utf-8"><title>supabase-js against walrelay</title>
<script src="/supabase.js"></script>
<script>
  window.changes = []; window.filtered = []; window.statuses = [];
  const client = supabase.createClient(${JSON.stringify(relayUrl)}, ${JSON.stringify(key)});
  client.channel('todos')
    .on('postgres_changes', { event: '*', schema: 'public', table: ${JSON.stringify(table)} }, (change) => window.changes.push(change))
    .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: ${JSON.stringify(table)}, filter: 'id=eq.2' }, (change) => window.filtered.push(change))
    .subscribe((status, error) => window.statuses.push(error ? status + ': ' + error.message : status));
</script>`;
}

describe('supabase-js in Chromium against walrelay (PostgreSQL 18)', () => {
  let rt: RealtimeRelay;
  let server: Server;
  let browser: Browser | undefined;

  before(async () => {
    rt = await startRealtimeRelay('pg18');
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await rt?.stop();
  });

  it('delivers postgres_changes to supabase.channel() in a browser', async () => {
    const table = await rt.newTable();
    const key = await mintKey({ tables: [`public.${table}`] });
    const html = page(`http://127.0.0.1:${rt.port}`, key, table);
    server = createServer((request, response) => {
      if (request.url === '/supabase.js') response.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(SUPABASE_UMD));
      else response.writeHead(200, { 'content-type': 'text/html' }).end(html);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    const tab: Page = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    await tab.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const read = (name: string) => tab.evaluate((global) => (window as any)[global], name);
    await waitFor(async () => (await read('statuses')).includes('SUBSCRIBED'), { what: 'SUBSCRIBED in the page', timeoutMs: 20_000 });

    await rt.pg.query(`INSERT INTO ${table} (id, task, done, big) VALUES (1, 'milk', false, 9007199254740993), (2, 'bread', false, 2)`);
    await rt.pg.query(`UPDATE ${table} SET done = true`);
    await rt.pg.query(`DELETE FROM ${table} WHERE id = 1`);
    await waitFor(async () => (await read('changes')).length >= 5, { what: 'five changes in the page', timeoutMs: 20_000 });
    const changes = await read('changes');
    assert.deepEqual(changes.map((change: any) => `${change.eventType} ${change.new.id ?? change.old.id}`), ['INSERT 1', 'INSERT 2', 'UPDATE 1', 'UPDATE 2', 'DELETE 1']);
    assert.equal(changes[0].new.task, 'milk');
    assert.equal(changes[0].new.done, false);
    assert.equal(changes[2].new.done, true);
    assert.deepEqual(changes[4].old, { id: 1 });
    const filtered = await read('filtered');
    assert.deepEqual(filtered.map((change: any) => `${change.eventType} ${change.new.id}`), ['UPDATE 2']);
    assert.deepEqual(await read('statuses'), ['SUBSCRIBED']);
    assert.deepEqual(errors, []);
  });
});
