import t from 'tap';
import { FakeKernel } from './netlink-fake.js';
import { EVENTS } from '../fixtures/mptcp-pm/events.js';
import { MptcpPm, type MptcpEvent } from '../../src/drivers/netlink/mptcp-pm.js';
import { AddrAttr, Cmd, PmAttr } from '../../src/protocols/mptcp-pm/index.js';
import { attr, Attrs, decodeGenl, encodeGenl, encodeMessage } from '../../src/protocols/netlink/index.js';
import { DuocellError } from '../../src/core/errors.js';

const FAMILY = 28;
function kernel(): FakeKernel {
  const k = new FakeKernel();
  k.families.set('mptcp_pm', { id: FAMILY, groups: { mptcp_pm_cmds: 8, mptcp_pm_events: 9 } });
  return k;
}

t.test('open resolves the family id and groups through nlctrl', async (t) => {
  const k = kernel();
  const pm = await MptcpPm.open({ transport: k });
  t.equal(pm.family.id, FAMILY);
  t.same(pm.family.groups, { mptcp_pm_cmds: 8, mptcp_pm_events: 9 });
  pm.close();
  t.ok(k.closed);
  const none = new FakeKernel();
  await t.rejects(MptcpPm.open({ transport: none }), { code: 'DC_NETLINK_FAMILY_MISSING' });
  t.ok(none.closed, 'socket closed after a failed open');
});

t.test('endpoint add sends a padded nested address with flags, id, ifindex', async (t) => {
  const k = kernel();
  const pm = await MptcpPm.open({ transport: k });
  k.handler = () => ({ errno: 0 });
  await pm.addEndpoint({ address: '10.1.2.1', id: 2, flags: ['subflow', 'backup'], ifIndex: 3 });
  const m = k.sent.at(-1)!;
  t.equal(m.type, FAMILY);
  t.equal(m.flags & 5, 5, 'REQUEST|ACK');
  const g = decodeGenl(m.payload);
  t.equal(g.cmd, Cmd.ADD_ADDR);
  t.equal(g.version, 1);
  t.equal(g.attrs.length % 4, 0, 'padded');
  const a = Attrs.decode(g.attrs).nested(PmAttr.ADDR)!;
  t.equal(a.u16(AddrAttr.FAMILY), 2);
  t.same([...a.binary(AddrAttr.ADDR4, 4)!], [10, 1, 2, 1]);
  t.equal(a.u8(AddrAttr.ID), 2);
  t.equal(a.u32(AddrAttr.FLAGS), 2 | 4);
  t.equal(a.s32(AddrAttr.IF_IDX), 3);
  await pm.addEndpoint({ address: 'fd00::1', port: 8080 });
  const a6 = Attrs.decode(decodeGenl(k.sent.at(-1)!.payload).attrs).nested(PmAttr.ADDR)!;
  t.equal(a6.u16(AddrAttr.FAMILY), 10);
  t.equal(a6.binary(AddrAttr.ADDR6, 16)!.toString('hex'), 'fd000000000000000000000000000001');
  t.equal(a6.u16(AddrAttr.PORT), 8080, 'endpoint port in host order');
  await t.rejects(pm.addEndpoint({ address: '10.1.2', id: 1 }), { code: 'DC_NETLINK_INVALID_ARG' });
  pm.close();
});

t.test('kernel errors carry the errno and origin kernel', async (t) => {
  const k = kernel();
  const pm = await MptcpPm.open({ transport: k });
  k.handler = () => ({ errno: 22 });
  const e = await pm.deleteEndpoint(9).catch((x: unknown) => x);
  t.ok(e instanceof DuocellError);
  t.match(e, { code: 'DC_NETLINK_ERRNO', origin: 'kernel', errno: 22, message: /DEL_ADDR id 9: kernel said EINVAL/ });
  pm.close();
});

t.test('limits get/set and endpoint dump decode the replies', async (t) => {
  const k = kernel();
  const pm = await MptcpPm.open({ transport: k });
  k.handler = (m) => {
    const g = decodeGenl(m.payload);
    if (g.cmd === Cmd.GET_LIMITS) return { replies: [[FAMILY, encodeGenl(Cmd.GET_LIMITS, 1, [attr.u32(2, 4), attr.u32(3, 2)])]] };
    if (g.cmd === Cmd.GET_ADDR) {
      const ep = (id: number, ip: number[], flags: number, ifidx: number) =>
        [FAMILY, encodeGenl(Cmd.GET_ADDR, 1, [attr.nested(1, [attr.u16(1, 2), attr.u8(2, id), attr.binary(3, Buffer.from(ip)), attr.u32(6, flags), attr.s32(7, ifidx)])])] as [number, Buffer];
      return { replies: [ep(1, [10, 0, 0, 1], 2, 3), ep(2, [10, 0, 1, 1], 1 | 4, 4), [FAMILY, Buffer.from([3, 1, 0, 0, 4, 0, 1, 0])]] };
    }
    if (g.cmd === Cmd.SET_LIMITS) {
      const a = Attrs.decode(g.attrs);
      t.equal(a.u32(PmAttr.SUBFLOWS), 3);
      t.equal(a.u32(PmAttr.RCV_ADD_ADDRS), 1);
      return { errno: 0 };
    }
    return { errno: 95 };
  };
  t.same(await pm.limits(), { addAddrAccepted: 4, subflows: 2 });
  await pm.setLimits({ subflows: 3, addAddrAccepted: 1 });
  const eps = await pm.endpoints();
  t.equal(eps.length, 2, 'the malformed third entry is skipped');
  t.match(eps[0], { id: 1, family: 4, address: '10.0.0.1', flags: ['subflow'], ifIndex: 3 });
  t.match(eps[1], { id: 2, address: '10.0.1.1', flags: ['signal', 'backup'] });
  t.equal(k.sent.at(-1)!.flags & 0x300, 0x300, 'dump flags');
  pm.close();
});

t.test('userspace PM commands encode token, local and remote addresses', async (t) => {
  const k = kernel();
  const pm = await MptcpPm.open({ transport: k });
  k.handler = () => ({ errno: 0 });
  const last = () => {
    const g = decodeGenl(k.sent.at(-1)!.payload);
    return { cmd: g.cmd, a: Attrs.decode(g.attrs) };
  };
  await pm.subflowCreate(0xdeadbeef, { address: '10.1.2.1', id: 3 }, { address: '10.1.1.2', port: 10080 });
  let r = last();
  t.equal(r.cmd, Cmd.SUBFLOW_CREATE);
  t.equal(r.a.u32(PmAttr.TOKEN), 0xdeadbeef);
  t.equal(r.a.nested(PmAttr.ADDR)!.u8(AddrAttr.ID), 3);
  t.equal(r.a.nested(PmAttr.ADDR_REMOTE)!.u16(AddrAttr.PORT), 10080);
  await pm.subflowDestroy(1, { address: '10.1.2.1', port: 40000 }, { address: '10.1.1.2', port: 10080 });
  r = last();
  t.equal(r.cmd, Cmd.SUBFLOW_DESTROY);
  t.equal(r.a.nested(PmAttr.ADDR)!.u16(AddrAttr.PORT), 40000);
  await pm.announce(1, { address: '10.1.2.1', id: 7 });
  t.equal(last().cmd, Cmd.ANNOUNCE);
  await pm.remove(1, 7);
  r = last();
  t.equal(r.cmd, Cmd.REMOVE);
  t.equal(r.a.u8(PmAttr.LOC_ID), 7);
  await pm.setSubflowFlags(1, { address: '10.1.2.1' }, { address: '10.1.1.2', port: 10080 }, ['backup']);
  r = last();
  t.equal(r.cmd, Cmd.SET_FLAGS);
  t.equal(r.a.nested(PmAttr.ADDR)!.u32(AddrAttr.FLAGS), 4);
  await pm.flushEndpoints();
  t.equal(last().cmd, Cmd.FLUSH_ADDRS);
  await pm.setEndpointFlags({ id: 2, flags: [] });
  t.equal(last().a.nested(PmAttr.ADDR)!.u32(AddrAttr.FLAGS), 0, 'clearing flags sends FLAGS 0');
  pm.close();
});

t.test('a request the kernel never answers times out; close rejects pending requests', async (t) => {
  const k = kernel();
  const pm = await MptcpPm.open({ transport: k, timeoutMs: 50 });
  k.handler = () => ({ silent: true });
  await t.rejects(pm.limits(), { code: 'DC_NETLINK_TIMEOUT', message: /GET_LIMITS/ });
  const p = pm.flushEndpoints();
  pm.close();
  await t.rejects(p, { code: 'DC_NETLINK_CLOSED' });
});

t.test('events: captured bytes are emitted typed; malformed ones are dropped, never fatal', async (t) => {
  const reqs = kernel();
  const evs = new FakeKernel();
  const pm = await MptcpPm.open({ transport: reqs, eventTransport: evs });
  pm.subscribe();
  t.ok(evs.groups.has(9), 'joined mptcp_pm_events');
  const got: MptcpEvent[] = [];
  pm.on('event', (e) => got.push(e));
  for (const e of EVENTS) evs.notify(FAMILY, Buffer.from(e.hex.replace(/\s+/g, ''), 'hex'));
  t.equal(got.length, EVENTS.length);
  t.same(got.map((e) => e.type), EVENTS.map((e) => (e.expect as { type: string }).type));
  evs.notify(FAMILY, Buffer.from([1, 1, 0, 0, 8, 0, 1, 0])); // token attr cut short
  evs.notify(FAMILY, Buffer.from([42, 1, 0, 0])); // unknown event
  evs.notify(FAMILY, Buffer.from([1])); // no genl header
  t.equal(pm.dropped, 3);
  evs.push(Buffer.from([1, 2, 3])); // not even a netlink header
  evs.push(encodeMessage({ type: FAMILY, payload: Buffer.from(EVENTS[0]!.hex.replace(/\s+/g, ''), 'hex') }), 1234); // not from the kernel
  evs.notify(99, Buffer.from([1, 1, 0, 0])); // another family
  t.equal(got.length, EVENTS.length, 'nothing else emitted');
  pm.on('event', () => {
    throw new Error('listener bug');
  });
  t.doesNotThrow(() => evs.notify(FAMILY, Buffer.from(EVENTS[0]!.hex.replace(/\s+/g, ''), 'hex')), 'a throwing listener does not escape');
  let lost = 0;
  pm.on('lost', () => lost++);
  evs.fail(new DuocellError('DC_NETLINK_SOCKET', 'ENOBUFS', { errno: 105 }));
  t.equal(lost, 1);
  pm.close();
  t.ok(evs.closed);
});
