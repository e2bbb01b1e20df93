// The demo's second page as a person sees it: Chromium loads realtime.html,
// supabase-js (unmodified, served by the demo) subscribes through the same
// walrelay, and an order inserted into the demo database appears on it.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { runDemo } from '../relay/ops/demo.js';
import { freePort } from './harness/ports.js';

it('shows an order inserted into the demo database on the supabase-js page', async () => {
  const demo = await runDemo({ httpPort: await freePort(), logger: pino({ level: 'silent' }) });
  let browser: Browser | null = null;
  try {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    await page.goto(demo.realtimePageUrl);
    await page.locator('#status[data-state="open"]').waitFor({ timeout: 20_000 });
    const client = new pg.Client({ connectionString: demo.databaseUrl });
    await client.connect();
    const { rows } = await client.query(`INSERT INTO orders (customer_id, total, items) VALUES (1, 4321.99, 1) RETURNING id`);
    await client.end();
    const row = page.locator('#events tr', { hasText: `#${rows[0].id}` }).filter({ hasText: 'INSERT' });
    await row.waitFor({ timeout: 20_000 });
    assert.match(await row.innerText(), /INSERT\s+#\d+\s+new\s+4321\.99/);
  } finally {
    await browser?.close().catch(() => undefined);
    await demo.stop();
  }
});
