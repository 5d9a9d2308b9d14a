import t from 'tap';
import { DuocellError } from '../../src/core/errors.js';
import { SockDiag } from '../../src/drivers/netlink/sock-diag.js';
import { pathManagerOps } from '../../src/drivers/netlink/path-manager.js';
import type { MptcpPm } from '../../src/drivers/netlink/mptcp-pm.js';
import {
  decodeInetDiagMsg, encodeInetDiagDestroy, INET_DIAG_NOCOOKIE, SOCK_DESTROY, SOCK_DIAG_BY_FAMILY, TCP_CONNECTED_STATES,
} from '../../src/protocols/netlink/index.js';
import { prng } from '../../bench/fuzz/netlink.js';
import { FakeKernel } from './netlink-fake.js';

/** struct inet_diag_msg (no attributes) for one socket, as the kernel writes it. */
function diagMsg(o: { family: 4 | 6; saddr: number[]; sport: number; daddr: number[]; dport: number; ifindex?: number; cookie?: bigint }): Buffer {
  const h = Buffer.alloc(72);
  h.writeUInt8(o.family === 4 ? 2 : 10, 0);
  h.writeUInt8(1, 1); // ESTABLISHED
  h.writeUInt16BE(o.sport, 4);
  h.writeUInt16BE(o.dport, 6);
  Buffer.from(o.saddr).copy(h, 8);
  Buffer.from(o.daddr).copy(h, 24);
  h.writeUInt32LE(o.ifindex ?? 0, 40);
  h.writeBigUInt64LE(o.cookie ?? 0n, 44);
  return h;
}

const mapped = (v4: number[]): number[] => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4];

t.test('SOCK_DESTROY request: the sockid of the dumped socket, interface and cookie included', async (t) => {
  const d = decodeInetDiagMsg(diagMsg({ family: 4, saddr: [10, 0, 2, 15], sport: 40000, daddr: [198, 51, 100, 1], dport: 443, ifindex: 7, cookie: 0x1122334455667788n }));
  t.equal(d.cookie, 0x1122334455667788n, 'the decoder keeps the cookie');
  const req = encodeInetDiagDestroy(d);
  t.equal(req.length, 56);
  t.same([req[0], req[1]], [2, 6], 'AF_INET, IPPROTO_TCP');
  t.same(req.subarray(8, 56), diagMsg({ family: 4, saddr: [10, 0, 2, 15], sport: 40000, daddr: [198, 51, 100, 1], dport: 443, ifindex: 7, cookie: 0x1122334455667788n }).subarray(4, 52), 'sockid byte for byte');
  const v6 = encodeInetDiagDestroy({ saddr: 'fd00::1', sport: 1, daddr: 'fd00::2', dport: 2 });
  t.equal(v6[0], 10, 'AF_INET6');
  t.equal(v6.readBigUInt64LE(48), INET_DIAG_NOCOOKIE, 'no cookie given: the kernel does not check it');
  t.throws(() => encodeInetDiagDestroy({ saddr: '10.0.0.1', sport: 1, daddr: 'fd00::2', dport: 2 }), { code: 'DC_NETLINK_INVALID_ARG' }, 'mixed families');
  t.throws(() => encodeInetDiagDestroy({ saddr: '10.0.0.1', sport: 70000, daddr: '10.0.0.2', dport: 2 }), { code: 'DC_NETLINK_INVALID_ARG' }, 'port out of range');
  t.throws(() => encodeInetDiagDestroy({ saddr: 'nonsense', sport: 1, daddr: '10.0.0.2', dport: 2 }), { code: 'DC_NETLINK_INVALID_ARG' }, 'not an address');
  t.equal(TCP_CONNECTED_STATES & (1 << 10), 0, 'LISTEN sockets are never candidates');
  t.equal(TCP_CONNECTED_STATES & (1 << 1), 2, 'ESTABLISHED ones are');
});

t.test('fuzz: any decoded socket encodes back to the same sockid; bad ids are refused with a code', async (t) => {
  const r = prng(0x50cd1a9);
  const rnd = (n: number): number[] => Array.from({ length: n }, () => Math.floor(r() * 256));
  let roundTrips = 0;
  for (let i = 0; i < 3000; i++) {
    const family = r() < 0.5 ? 4 : 6;
    const alen = family === 4 ? 4 : 16;
    const msg = diagMsg({ family, saddr: rnd(alen), sport: Math.floor(r() * 65536), daddr: rnd(alen), dport: Math.floor(r() * 65536), ifindex: Math.floor(r() * 2 ** 32), cookie: BigInt(Math.floor(r() * 2 ** 32)) << 32n | BigInt(Math.floor(r() * 2 ** 32)) });
    const tail = r() < 0.3 ? Buffer.from(rnd(Math.floor(r() * 40))) : Buffer.alloc(0);
    let d;
    try {
      d = decodeInetDiagMsg(Buffer.concat([msg, tail]));
    } catch (e) {
      if (!(e instanceof DuocellError)) throw e;
      continue; // garbage attributes: refused with a code
    }
    const req = encodeInetDiagDestroy(d);
    if (!req.subarray(8, 56).equals(msg.subarray(4, 52))) t.fail(`sockid changed: ${msg.toString('hex')}`);
    else roundTrips++;
  }
  t.ok(roundTrips > 2000, `${roundTrips} round trips`);
  for (let i = 0; i < 2000; i++) {
    const bad = { saddr: Buffer.from(rnd(8)).toString('latin1'), sport: Math.floor(r() * 200000) - 1000, daddr: r() < 0.5 ? '10.0.0.1' : 'fd00::1', dport: r() * 70000 };
    try {
      encodeInetDiagDestroy(bad);
    } catch (e) {
      if (!(e instanceof DuocellError) || e.code !== 'DC_NETLINK_INVALID_ARG') throw e;
    }
  }
  t.pass('every refusal carried DC_NETLINK_INVALID_ARG');
});

t.test('SockDiag.destroy: dumps, destroys only the sockets of that 4-tuple, ENOENT counts as gone', async (t) => {
  const k = new FakeKernel();
  const sockets4 = [
    diagMsg({ family: 4, saddr: [10, 1, 0, 2], sport: 5000, daddr: [10, 9, 0, 1], dport: 80, ifindex: 3, cookie: 41n }),
    diagMsg({ family: 4, saddr: [10, 1, 0, 2], sport: 5001, daddr: [10, 9, 0, 1], dport: 80, cookie: 42n }),
  ];
  const sockets6 = [diagMsg({ family: 6, saddr: mapped([10, 1, 0, 2]), sport: 5000, daddr: mapped([10, 9, 0, 1]), dport: 80, cookie: 43n })];
  const destroyed: bigint[] = [];
  let destroyErrno = 0;
  k.handler = (m) => {
    if (m.type === SOCK_DIAG_BY_FAMILY) {
      t.equal(m.payload.readUInt32LE(4), TCP_CONNECTED_STATES, 'dump asks for connected states');
      return { replies: (m.payload[0] === 2 ? sockets4 : sockets6).map((p) => [SOCK_DIAG_BY_FAMILY, p] as [number, Buffer]) };
    }
    if (m.type === SOCK_DESTROY) {
      destroyed.push(m.payload.readBigUInt64LE(48));
      return { errno: destroyErrno };
    }
    return { errno: 95 };
  };
  const diag = new SockDiag(k);
  t.teardown(() => diag.close());
  const dumps = (fam: number): number => k.sent.filter((m) => m.type === SOCK_DIAG_BY_FAMILY && m.payload[0] === fam).length;
  const n = await diag.destroy({ local: { address: '10.1.0.2', port: 5000 }, remote: { address: '::ffff:10.9.0.1', port: 80 } });
  t.equal(n, 1, 'the IPv4 socket with that tuple');
  t.same(destroyed, [41n], 'by its own cookie');
  t.equal(dumps(10), 0, 'a tuple is unique among established sockets: found in the IPv4 dump, no IPv6 dump');
  // the same tuple only as a dual-stack socket: found in the IPv6 dump, which is then asked first
  sockets4.splice(0, 1);
  destroyed.length = 0;
  t.equal(await diag.destroy({ local: { address: '10.1.0.2', port: 5000 }, remote: { address: '10.9.0.1', port: 80 } }), 1, 'the dual-stack socket (v4-mapped)');
  t.same(destroyed, [43n], 'by its own cookie');
  const [d4, d6] = [dumps(2), dumps(10)];
  t.equal(await diag.destroy({ local: { address: '10.1.0.2', port: 5000 }, remote: { address: '10.9.0.1', port: 80 } }), 1);
  t.same([dumps(2) - d4, dumps(10) - d6], [0, 1], 'the family of the last find is asked first: one dump');
  sockets4.unshift(diagMsg({ family: 4, saddr: [10, 1, 0, 2], sport: 5000, daddr: [10, 9, 0, 1], dport: 80, ifindex: 3, cookie: 41n }));
  t.equal(await diag.destroy({ local: { address: '10.1.0.2', port: 6000 }, remote: { address: '10.9.0.1', port: 80 } }), 0, 'no socket with that tuple: nothing');
  destroyErrno = 2;
  t.equal(await diag.destroy({ local: { address: '10.1.0.2', port: 5001 }, remote: { address: '10.9.0.1', port: 80 } }), 0, 'ENOENT: closed meanwhile, not an error');
  destroyErrno = 95;
  await t.rejects(diag.destroy({ local: { address: '10.1.0.2', port: 5001 }, remote: { address: '10.9.0.1', port: 80 } }), { code: 'DC_NETLINK_ERRNO', errno: 95, origin: 'kernel' }, 'a kernel without CONFIG_INET_DIAG_DESTROY: its errno');
  const [s4, s6] = [dumps(2), dumps(10)];
  await diag.destroy({ local: { address: 'fd00::1', port: 1 }, remote: { address: 'fd00::2', port: 2 } });
  t.equal(dumps(2), s4, 'an IPv6 tuple: no IPv4 dump');
  t.equal(dumps(10), s6 + 1);
});

t.test('path-manager ops: detected once; the in-kernel PM closes a join with SOCK_DESTROY, the userspace one with SUBFLOW_DESTROY', async (t) => {
  const calls: string[] = [];
  const pm = {
    subflowDestroy: async () => void calls.push('SUBFLOW_DESTROY'),
    subflowCreate: async () => void calls.push('SUBFLOW_CREATE'),
    setSubflowFlags: async () => void calls.push('SET_FLAGS'),
    limits: async () => ({ subflows: 2, addAddrAccepted: 2 }),
  } as unknown as MptcpPm;
  const diag = { destroy: async (x: { local: { port: number } }) => (calls.push(`SOCK_DESTROY ${x.local.port}`), 1) };
  const local = { address: '10.0.0.1', port: 1 };
  const remote = { address: '10.0.0.2', port: 2 };
  const k = pathManagerOps(pm, diag, 'kernel');
  t.equal(k.mode, 'kernel');
  t.equal(k.subflowCreate, undefined, 'no per-connection create under the in-kernel PM');
  t.equal(k.setSubflowFlags, undefined);
  await k.subflowDestroy(7, local, remote);
  const u = pathManagerOps(pm, diag, 'userspace');
  await u.subflowDestroy(7, local, remote);
  await u.subflowCreate!(7, { address: '10.0.0.1', id: 1 }, remote);
  t.same(calls, ['SOCK_DESTROY 1', 'SUBFLOW_DESTROY', 'SUBFLOW_CREATE']);
  t.same(await u.limits(), { subflows: 2, addAddrAccepted: 2 }, 'common operations pass through');
  const detected = pathManagerOps(pm, diag);
  t.ok(detected.mode === 'kernel' || detected.mode === 'userspace', `detected: ${detected.mode}`);
});
