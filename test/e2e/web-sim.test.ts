// End-to-end against the running simulated board (needs root, network namespaces and
// /usr/bin/chromium; runs in CI as root): the real cell appliance (`duocell run --board sim`) in
// its namespace, its page reached through the management link like `npm start` does. First-boot
// password, both real uplinks on the dashboard, the chart moving while an M-UE transfer runs
// through the cell, a subscriber's ratio edited in the page and in force in the store (read back
// through the API), a bad value refused with a message and no change, CSRF-less POST and
// logged-out access refused. Screenshot: docs/screenshots/sim-dashboard.png.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import t from 'tap';
import { Client } from '../unit/web-helpers.js';
import { netnsUnavailable } from '../helpers/hosts.js';
import { BIN, PEER } from '../helpers/appliance.js';
import { addMgmtLink, buildSim, SIM_ADDR } from '../../src/sim/board.js';
import { loadBoard } from '../../src/core/board.js';
import { ProxyEngine, directConnector, explicitFront } from '../../src/services/proxy/index.js';
import { socketIo } from '../../src/drivers/sockets/io.js';

const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'Sim-cell-Pa55';
const SHOTS = path.resolve('docs/screenshots');
const why = (await netnsUnavailable()) || (fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (apt-get install chromium)`);

t.test('the page on the running simulated board', { skip: why === false ? false : why, timeout: 300_000 }, async (t) => {
  const lap = (m: string): void => void process.stderr.write(`web-sim: ${m}\n`);
  const sim = await buildSim('twsim');
  lap('sim built');
  t.teardown(() => sim.topo.destroy());
  await addMgmtLink(sim.cell);
  t.teardown(async () => {
    await sim.topo.destroy();
    await import('../helpers/hosts.js').then((h) => h.sh('ip', ['link', 'del', 'twsim-mgmt'], { allowFail: true }));
  });
  sim.srv.spawn(process.execPath, [PEER, 'server', '::', '8000']);
  // The sim's own board, with the web page on the management address only.
  // Without the modem simulator, wwan0 has a static address: name its gateway (a real modem's
  // data session gives it; on a point-to-point wwan0 none is needed).
  const sb = loadBoard('sim');
  const board = {
    ...sb,
    uplinks: sb.uplinks.map((u) => (u.interface === 'wwan0' ? { ...u, gateway4: SIM_ADDR.conc.wwan0[0], gateway6: SIM_ADDR.conc.wwan0[1] } : u)),
    web: { listen: [{ host: '10.99.0.2', port: 18095 }] },
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-websim-'));
  fs.writeFileSync(path.join(dir, 'board.json'), JSON.stringify(board));
  const cell = sim.cell.spawn(process.execPath, [BIN, 'run', '--board', path.join(dir, 'board.json'), '--state-dir', path.join(dir, 'state')], { stdio: 'ignore' });
  t.teardown(() => void cell.kill('SIGTERM'));
  // 127.0.0.1 in this namespace → the cell's page (what `duocell start` does on 8080).
  const fwd = new ProxyEngine({ io: socketIo });
  const a = await fwd.listen({ name: 'web', host: '127.0.0.1', port: 0, mptcp: false, front: explicitFront({ host: '10.99.0.2', port: 18095 }), connector: directConnector });
  t.teardown(() => fwd.close(100));
  const base = `http://127.0.0.1:${a.port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${base}/api/v1/health`, { signal: AbortSignal.timeout(3000) }).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }

  lap(`page at ${base}`);
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'twsim-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(async () => {
    await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(20_000);
  lap('browser up');
  const api = new Client(base);

  await t.test('first boot: set the admin password', async (t) => {
    await page.goto(base + '/');
    await page.locator('#setup-form').waitFor();
    // The page is on a LAN address: set-up needs the box's first-boot secret (issue 16).
    await page.fill('#setup-secret', fs.readFileSync(path.join(dir, 'state', 'first-boot', 'setup-secret'), 'utf8').trim());
    await page.fill('#setup-password', PASSWORD);
    await page.fill('#setup-confirm', PASSWORD);
    await page.click('#setup-form button[type=submit]');
    await page.locator('#nav').waitFor({ state: 'visible' });
    t.equal(new URL(page.url()).hash, '#/dashboard');
  });

  await t.test('both real uplinks on the dashboard; the chart moves while an M-UE transfer runs', async (t) => {
    const cellPath = page.locator('[data-testid="path-cellular"]');
    const wlanPath = page.locator('[data-testid="path-wlan"]');
    await cellPath.waitFor();
    await wlanPath.waitFor();
    t.match(await cellPath.textContent(), /wwan0/);
    t.match(await cellPath.textContent(), new RegExp(SIM_ADDR.cell.wwan0[0].replace(/\./g, '\\.')));
    t.match(await wlanPath.textContent(), new RegExp(SIM_ADDR.cell.wlan0[0].replace(/\./g, '\\.')));
    t.equal(await cellPath.getAttribute('data-state'), 'up');
    t.equal(await wlanPath.getAttribute('data-state'), 'up');
    // 24 MiB each way through the cell's explicit listener (to the N-server over the uplinks).
    const transfer = sim.mue.exec(process.execPath, [PEER, 'client', SIM_ADDR.cell.service[0], '9000', String(24 << 20), String(24 << 20), '--mptcp'], { allowFail: true });
    const canvas = page.locator('canvas#chart');
    await page.waitForFunction(() => Number(document.querySelector('canvas#chart')?.getAttribute('data-samples')) >= 3);
    const n1 = Number(await canvas.getAttribute('data-samples'));
    const img1 = await canvas.evaluate((c: HTMLCanvasElement) => c.toDataURL());
    await page.waitForFunction((n) => Number(document.querySelector('canvas#chart')?.getAttribute('data-samples')) >= n + 4, n1);
    t.not(await canvas.evaluate((c: HTMLCanvasElement) => c.toDataURL()), img1, 'the chart was redrawn with new samples');
    // The rate line shows the transfer (poll the page while it runs).
    let best = 0;
    let last = '';
    for (let i = 0; i < 60 && best <= 1; i++) {
      last = (await page.locator('#total-rate').textContent()) ?? '';
      for (const m of last.matchAll(/([\d.]+)\s*(k|M|G)bit\/s/g)) best = Math.max(best, Number(m[1]) * (m[2] === 'G' ? 1000 : m[2] === 'k' ? 0.001 : 1));
      await new Promise((r) => setTimeout(r, 500));
    }
    t.ok(best > 1, `the page shows the transfer's rate (${last})`);
    t.match((await page.locator('#dash-steering').textContent()) ?? '', /Path manager.*MPTCP connections/, 'the running cell\'s path manager on the dashboard');
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'sim-dashboard.png'), fullPage: true });
    const r = JSON.parse((await transfer).trim().split('\n').pop() ?? '{}') as { error?: string; received?: number };
    t.equal(r.received, 24 << 20, `the transfer completed (${JSON.stringify(r).slice(0, 300)})`);
  });

  await t.test('a subscriber ratio edited in the page is the policy in force', async (t) => {
    t.equal((await api.login(PASSWORD)).status, 200, 'API client logged in');
    const created = await api.req('POST', '/api/v1/subscribers', { name: 'mue-phone', enabled: true, identifiers: { addresses: [SIM_ADDR.mue.ran0[0], SIM_ADDR.mue.wap0[0]], macs: [] }, policy: {
      limits: { maxSessions: 16, maxSubflows: 4, maxSessionsPerServer: 64 }, allowedAccess: ['cellular', 'wlan'], allowedNetworks: [], steering: { mode: 'ratio', primary: 'wlan', ratio: { cellular: 50, wlan: 50 } } } });
    t.equal(created.status, 201, 'subscriber created through the API');
    await page.goto(base + '/#/subscribers');
    await page.locator('#subscribers-body tr[data-name="mue-phone"] button[data-action="edit"]').click();
    const form = page.locator('#subscriber-form');
    await form.waitFor();
    await form.locator('[name="policy.steering.ratio.cellular"]').fill('30');
    await form.locator('[name="policy.steering.ratio.wlan"]').fill('70');
    await page.click('#save-subscriber');
    await page.locator('.alert.ok').waitFor();
    const r = await api.get('/api/v1/subscribers/mue-phone');
    t.same(r.body.policy.steering.ratio, { cellular: 30, wlan: 70 }, 'the API reads the new ratio back from the store');
  });

  await t.test('a bad value shows a message and changes nothing', async (t) => {
    await page.locator('#subscribers-body tr[data-name="mue-phone"] button[data-action="edit"]').click();
    const form = page.locator('#subscriber-form');
    await form.locator('[name="policy.steering.ratio.cellular"]').fill('150');
    await page.click('#save-subscriber');
    await form.locator('[data-error-for="policy.steering.ratio.cellular"]').waitFor({ state: 'visible' });
    t.match(await form.locator('[data-error-for="policy.steering.ratio.cellular"]').textContent(), /<= 100/);
    const r = await api.get('/api/v1/subscribers/mue-phone');
    t.same(r.body.policy.steering.ratio, { cellular: 30, wlan: 70 }, 'unchanged');
  });

  await t.test('CSRF-less POST and logged-out access are refused', async (t) => {
    const res = await page.evaluate(async () => {
      const r = await fetch('/api/v1/subscribers', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', enabled: true, identifiers: { addresses: ['192.0.2.1'], macs: [] }, policy: null }) });
      return r.status;
    });
    t.equal(res, 403, 'no CSRF token: 403');
    await ctx.clearCookies();
    t.equal(await page.evaluate(async () => (await fetch('/api/v1/paths')).status), 401, 'logged out: 401');
  });
});
