// wpa_supplicant: the configuration duocell writes (nothing from the profile quoted into it),
// the control interface's replies, and the driver that adds the interface through the global
// socket (a scripted fake socket stands in for wpa_supplicant here; the image boot test runs
// the real one against hostapd on mac80211_hwsim).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { derivePsk, encodeConfig, expectOk, parseInterfaces, parseStatus, parseUnsolicited, request } from '../../src/protocols/wpa-ctrl/index.js';
import { Supplicant, type CtrlTransport } from '../../src/drivers/wlan/supplicant.js';

t.test('PSK derivation: the IEEE 802.11 test vectors (J.4.2)', async (t) => {
  t.equal(derivePsk('IEEE', 'password').toString('hex'), 'f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e');
  t.equal(derivePsk('ThisIsASSID', 'ThisIsAPassword').toString('hex'), '0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af');
});

t.test('configuration: SSID in hex, PSK derived, open networks, limits', async (t) => {
  const c = encodeConfig({ ssid: 'IEEE', passphrase: 'password' });
  t.match(c, /^\tssid=49454545$/m);
  t.match(c, /^\tpsk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e$/m);
  t.match(c, /^\tkey_mgmt=WPA-PSK$/m);
  t.notMatch(c, /password/, 'the passphrase itself is not written');
  t.match(encodeConfig({ ssid: 'café' }), /^\tkey_mgmt=NONE$/m);
  t.match(encodeConfig({ ssid: 'x' }, { country: 'DE' }), /^country=DE$/m);
  // An SSID that tries to close the string and add a directive stays one hex line.
  const evil = encodeConfig({ ssid: 'a"\nctrl_interface=/tmp/x', passphrase: 'abcdefgh' });
  t.notMatch(evil, /^ctrl_interface/m);
  t.equal(evil.split('\n').filter((l) => l.startsWith('\tssid=')).length, 1);
  t.throws(() => encodeConfig({ ssid: '' }), { code: 'DC_WLAN_CONFIG_INVALID' });
  t.throws(() => encodeConfig({ ssid: 'é'.repeat(17) }), { code: 'DC_WLAN_CONFIG_INVALID', message: /34 octets/ });
  t.throws(() => encodeConfig({ ssid: 'x', passphrase: 'short' }), { code: 'DC_WLAN_CONFIG_INVALID' });
  t.throws(() => encodeConfig({ ssid: 'x', passphrase: 'new\nline ok?' }), { code: 'DC_WLAN_CONFIG_INVALID' });
  t.throws(() => encodeConfig({ ssid: 'x', passphrase: 'a'.repeat(64) }), { code: 'DC_WLAN_CONFIG_INVALID' });
  t.throws(() => encodeConfig({ ssid: 'x' }, { country: 'de\n' }), { code: 'DC_WLAN_CONFIG_INVALID' });
});

t.test('requests: tab-separated INTERFACE_ADD, IFNAME= forwarding, bad names refused', async (t) => {
  t.equal(request.interfaceAdd('wlan0', '/var/lib/duocell/wlan/w.conf'), 'INTERFACE_ADD wlan0\t/var/lib/duocell/wlan/w.conf\tnl80211');
  t.equal(request.forIface('wlan0', 'STATUS'), 'IFNAME=wlan0 STATUS');
  t.throws(() => request.interfaceAdd('wlan0\tx', '/a'), { code: 'DC_WLAN_CONFIG_INVALID' });
  t.throws(() => request.interfaceAdd('wlan0', 'relative.conf'), { code: 'DC_WLAN_CONFIG_INVALID' });
  t.throws(() => request.interfaceAdd('wlan0', '/a b'), { code: 'DC_WLAN_CONFIG_INVALID' });
  t.throws(() => request.forIface('a-very-long-interface', 'STATUS'), { code: 'DC_WLAN_CONFIG_INVALID' });
});

t.test('replies: STATUS, INTERFACES, OK/FAIL, unsolicited events', async (t) => {
  // as wpa_supplicant 2.10 answers on a station associated to hostapd on mac80211_hwsim
  const st = parseStatus('bssid=02:00:00:00:01:00\nfreq=2437\nssid=duocell-boottest\nid=0\nmode=station\npairwise_cipher=CCMP\ngroup_cipher=CCMP\nkey_mgmt=WPA2-PSK\nwpa_state=COMPLETED\naddress=02:00:00:00:00:00\nuuid=x\n');
  t.same(st, { wpaState: 'COMPLETED', ssid: 'duocell-boottest', bssid: '02:00:00:00:01:00', frequencyMhz: 2437, keyMgmt: 'WPA2-PSK', address: '02:00:00:00:00:00' });
  t.same(parseStatus('wpa_state=DISCONNECTED\naddress=02:00:00:00:00:00\n'), { wpaState: 'DISCONNECTED', address: '02:00:00:00:00:00' });
  t.throws(() => parseStatus('FAIL\n'), { code: 'DC_WLAN_CTRL_MALFORMED' });
  t.throws(() => parseStatus('address=02:00:00:00:00:00\n'), { code: 'DC_WLAN_CTRL_MALFORMED' });
  t.same(parseInterfaces('wlan0\nwlan1\n'), ['wlan0', 'wlan1']);
  t.same(parseInterfaces(''), []);
  t.doesNotThrow(() => expectOk('OK\n', 'x'));
  t.throws(() => expectOk('FAIL\n', 'INTERFACE_ADD wlan0'), { code: 'DC_WLAN_CTRL_FAILED', origin: 'device', message: /INTERFACE_ADD wlan0.*FAIL/ });
  t.same(parseUnsolicited('<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed'), { level: 3, text: 'CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed' });
  t.equal(parseUnsolicited('OK\n'), undefined);
});

/** A scripted wpa_supplicant global socket. */
class FakeCtrl implements CtrlTransport {
  sent: string[] = [];
  ifaces: string[] = [];
  answer: (req: string) => string | undefined = (req) => {
    if (req === 'INTERFACES') return this.ifaces.map((i) => `${i}\n`).join('');
    if (req.startsWith('INTERFACE_ADD ')) {
      this.ifaces.push(req.slice(14).split('\t')[0]!);
      return 'OK\n';
    }
    if (req.endsWith(' RECONFIGURE')) return 'OK\n';
    if (req.endsWith(' STATUS')) return 'wpa_state=COMPLETED\nssid=rig\n';
    return 'UNKNOWN COMMAND\n';
  };
  closed = 0;
  // one socket per client in reality; here every client shares the script (requests are sequential)
  readonly #cbs: Array<(s: string) => void> = [];
  send(text: string): void {
    this.sent.push(text);
    const r = this.answer(text);
    // an unsolicited event first: never taken as the reply
    queueMicrotask(() => this.#cbs.at(-1)?.('<3>CTRL-EVENT-SCAN-STARTED '));
    if (r !== undefined) setImmediate(() => this.#cbs.at(-1)?.(r));
  }
  onMessage(cb: (s: string) => void): void {
    this.#cbs.push(cb);
  }
  close(): void {
    this.closed++;
  }
}

t.test('supplicant: writes the configuration (0600), adds the interface once, reconfigures on change', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radios-wlan-wpa-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const conf = path.join(dir, 'wlan', 'wpa_supplicant-wlan0.conf');
  const fake = new FakeCtrl();
  const mk = (passphrase: string): Supplicant => new Supplicant({ ifname: 'wlan0', network: { ssid: 'rig', passphrase }, socketPath: '/run/x/global', confPath: conf, open: () => fake });
  const s = mk('passphrase 1');
  t.equal(await s.apply(), 'added');
  t.equal(fs.statSync(conf).mode & 0o777, 0o600);
  t.match(fs.readFileSync(conf, 'utf8'), /^\tssid=726967$/m);
  t.same(fake.sent, ['INTERFACES', `INTERFACE_ADD wlan0\t${conf}\tnl80211`]);
  t.equal(await s.apply(), 'unchanged', 'listed and the same configuration: nothing sent but INTERFACES');
  t.match(await s.status(), { wpaState: 'COMPLETED', ssid: 'rig' });
  const s2 = mk('passphrase 2');
  t.equal(await s2.apply(), 'reconfigured', 'a new passphrase: RECONFIGURE');
  t.equal(fake.sent.at(-1), 'IFNAME=wlan0 RECONFIGURE');
  // duocell restarted: the interface is listed and runs this very file: no RECONFIGURE (it would drop the association)
  const before = fake.sent.length;
  const restarted = mk('passphrase 2');
  t.equal(await restarted.apply(), 'unchanged', 'a restart with the same settings leaves the association alone');
  t.same(fake.sent.slice(before), ['INTERFACES']);
  restarted.stop();
  const s3 = mk('passphrase 2');
  fake.answer = (req) => (req === 'INTERFACES' ? '' : 'FAIL\n');
  await t.rejects(s3.apply(), { code: 'DC_WLAN_CTRL_FAILED' });
  s.stop();
  s2.stop();
  s3.stop();
});

t.test('supplicant: a reply that never comes drops the socket (no late reply answers the next request); unreachable retries', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radios-wlan-wpa-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const fakes: FakeCtrl[] = [];
  let reachable = false;
  const s = new Supplicant({
    ifname: 'wlan0', network: { ssid: 'rig' }, socketPath: '/run/x/global', confPath: path.join(dir, 'w.conf'), timeoutMs: 50, retryMs: 20,
    open: () => {
      if (!reachable) throw Object.assign(new Error('connect: ENOENT'), { code: 'DC_WLAN_CTRL_UNREACHABLE' });
      const f = new FakeCtrl();
      fakes.push(f);
      return f;
    },
  });
  await s.start(); // unreachable: logged, retried
  reachable = true;
  await new Promise((r) => setTimeout(r, 150));
  t.equal(fakes.length, 1, 'the retry reached wpa_supplicant');
  t.ok(fakes[0]!.ifaces.includes('wlan0'), 'and added the interface');
  fakes[0]!.answer = () => undefined;
  await t.rejects(s.status(), { code: 'DC_WLAN_CTRL_UNREACHABLE', message: /timed out.*STATUS|reply to IFNAME=wlan0/ });
  t.equal(fakes[0]!.closed, 1, 'the silent socket was dropped');
  t.match(await s.status(), { wpaState: 'COMPLETED' }, 'a fresh socket answers the next request');
  t.equal(fakes.length, 2);
  s.stop();
});
