// The demo as a person sees it: Chromium loads the live page, a row inserted
// into the demo database appears on it, and a screenshot is kept.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { runDemo } from '../relay/ops/demo.js';
import { freePort } from './harness/ports.js';

const OUTPUT = join(process.cwd(), 'test-output');

it('shows a row inserted into the demo database on the live page', async () => {
  const demo = await runDemo({ httpPort: await freePort(), logger: pino({ level: 'silent' }) });
  let browser: Browser | null = null;
  try {
    // Launched inside try: a missing browser must still stop the demo's PostgreSQL.
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(demo.pageUrl);
    await page.locator('#status[data-state="open"]').waitFor({ timeout: 20_000 });
    const name = `Browser Test ${process.pid}-${Date.now()}`;
    const client = new pg.Client({ connectionString: demo.databaseUrl });
    await client.connect();
    await client.query('INSERT INTO customers (name, city) VALUES ($1, $2)', [name, 'Testville']);
    await client.end();
    const row = page.locator('#events tr', { hasText: name });
    await row.waitFor({ timeout: 20_000 });
    assert.match(await row.innerText(), /insert\s+public\.customers/);
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'demo.png') });
    console.log(`# screenshot: ${join(OUTPUT, 'demo.png')}`);
  } finally {
    await browser?.close().catch(() => undefined);
    await demo.stop();
  }
});
