// End-to-end: the page in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core) against a web server on 127.0.0.1 with fake deps moving data.
// First-boot password, login, dashboard with both paths and a moving chart, editing a
// subscriber's ratio (checked through the API), a bad value refused with a message and no
// change, a CSRF-less POST refused, logged-out access refused. Screenshots go to
// docs/screenshots/.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { Client } from '../unit/web-helpers.js';
import { startTarget } from './web-target.js';

const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'Pa55-for-the-cell';
const SHOTS = path.resolve('docs/screenshots');

if (!existsSync(CHROMIUM)) {
  t.plan(0, `skip: ${CHROMIUM} is absent (apt-get install chromium)`);
} else {
  await run();
}

async function run(): Promise<void> {
  const { chromium } = await import('playwright-core');
  const target = await startTarget();
  const base = target.base;
  const profile = mkdtempSync(path.join(tmpdir(), 'tweb-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.teardown(async () => {
    await ctx.close().catch(() => {});
    await target.close();
    rmSync(profile, { recursive: true, force: true });
  });
  mkdirSync(SHOTS, { recursive: true });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(15_000);
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // The page must live within its own Content-Security-Policy (no inline script or style).
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
  });

  // An API client of its own (its own session), to check what the page did.
  const api = new Client(base);
  let aliceId = '';

  await t.test('first boot asks for a password; a weak one is refused with a message', async (t) => {
    await page.goto(base + '/');
    await page.locator('#setup-form').waitFor();
    t.ok(await page.locator('#nav').isHidden(), 'no navigation before a password exists');
    await page.fill('#setup-password', 'short');
    await page.fill('#setup-confirm', 'short');
    await page.click('#setup-form button[type=submit]');
    await page.locator('#setup-form .alert.error').waitFor();
    t.match(await page.locator('#setup-form .alert.error').textContent(), /at least 8 characters/);
    await page.fill('#setup-password', PASSWORD);
    await page.fill('#setup-confirm', PASSWORD);
    await page.click('#setup-form button[type=submit]');
    await page.locator('#nav').waitFor({ state: 'visible' });
    t.equal(new URL(page.url()).hash, '#/dashboard');
    const cookies = await ctx.cookies(base);
    const session = cookies.find((c) => c.name === 'dc_session');
    t.ok(session, 'session cookie set');
    t.equal(session?.httpOnly, true, 'HttpOnly');
    t.equal(session?.sameSite, 'Strict', 'SameSite=Strict');
    t.equal(await page.evaluate(() => document.cookie.includes('dc_session')), false, 'script cannot read the session cookie');
  });

  await t.test('dashboard shows both paths, and the chart moves while traffic flows', async (t) => {
    const cell = page.locator('[data-testid="path-cellular"]');
    const wlan = page.locator('[data-testid="path-wlan"]');
    await cell.waitFor();
    await wlan.waitFor();
    t.match(await cell.textContent(), /wwan0/);
    t.match(await cell.textContent(), /10\.64\.12\.7/);
    t.match(await wlan.textContent(), /wlan0/);
    t.equal(await cell.getAttribute('data-state'), 'up');
    t.equal(await wlan.getAttribute('data-state'), 'up');
    t.equal(await wlan.locator('.bars i.on').count(), 4, 'WLAN signal bars');
    t.ok((await cell.locator('.bars i.on').count()) >= 1, 'cellular signal bars');
    t.match(await cell.textContent(), /\d+\.\d ms \(p95 \d+\.\d ms\)/, 'measured RTT: median and p95 (not "—")');
    t.match(await cell.textContent(), /probes\)/, 'jitter and loss over the probe window');
    t.equal(await cell.locator('[data-testid="rtt-chart-cellular"]').count(), 1, 'an RTT chart on the path card');

    await target.startTransfer();
    const canvas = page.locator('canvas#chart');
    await page.waitForFunction(() => Number(document.querySelector('canvas#chart')?.getAttribute('data-samples')) >= 4);
    const n1 = Number(await canvas.getAttribute('data-samples'));
    const img1 = await canvas.evaluate((c: HTMLCanvasElement) => c.toDataURL());
    await page.waitForFunction((n) => Number(document.querySelector('canvas#chart')?.getAttribute('data-samples')) >= n + 4, n1);
    const img2 = await canvas.evaluate((c: HTMLCanvasElement) => c.toDataURL());
    t.ok(Number(await canvas.getAttribute('data-samples')) > n1, 'new samples arrived over SSE');
    t.not(img2, img1, 'the chart was redrawn with them');
    t.match(await page.locator('#total-rate').textContent(), /Mbit\/s/);
    t.match(await page.locator('#dash-session-count').textContent(), /^\d+$/, 'session count shown');
    const pooling = (await page.locator('#dash-steering').textContent()) ?? '';
    t.match(pooling, /Path managerduocell \(userspace\)/, 'the path manager mode is shown');
    t.match(pooling, /alice-phoneratio 30 % cellular, measured 31 %/, 'a steered subscriber: target and measured share');
    // Let the chart fill a little for the screenshot.
    await page.waitForFunction(() => Number(document.querySelector('canvas#chart')?.getAttribute('data-samples')) >= 40, undefined, { timeout: 30_000 });
    await page.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });
    t.ok(existsSync(path.join(SHOTS, 'dashboard.png')), 'dashboard screenshot saved');
  });

  await t.test('sessions table lists sessions with M/N combination and subflow access types', async (t) => {
    await page.goto(base + '/#/sessions');
    await page.locator('#sessions-body tr').first().waitFor();
    const row = await page.locator('#sessions-body tr').first().textContent();
    t.match(row, /[MN]-[MN]/);
    t.ok((await page.locator('#sessions-body .chip').count()) > 0, 'subflow chips');
    await page.screenshot({ path: path.join(SHOTS, 'sessions.png'), fullPage: true });
  });

  await t.test('editing a subscriber ratio in the page changes the policy (seen through the API)', async (t) => {
    t.equal((await api.login(PASSWORD)).status, 200, 'API client logged in');
    await page.goto(base + '/#/subscribers');
    await page.locator('#subscribers-body tr[data-name="alice-phone"] button[data-action="edit"]').click();
    const form = page.locator('#subscriber-form');
    await form.waitFor();
    await form.locator('[name="policy.steering.ratio.cellular"]').fill('45');
    await form.locator('[name="policy.steering.ratio.wlan"]').fill('55');
    await page.click('#save-subscriber');
    await page.locator('.alert.ok').waitFor();
    t.match(await page.locator('#subscribers-body tr[data-name="alice-phone"] td.steering').textContent(), /45:55/);
    const all = await api.get('/api/v1/subscribers');
    aliceId = all.body.find((s: { name: string }) => s.name === 'alice-phone').id;
    const r = await api.get(`/api/v1/subscribers/${aliceId}`);
    t.same(r.body.policy.steering.ratio, { cellular: 45, wlan: 55 }, 'the API shows the new ratio');
    await page.screenshot({ path: path.join(SHOTS, 'subscribers.png'), fullPage: true });
  });

  await t.test('a bad value shows a validation message and changes nothing', async (t) => {
    await page.locator('#subscribers-body tr[data-name="alice-phone"] button[data-action="edit"]').click();
    const form = page.locator('#subscriber-form');
    await form.locator('[name="policy.steering.ratio.cellular"]').fill('150');
    await page.click('#save-subscriber');
    const msg = form.locator('[data-error-for="policy.steering.ratio.cellular"]');
    await msg.waitFor({ state: 'visible' });
    t.match(await msg.textContent(), /<= 100/);
    t.ok(await form.locator('[name="policy.steering.ratio.cellular"]').evaluate((e) => e.classList.contains('invalid')), 'the input is marked');
    t.match(await form.locator('.alert.error').textContent(), /ratio/);
    // Shares that do not sum to 100: message beside the ratio.
    await form.locator('[name="policy.steering.ratio.cellular"]').fill('60');
    await page.click('#save-subscriber');
    await page.waitForFunction(() => /sum to 100/.test(document.querySelector('[data-error-for="policy.steering.ratio"]')?.textContent ?? ''));
    t.pass('sum message shown');
    await page.screenshot({ path: path.join(SHOTS, 'validation.png'), fullPage: true });
    const r = await api.get(`/api/v1/subscribers/${aliceId}`);
    t.same(r.body.policy.steering.ratio, { cellular: 45, wlan: 55 }, 'nothing changed');
  });

  await t.test('a POST without the CSRF token is refused, even with the session cookie', async (t) => {
    const res = await page.evaluate(async () => {
      const r = await fetch('/api/v1/subscribers', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'csrf-victim', identifiers: { addresses: ['192.0.2.99'] } }),
      });
      return { status: r.status, body: await r.json() };
    });
    t.equal(res.status, 403);
    t.equal(res.body.error.code, 'DC_WEB_CSRF');
    const list = await api.get('/api/v1/subscribers');
    t.notOk(list.body.some((s: { name: string }) => s.name === 'csrf-victim'), 'nothing was created');
  });

  await t.test('modem, WLAN, OTA and system pages render', async (t) => {
    await page.goto(base + '/#/modem');
    t.match(await page.locator('[data-testid="modem"]').textContent(), /LTE/);
    await page.goto(base + '/#/wlan');
    t.match(await page.locator('[data-testid="wlan"]').textContent(), /backhaul-5g/);
    await page.goto(base + '/#/system');
    t.match(await page.locator('[data-testid="system"]').textContent(), /Memory/);
    await page.goto(base + '/#/ota');
    await page.locator('#ota-status dl').waitFor();
    await page.setInputFiles('#bundle-file', { name: 'bundle.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify({ version: 11 })) });
    await page.click('#ota-form button[type=submit]');
    await page.locator('#ota-form .alert.ok').waitFor();
    t.match(await page.locator('#ota-status').textContent(), /11/);
    t.equal((await api.get('/api/v1/ota')).body.version, 11, 'the pushed bundle is in force');
  });

  await t.test('UDP: each flow in the sessions view; the UDP mode and the QUIC option in the policy forms', async (t) => {
    // GET /api/v1/udp is answered in the browser from the fake deps' UDP flows (the UDP API's
    // contract), whatever the server offers: on, off (enabled:false) and absent (404).
    const serverUdp = (await api.get('/api/v1/udp')).status;
    let answer: 'on' | 'off' | 'absent' = 'on';
    await page.route('**/api/v1/udp', async (route) =>
      answer === 'absent'
        ? route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: { code: 'DC_HTTP_NOT_FOUND', message: 'no route GET /api/v1/udp' } }) })
        : route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(answer === 'on' ? await target.udp() : { enabled: false, flows: [] }) }),
    );
    t.teardown(() => page.unroute('**/api/v1/udp'));

    await page.goto(base + '/#/sessions');
    await page.locator('#udp-flows-body tr[data-flow]').first().waitFor();
    const flows = (await target.udp()).flows;
    t.equal(await page.locator('#udp-flows-body tr[data-flow]').count(), flows.length, 'one row per UDP flow');
    const quic = page.locator('#udp-flows-body tr[data-flow="10.10.0.2:50412>198.51.100.20:443"]');
    t.equal(await quic.count(), 1, 'a flow by its 5-tuple');
    t.match(await quic.textContent(), /10\.10\.0\.2:50412198\.51\.100\.20:443.*wlan\d+(\.\d)? (B|KiB|MiB)/, 'source, destination, path and bytes');
    t.equal(await quic.getAttribute('data-uplink'), 'wlan');
    t.equal(await page.locator('#udp-flows-body tr[data-uplink="cellular"]').count(), flows.filter((f) => f.uplink === 'cellular').length, 'flows on the cellular uplink');
    t.equal(await page.locator('#udp-flows-body tr[data-flow="[fd00:1::20]:41000>[2001:db8:53::1]:53"]').count(), 1, 'IPv6 endpoints in brackets');
    t.match(await page.locator('#udp-count').textContent(), new RegExp(`^${flows.length} steered · default mode load-balancing`));
    t.equal(await page.locator('#sessions-body tr').count() > 0, true, 'the TCP sessions stay beside them');

    answer = 'off';
    await page.waitForFunction(() => document.getElementById('udp')?.dataset.state === 'off');
    t.match(await page.locator('#udp').textContent(), /UDP steering off/, 'enabled:false: UDP steering off');
    t.equal(await page.locator('#udp-flows').count(), 0, 'and no flow table');
    answer = 'absent';
    await page.waitForFunction(() => document.getElementById('udp')?.dataset.state === 'absent');
    t.match(await page.locator('#udp').textContent(), /UDP steering off/, '404: UDP steering off');

    // Absent: the policy forms carry no UDP fields (and send none).
    await page.goto(base + '/#/policy');
    await page.locator('#policy-form').waitFor();
    t.equal(await page.locator('[name="defaults.udpMode"]').count(), 0, 'no UDP mode without the UDP API');
    t.equal(await page.locator('[name="defaults.quic"]').count(), 0, 'no QUIC option without the UDP API');

    answer = 'on';
    await page.goto(base + '/#/dashboard');
    await page.goto(base + '/#/policy');
    await page.locator('[name="defaults.udpMode"]').waitFor();
    t.same(
      await page.locator('[name="defaults.udpMode"] option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)),
      ['active-standby', 'priority', 'smallest-delay', 'load-balancing'],
      'the four UDP steering modes',
    );
    t.equal(await page.inputValue('[name="defaults.udpMode"]'), 'load-balancing', 'a ratio policy naming no UDP mode: load-balancing');
    t.equal(await page.inputValue('[name="defaults.quic"]'), 'allow');

    await page.goto(base + '/#/subscribers');
    await page.locator('#subscribers-body tr[data-name="alice-phone"] button[data-action="edit"]').click();
    const form = page.locator('#subscriber-form');
    await form.locator('[name="policy.udpMode"]').waitFor();
    await form.locator('[name="policy.udpMode"]').selectOption('smallest-delay');
    await form.locator('[name="policy.quic"]').selectOption('block');
    const [req, res] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'PUT' && r.url().includes(`/api/v1/subscribers/${aliceId}`)),
      page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().includes(`/api/v1/subscribers/${aliceId}`)),
      page.click('#save-subscriber'),
    ]);
    const sent = JSON.parse(req.postData() ?? '{}') as { policy: { udpMode?: string; quic?: string; steering: { ratio: unknown } } };
    t.equal(sent.policy.udpMode, 'smallest-delay', 'the page sends the UDP mode with the policy');
    t.equal(sent.policy.quic, 'block', 'and the QUIC option');
    t.same(sent.policy.steering.ratio, { cellular: 45, wlan: 55 }, 'beside the MPTCP steering');
    const after = await api.get(`/api/v1/subscribers/${aliceId}`);
    if (res.ok()) {
      // A server with the UDP API keeps them.
      await page.locator('.alert.ok').waitFor();
      t.equal(after.body.policy.udpMode, 'smallest-delay', 'the API shows the UDP mode');
      t.equal(after.body.policy.quic, 'block', 'the API shows the QUIC option');
      t.match(await page.locator('#subscribers-body tr[data-name="alice-phone"] td.steering').textContent(), /UDP smallest-delay · QUIC blocked/);
    } else {
      // This server has no UDP API yet (GET /udp answered ${serverUdp}): its policy schema refuses them, whole.
      t.equal(res.status(), 400, `a server without the UDP API (GET /udp ${serverUdp}) refuses the fields`);
      await form.locator('.alert.error').waitFor();
      t.same(after.body.policy.steering.ratio, { cellular: 45, wlan: 55 }, 'and changes nothing');
    }
  });

  await t.test('a pool member: the dashboard shows its anycast state, BGP and BFD sessions, and what is wrong', async (t) => {
    // /health as a concentrator whose BFD session is down answers it (services/anycast view).
    await page.route('**/api/v1/health', async (route) => {
      const real = (await (await route.fetch()).json()) as Record<string, unknown>;
      const anycast = {
        protocol: 'pool_static',
        state: 'withdrawn',
        healthy: false,
        checks: { listeners: true },
        bgp: [{ name: 'edge', state: 'Established', info: '' }],
        bfd: [{ peer: '10.99.0.1', interface: 'eth0', state: 'Down' }],
        problems: ['BFD session with 10.99.0.1 is Down'],
        checkedAt: new Date().toISOString(),
      };
      await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ ...real, status: 'degraded', anycast }) });
    });
    t.teardown(() => page.unroute('**/api/v1/health'));
    await page.goto(base + '/#/dashboard');
    const card = page.locator('#dash-anycast');
    await card.waitFor();
    const text = await card.innerText();
    t.match(text, /withdrawn/, 'the announcement state');
    t.match(text, /BGP edge[\s\S]*Established/, 'the BGP session');
    t.match(text, /BFD 10\.99\.0\.1[\s\S]*Down/, 'the BFD session');
    t.match(text, /BFD session with 10\.99\.0\.1 is Down/, 'the problem in words');
  });

  await t.test('a view left while it still loads leaves no timer behind', async (t) => {
    // The Proxies view polls every 2 s once loaded; held at its first request, it is left for the
    // Modem view, then released: it must not start polling under the Modem view.
    let release = (): void => {};
    const gate = new Promise<void>((r) => (release = r));
    let polls = 0;
    await page.route('**/api/v1/proxies', async (route) => {
      polls++;
      await gate;
      await route.continue();
    });
    t.teardown(() => page.unroute('**/api/v1/proxies'));
    await page.goto(base + '/#/proxies');
    await t.resolves(waitUntil(() => polls >= 1), 'the Proxies view asked for the list');
    await page.goto(base + '/#/modem');
    await page.locator('[data-testid="modem"]').waitFor();
    release();
    const held = polls;
    await page.waitForTimeout(5000);
    t.equal(polls, held, 'no request for /proxies after the view was left');
    t.match(await page.locator('[data-testid="modem"]').textContent(), /LTE/, 'the Modem view stays');
  });

  await t.test('after logout, access is refused and the page asks to log in', async (t) => {
    await page.goto(base + '/#/dashboard');
    await page.click('#logout');
    await page.locator('#login-form').waitFor();
    const res = await page.evaluate(async () => (await fetch('/api/v1/paths')).status);
    t.equal(res, 401, 'API refuses the logged-out browser');
    // A wrong password shows a message; the right one lets us in again.
    await page.fill('#login-password', 'not-the-password');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-form .alert.error').waitFor();
    t.match(await page.locator('#login-form .alert.error').textContent(), /wrong/);
    await page.fill('#login-password', PASSWORD);
    await page.click('#login-form button[type=submit]');
    await page.locator('[data-testid="path-wlan"]').waitFor();
    t.pass('logged in again');
  });

  await t.test('a fresh browser (no cookies) gets the login form, not the data', async (t) => {
    const other = await ctx.browser()?.newContext();
    // A persistent context has no browser(); use a new page with cookies cleared instead.
    if (other !== undefined) await other.close();
    await ctx.clearCookies();
    await page.goto(base + '/#/subscribers');
    await page.locator('#login-form').waitFor();
    t.equal(await page.locator('#subscribers').count(), 0, 'no subscriber table shown');
  });

  t.same(pageErrors, [], 'no script errors or CSP violations on the page');
}

async function waitUntil(ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
