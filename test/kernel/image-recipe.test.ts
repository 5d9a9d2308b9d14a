import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The image recipe and the boot test, statically: bash syntax and shellcheck, the package
 * list and initramfs module list the build depends on, and the QEMU boot test only when asked
 * (DUOCELL_TEST_IMAGE=1 with image/out built: `npm run test:image` runs it in CI on its own,
 * it takes minutes under emulation).
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const scripts = ['image/build.sh', 'image/boot-test.sh', 'image/install-system-files.sh'].map((f) => path.join(root, f));
const has = (cmd: string): boolean => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).error === undefined;

t.test('bash -n and shellcheck', async (t) => {
  for (const s of scripts) t.equal(spawnSync('bash', ['-n', s]).status, 0, `${path.basename(s)} parses`);
  if (!has('shellcheck')) {
    // scripts/setup.sh installs it: in CI its absence is a set-up bug, never a silent pass.
    if (process.env.CI === 'true') t.fail('shellcheck is missing (Debian package shellcheck, installed by scripts/setup.sh)');
    else t.comment('SKIP: shellcheck not installed (Debian package shellcheck)');
    return;
  }
  const r = spawnSync('shellcheck', ['-S', 'warning', ...scripts], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout || 'shellcheck clean');
});

t.test('the recipe builds what the boot test and the Pi need', async (t) => {
  const build = fs.readFileSync(scripts[0]!, 'utf8');
  for (const pkg of ['systemd', 'linux-image-arm64', 'nodejs', 'nftables', 'initramfs-tools', 'firmware-brcm80211', 'wpasupplicant', 'hostapd', 'iw', 'udhcpc', 'dnsmasq-base']) {
    t.match(build, new RegExp(`^(\\s+|KERNEL_PKGS=\\().*\\b${pkg}\\b`, 'm'), `package ${pkg}`);
  }
  t.match(build, /--arch=arm64/, 'arm64 rootfs');
  t.match(build, /\btrixie\b/, 'Debian trixie');
  t.match(build, /MODULES=list/, 'small initramfs');
  t.match(build, /genimage --config/, 'SD image by genimage');
  t.match(build, /aarch64-linux-gnu-gcc/, 'addons cross-compiled');
  const mods = fs
    .readFileSync(path.join(root, 'image/initramfs-modules'), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
  for (const m of ['virtio_blk', 'virtio_pci', 'ext4', 'mmc_block', 'sdhci_iproc']) t.ok(mods.includes(m), `initramfs has ${m}`);
  t.ok(mods.length < 16, 'the module list stays short');
  // WLAN: wpa_supplicant as its own unit (duocell adds the interface), the boot test's hwsim rig.
  const install = fs.readFileSync(scripts[2]!, 'utf8');
  t.match(install, /systemd\/duocell-wlan\.service/, 'duocell-wlan.service installed');
  t.match(fs.readFileSync(path.join(root, 'systemd/duocell-wlan.service'), 'utf8'), /^ExecStart=\/usr\/sbin\/wpa_supplicant -g \/run\/duocell-wlan\/global -G duocell$/m, 'wpa_supplicant with the global socket duocell uses');
  const boot = fs.readFileSync(scripts[1]!, 'utf8');
  t.match(boot, /modprobe mac80211_hwsim radios=2/, 'the boot test runs two simulated radios');
  t.match(boot, /hostapd_cli -p \/run\/dcap\/hostapd deauthenticate/, 'and deauthenticates the uplink');
  t.match(boot, /ip netns exec dcap dnsmasq [^\n]*\\\n\s*--dhcp-range=10\.77\.0\./, 'the test AP runs a real DHCP server');
  t.notMatch(boot, /ip addr add [0-9./]+ dev wlan0/, 'wlan0 gets no static address: duocell leases it by DHCP');
});

const out = process.env.DUOCELL_IMAGE_OUT ?? path.join(root, 'image/out');
const want = process.env.DUOCELL_TEST_IMAGE === '1';
const built = fs.existsSync(path.join(out, 'rootfs.ext4'));
t.test(
  'QEMU boot test (image/boot-test.sh)',
  { skip: !want ? 'set DUOCELL_TEST_IMAGE=1 (npm run test:image runs it directly)' : !built ? 'image/out not built (npm run image)' : false, timeout: 1_800_000 },
  async (t) => {
    const r = spawnSync('bash', [scripts[1]!], { encoding: 'utf8', timeout: 1_700_000 });
    for (const line of r.stdout.split('\n')) if (/^(not )?ok /.test(line)) t.comment(line);
    t.equal(r.status, 0, 'every boot check passed');
    t.match(r.stdout, /boot-test: \d+ passed, 0 failed/);
  },
);
