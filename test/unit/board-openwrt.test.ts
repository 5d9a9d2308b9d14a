import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateBoard } from '../../src/core/board.js';

/**
 * The OpenWrt package's init script, checked here without OpenWrt: shellcheck, and its
 * functions run under busybox ash with procd and uci stubbed (openwrt/test/harness.sh).
 * Needs the Debian packages shellcheck and busybox; skips without them.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const init = path.join(root, 'openwrt/duocell/files/duocell.init');
const harness = path.join(root, 'openwrt/test/harness.sh');
const fixture = path.join(root, 'openwrt/test/uci-fixture.txt');
const has = (cmd: string): boolean => spawnSync(cmd, ['--help'], { stdio: 'ignore' }).error === undefined;

t.test('shellcheck: init script and harness are clean', { skip: has('shellcheck') ? false : 'needs shellcheck' }, async (t) => {
  const r = spawnSync('shellcheck', [init, harness], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout || 'clean');
});

t.test('under busybox ash: UCI becomes a valid board profile; procd gets respawn and triggers', { skip: has('busybox') ? false : 'needs busybox' }, async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-owrt-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
  const r = spawnSync('busybox', ['ash', harness, init, fixture, out, 'start_service', 'service_triggers'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  t.equal(r.status, 0, `harness exit 0 ${r.stderr}`);
  const text = fs.readFileSync(path.join(out, 'run/board.json'), 'utf8');
  const board = validateBoard(JSON.parse(text));
  t.equal(board.preset, 'cell');
  t.same(
    board.uplinks.map((u) => [u.name, u.access, u.interface]),
    [
      ['cellular', 'cellular', 'wwan0'],
      ['wlan', 'wlan', 'phy1-sta0'],
    ],
    'uplinks from the uplink sections, in order',
  );
  t.same(board.uplinks.map((u) => u.probe), [{ method: 'icmp' }, undefined], 'probed by ICMP echo to the gateway by default; `probe off` turns it off');
  t.same(board.lan.interfaces, ['br-lan'], 'LAN device from /etc/config/network');
  t.same(board.lan.addresses, ['10.77.0.1/24'], 'ipaddr + netmask → CIDR');
  t.same(board.web.listen, [{ host: '10.77.0.1', port: 8080 }], 'web page on the LAN address');
  t.same([board.web.setupSecret, board.web.metricsToken, board.web.https, board.web.plainHttp], ['generate', 'generate', { port: 8443 }, 'redirect'], 'first boot: secret, metrics token, HTTPS by default');
  t.equal(board.modem?.model, 'Quectel "EC25" \\ on USB', 'quotes and backslashes escaped');
  t.same(board.modem?.usb, [
    { vendor: '2c7c', product: '0125' },
    { vendor: '2c7c', product: '0801' },
  ]);
  t.same(board.modem?.apn, { name: 'internet.example', ipType: 'ipv4', auth: 'none' });
  t.equal(board.ota?.trustedKeys.length, 2);
  const log = fs.readFileSync(path.join(out, 'procd.log'), 'utf8');
  t.match(log, /^procd_set_param command \/usr\/bin\/node \/usr\/lib\/duocell\/bin\/duocell\.js run --board .*\/run\/board\.json$/m);
  t.match(log, /^procd_set_param respawn 3600 5 5$/m, 'respawn');
  t.match(log, /^procd_set_param env DUOCELL_STATE_DIR=\/tmp\/duocell-state DUOCELL_LOG_LEVEL=debug NODE_ENV=production$/m);
  t.match(log, /^procd_set_param file \/etc\/config\/duocell$/m, 'config change restarts');
  t.match(log, /^procd_add_reload_trigger duocell$/m);
  for (const net of ['wwan', 'wwan_wifi', 'lan']) {
    t.match(log, new RegExp(`^procd_add_interface_trigger interface\\.\\* ${net} /etc/init\\.d/duocell reload$`, 'm'), `interface trigger ${net}`);
  }
});

t.test('disabled in UCI: no instance', { skip: has('busybox') ? false : 'needs busybox' }, async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-owrt-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
  const fx = path.join(out, 'fixture.txt');
  fs.writeFileSync(fx, fs.readFileSync(fixture, 'utf8').replace('duocell.main.enabled=1', 'duocell.main.enabled=0'));
  const r = spawnSync('busybox', ['ash', harness, init, fx, out, 'start_service'], { encoding: 'utf8' });
  t.equal(r.status, 0);
  t.notOk(fs.existsSync(path.join(out, 'procd.log')), 'procd not called');
});

t.test('the package ships what the Makefile installs', async (t) => {
  const mk = fs.readFileSync(path.join(root, 'openwrt/duocell/Makefile'), 'utf8');
  for (const f of ['files/duocell.init', 'files/duocell.config', 'files/duocell.sysctl']) {
    t.ok(mk.includes(`./${f}`), `Makefile installs ${f}`);
    t.ok(fs.existsSync(path.join(root, 'openwrt/duocell', f)), `${f} exists`);
  }
  t.match(mk, /\$\(eval \$\(call BuildPackage,duocell\)\)/);
  // dist/src/web/server.js serves the page from <root>/src/web/ui: the package must carry it.
  t.match(mk, /find \. -type f ! -name '\*\.ts'[^\n]*\/usr\/lib\/duocell\/src/, 'the page and other non-TypeScript sources are installed');
  t.ok(fs.existsSync(path.join(root, 'src/web/ui/index.html')), 'the page is under src/web/ui');
});
