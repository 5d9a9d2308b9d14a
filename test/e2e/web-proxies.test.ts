// End-to-end: the Proxies page in headless Chromium against the fake deps (see
// web-browser.test.ts): the candidates with their health, an edit saved through the page (seen
// through the API), and a list with duplicate names refused with its code and no change.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Client } from '../unit/web-helpers.js';
import { startTarget } from './web-target.js';

const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'Pa55-for-the-proxies';

if (!existsSync(CHROMIUM)) {
  t.plan(0, `skip: ${CHROMIUM} is absent (apt-get install chromium)`);
} else {
  await run();
}

async function run(): Promise<void> {
  const { chromium } = await import('playwright-core');
  const target = await startTarget();
  const base = target.base;
  const profile = mkdtempSync(path.join(tmpdir(), 'tweb-proxies-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(async () => {
    await ctx.close().catch(() => {});
    await target.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(15_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
  });

  await page.goto(base + '/');
  await page.locator('#setup-form').waitFor();
  await page.fill('#setup-password', PASSWORD);
  await page.fill('#setup-confirm', PASSWORD);
  await page.click('#setup-form button[type=submit]');
  await page.locator('#nav').waitFor({ state: 'visible' });
  const api = new Client(base);
  await api.login(PASSWORD);

  await t.test('the Proxies page lists candidates with health and RTT', async (t) => {
    await page.click('#nav a[href="#/proxies"]');
    await page.locator('#proxies-body tr').first().waitFor();
    const text = await page.locator('#proxies').textContent();
    t.match(text, /conc-1/);
    t.match(text, /healthy/);
    t.match(text, /22 ms/);
    t.match(text, /DOWN/, 'the unhealthy one says so');
  });

  await t.test('an edit in the page replaces the list (seen through the API)', async (t) => {
    const list = JSON.parse(await page.inputValue('#proxies-json')) as Array<Record<string, unknown>>;
    list.push({ name: 'site-a', address: '192.0.2.10', port: 5124, protocol: 'convert', location: 'cdn-east', priority: 30, apps: [{ name: 'video', ports: [443], prefixes: ['198.51.100.0/24'] }] });
    await page.fill('#proxies-json', JSON.stringify(list));
    await page.click('#save-proxies');
    await page.locator('#proxies-form .alert.ok').waitFor();
    const got = (await api.get('/api/v1/proxies')).body as Array<{ name: string }>;
    t.same(got.map((p) => p.name), ['conc-1', 'conc-2', 'site-a']);
    t.match(await page.locator('#proxies').textContent(), /video/);
  });

  await t.test('a list with duplicate names is refused with its code and changes nothing', async (t) => {
    await page.fill('#proxies-json', JSON.stringify([{ name: 'x', address: '192.0.2.1', port: 1, protocol: 'convert' }, { name: 'x', address: '192.0.2.2', port: 1, protocol: 'convert' }]));
    await page.click('#save-proxies');
    await page.locator('#proxies-form .alert.error').waitFor();
    t.match(await page.locator('#proxies-form .alert.error').textContent(), /DC_STORE_INVALID/);
    t.equal(((await api.get('/api/v1/proxies')).body as unknown[]).length, 3, 'the old list stays');
    t.same(pageErrors, [], 'no script errors');
  });
}
