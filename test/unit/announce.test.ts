// ADD_ADDR announcement (explicit steering) (services/announce/index.ts) against a fake kernel: what is set at start,
// what is undone at stop, adoption of a leftover endpoint, and the stable codes of each refusal.
import t from 'tap';
import { DuocellError } from '../../src/core/errors.js';
import { Announcer, JOIN_SYSCTL, PM_SYSCTL, type AnnounceOps } from '../../src/services/announce/index.js';
import { validateBoard } from '../../src/core/board.js';

type Ep = { id: number; address: string; port?: number; flags: string[] };

function fakeKernel(o: { sysctl?: string; endpoints?: Ep[]; pm?: 'kernel' | 'userspace'; pmFixed?: boolean; failAdd?: number; sysctlRo?: boolean } = {}) {
  const k = { sysctl: o.sysctl ?? '1', pm: o.pm ?? 'kernel', endpoints: [...(o.endpoints ?? [])], limits: { addAddrAccepted: 0, subflows: 2 }, log: [] as string[] };
  let next = 10;
  const ops: AnnounceOps = {
    readSysctl: (n) => {
      if (n !== JOIN_SYSCTL) throw new Error(`unexpected ${n}`);
      return `${k.sysctl}\n`;
    },
    writeSysctl: (n, v) => {
      if (o.sysctlRo === true) throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS', errno: -30 });
      if (n === PM_SYSCTL) {
        if (o.pmFixed === true) throw Object.assign(new Error('EPERM'), { code: 'EPERM' });
        k.log.push(`pm_type=${v}`);
        k.pm = v === '1' ? 'userspace' : 'kernel';
        return;
      }
      k.log.push(`sysctl=${v}`);
      k.sysctl = v;
    },
    pathManager: () => k.pm,
    endpoints: async () => k.endpoints.map((e) => ({ ...e })),
    addEndpoint: async (e) => {
      if (o.failAdd !== undefined) throw new DuocellError('DC_NETLINK_ERRNO', 'mptcp_pm ADD_ADDR: EINVAL', { errno: o.failAdd, origin: 'kernel' });
      k.log.push(`add ${e.address}:${e.port ?? 0} ${e.flags.join(',')}${e.ifIndex === undefined ? '' : ` if${e.ifIndex}`}`);
      k.endpoints.push({ id: e.id ?? next++, address: e.address, ...(e.port === undefined ? {} : { port: e.port }), flags: [...e.flags] });
    },
    deleteEndpoint: async (id, address) => {
      k.log.push(`del ${id} ${address}`);
      k.endpoints = k.endpoints.filter((e) => e.id !== id);
    },
    limits: async () => ({ ...k.limits }),
    setLimits: async (l) => {
      k.log.push(`limits ${l.addAddrAccepted}/${l.subflows}`);
      k.limits = { ...l };
    },
  };
  return { k, ops };
}

t.test('start sets the C flag and adds signal endpoints; stop undoes both', async (t) => {
  const { k, ops } = fakeKernel({ endpoints: [{ id: 1, address: '192.0.2.99', flags: ['subflow'] }] });
  const s = new Announcer({ refuseInitialJoins: true, announce: [{ address: '10.51.0.1', port: 5125, ifIndex: 3 }, { address: 'fd00:51::1', id: 7 }], subflows: 4 }, ops);
  await s.start();
  t.equal(k.sysctl, '0', 'allow_join_initial_addr_port=0');
  t.same(k.log, ['sysctl=0', 'limits 0/4', 'add 10.51.0.1:5125 signal if3', 'add fd00:51::1:0 signal']);
  t.same(s.endpoints.map((e) => e.id), [10, 7]);
  await s.stop();
  t.equal(k.sysctl, '1', 'sysctl restored');
  t.same(k.limits, { addAddrAccepted: 0, subflows: 2 }, 'limits restored');
  t.same(k.endpoints.map((e) => e.address), ['192.0.2.99'], "only our endpoints removed; others' kept");
  await s.stop(); // idempotent
});

t.test('a leftover signal endpoint is adopted; a conflicting one refuses to start', async (t) => {
  const left = fakeKernel({ sysctl: '0', endpoints: [{ id: 5, address: '10.51.0.1', port: 5125, flags: ['signal'] }, { id: 6, address: 'fd00:51::1', port: 5125, flags: ['signal'] }] });
  const s = new Announcer({ refuseInitialJoins: true, announce: [{ address: '10.51.0.1', port: 5125 }, { address: 'FD00:51:0:0::1', port: 5125 }] }, left.ops);
  await s.start();
  t.same(left.k.log, [], 'nothing to write: already 0, endpoints already there (an address spelled differently is the same)');
  await s.stop();
  t.same(left.k.log, ['del 6 fd00:51::1', 'del 5 10.51.0.1'], 'adopted endpoints removed at stop; sysctl stays 0 as found');

  const clash = fakeKernel({ endpoints: [{ id: 2, address: '10.51.0.1', flags: ['subflow'] }] });
  const c = new Announcer({ refuseInitialJoins: true, announce: [{ address: '10.51.0.1', port: 5125 }] }, clash.ops);
  await t.rejects(c.start(), { code: 'DC_STEERING_ENDPOINT' });
  t.equal(clash.k.sysctl, '1', 'a failed start undoes the sysctl');
});

t.test('refusals carry stable codes', async (t) => {
  const ro = fakeKernel({ sysctlRo: true });
  await t.rejects(new Announcer({ refuseInitialJoins: true, announce: [] }, ro.ops).start(), { code: 'DC_STEERING_SYSCTL' });
  const us = fakeKernel({ pm: 'userspace', pmFixed: true });
  await t.rejects(new Announcer({ refuseInitialJoins: true, announce: [{ address: '10.51.0.1' }] }, us.ops).start(), { code: 'DC_STEERING_ENDPOINT', message: /in-kernel path manager/ });
  t.equal(us.k.sysctl, '1');
  const add = fakeKernel({ failAdd: 22 });
  const s = new Announcer({ refuseInitialJoins: true, announce: [{ address: '10.51.0.1' }] }, add.ops);
  await t.rejects(s.start(), { code: 'DC_STEERING_ENDPOINT' });
  t.equal(add.k.sysctl, '1', 'undone after the endpoint failed');
  const off = fakeKernel();
  await new Announcer({ refuseInitialJoins: false, announce: [{ address: '10.51.0.1' }] }, off.ops).start();
  t.equal(off.k.sysctl, '1', 'refuseInitialJoins false leaves the sysctl alone');
});

t.test('board: explicitSteering is validated', async (t) => {
  const base = { name: 'c', preset: 'concentrator', uplinks: [], listeners: [{ kind: 'convert', host: '::', port: 5124 }] };
  const ok = validateBoard({ ...base, explicitSteering: { announce: [{ address: '10.51.0.1', port: 5125, interface: 'eth0' }] } });
  t.same(ok.explicitSteering?.announce, [{ address: '10.51.0.1', port: 5125, interface: 'eth0' }]);
  for (const [bad, why] of [
    [{ announce: [] }, /at least 1/],
    [{ announce: [{ address: 'conc.example' }] }, /does not match|numeric/],
    [{ announce: [{ address: '10.51.0.1', port: 5124 }] }, /listener's port/],
    [{ announce: [{ address: '10.51.0.1' }, { address: '10.51.0.1', port: 9 }] }, /announced twice/],
    [{ announce: [{ address: '10.51.0.1' }], extra: 1 }, /unknown field/],
    [{ announce: [{ address: '10.51.0.1' }], subflows: 0 }, />= 1/],
  ] as const) {
    t.throws(() => validateBoard({ ...base, explicitSteering: bad }), { code: 'DC_CONFIG_INVALID', message: why }, JSON.stringify(bad));
  }
  t.throws(() => validateBoard({ ...base, preset: 'cell', uplinks: [{ name: 'w', access: 'wlan', interface: 'wlan0' }], explicitSteering: { announce: [{ address: '10.51.0.1' }] } }), { message: /only a concentrator/ });
});

t.test('a namespace on the userspace path manager (the box\'s sysctl drop-in) is switched to the in-kernel one while announcing, and back', async (t) => {
  const us = fakeKernel({ pm: 'userspace' });
  const s = new Announcer({ refuseInitialJoins: true, announce: [{ address: '10.51.0.1', port: 5125 }] }, us.ops);
  await s.start();
  t.equal(us.k.pm, 'kernel', 'in-kernel PM while it runs');
  t.equal(us.k.endpoints.length, 1, 'the signal endpoint is in place');
  await s.stop();
  t.equal(us.k.pm, 'userspace', 'restored on exit');
  t.same(us.k.log.filter((l) => l.startsWith('pm_type')), ['pm_type=0', 'pm_type=1']);
});
