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

    // An update row says what changed, not the whole row.
    const status = `checked-${process.pid}`;
    const writer = new pg.Client({ connectionString: demo.databaseUrl });
    await writer.connect();
    try {
      const [{ id }] = (await writer.query(`INSERT INTO orders (customer_id, total, items) VALUES (1, 10, 1) RETURNING id`)).rows;
      await writer.query('UPDATE orders SET status = $1 WHERE id = $2', [status, id]);
    } finally {
      await writer.end();
    }
    const update = page.locator('#events tr', { hasText: status });
    await update.waitFor({ timeout: 20_000 });
    assert.match(await update.innerText(), new RegExp(`update\\s+public\\.orders[\\s\\S]*status: new → ${status}`));

    // The y-axis: five labels, evenly spaced, from 0.
    const axis = (await page.locator('#chart').getAttribute('data-axis'))!.split(',').map(Number);
    assert.equal(axis.length, 5);
    assert.equal(axis[4], 0);
    for (let i = 0; i < 4; i++) assert.equal(axis[i] - axis[i + 1], axis[3], `even steps: ${axis}`);

    // The page's icon is served (it was a 404).
    const icon = await page.request.get(new URL('/favicon.ico', demo.pageUrl).href);
    assert.equal(icon.status(), 200);
    assert.equal(icon.headers()['content-type'], 'image/x-icon');

    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'demo.png') });
    console.log(`# screenshot: ${join(OUTPUT, 'demo.png')}`);

    // Narrow windows (it broke below 500 px): nothing wider than the window.
    const narrow = await browser.newPage({ viewport: { width: 360, height: 800 } });
    await narrow.goto(demo.pageUrl);
    await narrow.locator('#status[data-state="open"]').waitFor({ timeout: 20_000 });
    // A row of our own, rather than waiting on the demo's writer.
    const narrowName = `Narrow Test ${process.pid}-${Date.now()}`;
    const narrowClient = new pg.Client({ connectionString: demo.databaseUrl });
    await narrowClient.connect();
    try {
      await narrowClient.query('INSERT INTO customers (name, city) VALUES ($1, $2)', [narrowName, 'Testville']);
    } finally {
      await narrowClient.end();
    }
    await narrow.locator('#events tr', { hasText: narrowName }).waitFor({ timeout: 20_000 });
    const overflow = await narrow.evaluate(() => ({ page: document.documentElement.scrollWidth, window: window.innerWidth }));
    assert.ok(overflow.page <= overflow.window, `page ${overflow.page} px wide in a ${overflow.window} px window`);
    await narrow.screenshot({ path: join(OUTPUT, 'demo-narrow.png') });
  } finally {
    await browser?.close().catch(() => undefined);
    await demo.stop();
  }
});
