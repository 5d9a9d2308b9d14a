import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The systemd files of the image: the unit passes `systemd-analyze verify`, its security
 * exposure (`systemd-analyze security --offline=yes`) stays at or below 3.0, the sysctl and
 * sysusers files are well formed, and image/install-system-files.sh lays them out and
 * enables the unit. Needs systemd-analyze (Debian package systemd) and root (sysusers --root
 * writes a tree owned by root); skips without them.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const unit = path.join(root, 'systemd/duocell.service');
const haveAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;
const skip = !haveAnalyze ? 'needs systemd-analyze (Debian package systemd)' : false;

t.test('systemd-analyze verify: no warnings', { skip }, async (t) => {
  // verify checks that ExecStart's binary exists: /usr/bin/node, here as on the box.
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  const out = (r.stdout + r.stderr)
    .split('\n')
    .filter((l) => l.trim() !== '')
    // The host may lack the Documentation file: not a defect of the unit.
    .filter((l) => !/Documentation|duocell\/docs/.test(l));
  t.equal(r.status, 0, 'exit status 0');
  t.same(out, [], 'no complaint about the unit');
});

t.test('systemd-analyze security --offline=yes: exposure <= 3.0', { skip }, async (t) => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', unit], { encoding: 'utf8' });
  const m = /Overall exposure level for duocell\.service: (\d+(?:\.\d+)?)/.exec(r.stdout + r.stderr);
  t.ok(m, 'the overall figure is printed');
  const exposure = Number(m?.[1]);
  t.comment(`exposure ${exposure}`);
  t.ok(exposure <= 3.0, `exposure ${exposure} <= 3.0`);
  // The settings the figure rests on, named so a regression says which one went.
  const text = fs.readFileSync(unit, 'utf8');
  for (const line of [
    'Type=notify',
    'NotifyAccess=main',
    'Restart=on-failure',
    'User=duocell',
    'ProtectSystem=strict',
    'StateDirectory=duocell',
    'DevicePolicy=closed',
    'NoNewPrivileges=yes',
  ]) {
    t.match(text, new RegExp(`^${line}$`, 'm'), line);
  }
  t.match(text, /^WatchdogSec=\d+s$/m, 'WatchdogSec set');
  const caps = /^CapabilityBoundingSet=(.*)$/m.exec(text)?.[1]?.split(/\s+/).sort();
  t.same(caps, ['CAP_NET_ADMIN', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW'], 'only the network capabilities');
  // The DHCP client duocell runs on usb0 and the WLAN uplink (drivers/dhcp, udhcpc) needs a packet
  // socket: a family list without AF_PACKET failed it with EAFNOSUPPORT on the booted image.
  const families = /^RestrictAddressFamilies=(.*)$/m.exec(text)?.[1]?.split(/\s+/) ?? [];
  for (const f of ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET']) t.ok(families.includes(f), `RestrictAddressFamilies allows ${f}`);
});

t.test('sysctl drop-in: key = value lines, MPTCP on', async (t) => {
  const text = fs.readFileSync(path.join(root, 'systemd/60-duocell.conf'), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  // sysctl.d(5): a leading '-' means a failure to set the key is not an error (a value this
  // kernel may lack, e.g. the tcp_bbr congestion control)
  for (const l of lines) t.match(l, /^-?[a-z0-9_.]+ = \S+( \S+)*$/, l);
  t.ok(lines.includes('net.mptcp.enabled = 1'), 'net.mptcp.enabled = 1');
  // Keys this kernel knows must exist in /proc/sys (where MPTCP is built in).
  if (fs.existsSync('/proc/sys/net/mptcp/enabled')) {
    for (const l of lines) {
      const key = l.split(' = ')[0]!.replace(/^-/, '');
      t.ok(fs.existsSync(path.join('/proc/sys', key.replace(/\./g, '/'))), `${key} exists in this kernel`);
    }
  }
  // and this kernel can take the optional ones' values
  const cc = lines.find((l) => l.startsWith('-net.ipv4.tcp_congestion_control = '))?.split(' = ')[1];
  if (cc !== undefined && fs.existsSync('/proc/sys/net/ipv4/tcp_available_congestion_control')) {
    t.ok(fs.readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').split(/\s+/).includes(cc), `congestion control ${cc} is available in this kernel`);
  }
});

t.test('install-system-files.sh: unit enabled, user in dialout, files from the profile', { skip: skip || (!isRoot && 'needs root') }, async (t) => {
  const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'dc-rootfs-'));
  t.teardown(() => fs.rmSync(tree, { recursive: true, force: true }));
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(tree, 'etc/group'), 'root:x:0:\ndialout:x:20:\n');
  execFileSync('bash', [path.join(root, 'image/install-system-files.sh'), tree, 'rpi4-ec25'], { cwd: root, stdio: 'pipe' });
  const wants = path.join(tree, 'etc/systemd/system/multi-user.target.wants/duocell.service');
  t.ok(fs.lstatSync(wants).isSymbolicLink(), 'duocell.service enabled');
  t.match(fs.readFileSync(path.join(tree, 'etc/passwd'), 'utf8'), /^duocell:x:\d+:\d+:/m, 'user duocell');
  t.match(fs.readFileSync(path.join(tree, 'etc/group'), 'utf8'), /^dialout:x:20:duocell$/m, 'duocell in dialout');
  t.match(fs.readFileSync(path.join(tree, 'etc/default/duocell'), 'utf8'), /^DUOCELL_BOARD=rpi4-ec25$/m);
  const rules = fs.readFileSync(path.join(tree, 'usr/lib/udev/rules.d/70-duocell-modem.rules'), 'utf8');
  t.match(rules, /ATTRS\{idVendor\}=="2c7c", ATTRS\{idProduct\}=="0125"/, 'udev rules for the EC25');
  const lan = fs.readFileSync(path.join(tree, 'etc/systemd/network/20-duocell-lan-eth0.network'), 'utf8');
  t.match(lan, /^Address=192\.168\.225\.1\/24$/m, 'LAN address from the profile');
  t.match(lan, /^DHCPServer=yes$/m);
});
