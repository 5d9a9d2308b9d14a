import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataInterface, type NetifOps } from '../../src/drivers/modem/netif.js';
import { DuocellError } from '../../src/core/errors.js';
import type { WdsSettings } from '../../src/drivers/modem/manager.js';

/** The data interface over a recording fake of rtnetlink, and a fake sysfs for qmi_wwan's raw_ip. */
function fakeOps(opts: { present?: boolean; stale?: string[]; failOn?: string } = {}) {
  const calls: string[] = [];
  let up = false;
  const addrs = (opts.stale ?? []).map((a) => {
    const [address, len] = a.split('/') as [string, string];
    return { index: 7, address, prefixLen: Number(len), scope: 0, family: (address.includes(':') ? 6 : 4) as 4 | 6 };
  });
  const rec = (s: string): void => {
    calls.push(s);
    if (opts.failOn !== undefined && s.startsWith(opts.failOn)) throw new DuocellError('DC_NETLINK_ERRNO', `${s}: Operation not permitted`, { origin: 'kernel', errno: 1 });
  };
  const ops: NetifOps = {
    link: async (n) => (opts.present === false ? undefined : n === 'wwan0' ? { index: 7, up } : undefined),
    setLinkUp: async (i, u) => {
      rec(`link ${i} ${u ? 'up' : 'down'}`);
      up = u;
    },
    setMtu: async (i, m) => rec(`mtu ${i} ${m}`),
    addresses: async () => addrs,
    addAddress: async (i, a, l, o) => rec(`addr add ${a}/${l} dev ${i}${o?.nodad ? ' nodad' : ''}`),
    deleteAddress: async (i, a, l) => rec(`addr del ${a}/${l} dev ${i}`),
    addRoute: async (r) => rec(`route add ${r.dst} via ${r.gateway ?? '-'} dev ${r.oif} metric ${r.priority} table ${r.table}`),
    deleteRoute: async (r) => rec(`route del ${r.dst} via ${r.gateway ?? '-'} dev ${r.oif} metric ${r.priority} table ${r.table}`),
  };
  return { ops, calls };
}

const dual: WdsSettings = {
  apn: 'internet',
  interface: 'wwan0',
  ipv4: { address: '10.21.0.2', prefixLength: 24, gateway: '10.21.0.1', dns: [], mtu: 1428 },
  ipv6: { address: 'fd00:21::2', prefixLength: 64, gateway: 'fd00:21::1', dns: [], mtu: 1428 },
};

t.test('apply: raw IP (qmi_wwan), MTU, addresses, link up, default routes; remove undoes it, link first', async (t) => {
  const sys = fs.mkdtempSync(path.join(os.tmpdir(), 'tnetif-'));
  t.teardown(() => fs.rmSync(sys, { recursive: true, force: true }));
  fs.mkdirSync(path.join(sys, 'class/net/wwan0/qmi'), { recursive: true });
  fs.writeFileSync(path.join(sys, 'class/net/wwan0/qmi/raw_ip'), 'N\n');
  const { ops, calls } = fakeOps({ stale: ['10.9.9.9/30'] });
  const d = new DataInterface({ ifname: 'wwan0', ops, sysfsRoot: sys, defaultMetric: 50 });
  await d.apply(dual);
  t.equal(fs.readFileSync(path.join(sys, 'class/net/wwan0/qmi/raw_ip'), 'utf8'), 'Y', 'raw_ip set');
  t.same(calls, [
    'mtu 7 1428',
    'addr del 10.9.9.9/30 dev 7',
    'addr add 10.21.0.2/24 dev 7',
    'addr add fd00:21::2/64 dev 7 nodad',
    'link 7 up',
    'route add 0.0.0.0/0 via 10.21.0.1 dev 7 metric 50 table 254',
    'route add ::/0 via fd00:21::1 dev 7 metric 50 table 254',
  ]);
  calls.length = 0;
  await d.remove('registration lost');
  t.same(calls, [
    'link 7 down',
    'route del 0.0.0.0/0 via 10.21.0.1 dev 7 metric 50 table 254',
    'route del ::/0 via fd00:21::1 dev 7 metric 50 table 254',
    'addr del 10.21.0.2/24 dev 7',
    'addr del fd00:21::2/64 dev 7',
  ]);
  calls.length = 0;
  await d.remove('again');
  t.same(calls, [], 'a second remove does nothing');
});

t.test('no qmi/raw_ip file (a veth, cdc_ether): skipped cleanly', async (t) => {
  const sys = fs.mkdtempSync(path.join(os.tmpdir(), 'tnetif-'));
  t.teardown(() => fs.rmSync(sys, { recursive: true, force: true }));
  const { ops, calls } = fakeOps();
  const d = new DataInterface({ ifname: 'wwan0', ops, sysfsRoot: sys });
  await d.apply({ apn: 'x', ipv4: { address: '10.0.0.2', prefixLength: 30, dns: [] } });
  t.same(calls, ['addr add 10.0.0.2/30 dev 7', 'link 7 up'], 'no MTU given, no default metric: addresses and link only');
});

t.test('failures carry DC_MODEM_NETIF and name the step', async (t) => {
  const gone = new DataInterface({ ifname: 'wwan0', ops: fakeOps({ present: false }).ops, sysfsRoot: '/nonexistent' });
  await t.rejects(gone.apply(dual), { code: 'DC_MODEM_NETIF', message: /no such network interface/ });
  const eperm = new DataInterface({ ifname: 'wwan0', ops: fakeOps({ failOn: 'addr add fd00' }).ops, sysfsRoot: '/nonexistent' });
  await t.rejects(eperm.apply(dual), { code: 'DC_MODEM_NETIF', message: /address fd00:21::2\/64: .*Operation not permitted/ });
});
