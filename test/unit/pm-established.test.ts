// The path manager's lookup of one established subflow by its two ends (PmService.established),
// which the handover's MP_PRIO step uses. The kernel reports a subflow accepted on a dual-stack
// listener ('::') from an IPv4 peer IPv4-mapped; the netlink codec writes those addresses in hex
// (`::ffff:a47:1`) while the proxy names the same flow `10.71.0.1`. Before the lookup compared by
// value, every MP_PRIO of an M-UE's subflow missed ("no tracked MPTCP subflow", issue 17).
import { EventEmitter } from 'node:events';
import t from 'tap';
import { PmService, type PathsLike, type PmBackend } from '../../src/services/pm/index.js';
import { parseEvent, type MptcpEvent } from '../../src/protocols/mptcp-pm/index.js';
import { attr, encodeGenl, ipToBuffer } from '../../src/protocols/netlink/index.js';

class FakePm extends EventEmitter implements PmBackend {
  async limits() {
    return { subflows: 8, addAddrAccepted: 8 };
  }
  async setLimits() {}
  async endpoints() {
    return [];
  }
  async addEndpoint() {}
  async deleteEndpoint() {}
  async setEndpointFlags() {}
  subscribe() {}
}

const paths: PathsLike = { list: () => [], byAddress: () => undefined, on: () => undefined, off: () => undefined };

/**
 * One mptcp_pm event as the kernel sends it (genl header and attributes), parsed by the real
 * codec: an AF_INET6 socket with IPv4-mapped ends, as a '::' listener's subflows are.
 */
function event(type: number, o: { token: number; saddr: string; daddr: string; sport: number; dport: number; serverSide?: boolean }): MptcpEvent {
  const a = (s: string) => ipToBuffer(s).bytes;
  const attrs = [
    attr.u32(1, o.token), // MPTCP_ATTR_TOKEN
    attr.u16(2, 10), // MPTCP_ATTR_FAMILY: AF_INET6
    attr.u8(3, 0), // LOC_ID
    attr.u8(4, 0), // REM_ID
    attr.binary(6, a(o.saddr)), // SADDR6
    attr.binary(8, a(o.daddr)), // DADDR6
    attr.u16(9, o.sport, { be: true }), // SPORT (network order)
    attr.u16(10, o.dport, { be: true }), // DPORT
    attr.u8(11, 0), // MPTCP_ATTR_BACKUP (subflow events)
    ...(o.serverSide === true ? [attr.u8(18, 1)] : []), // SERVER_SIDE
  ];
  return parseEvent(encodeGenl(type, 1, attrs));
}

t.test('a dual-stack listener\'s subflow is found by its IPv4 ends, and only while established', async (t) => {
  const pm = new FakePm();
  const svc = new PmService({ pm, paths, manageEndpoints: false });
  await svc.start();
  const ends = { token: 7, saddr: '::ffff:10.71.0.1', daddr: '::ffff:10.71.1.2', sport: 9000, dport: 41000, serverSide: true };
  pm.emit('event', event(2, ends)); // established
  pm.emit('event', event(10, { ...ends, daddr: '::ffff:10.71.2.2', dport: 42000 })); // sub_established (the join)
  const initial = svc.established({ address: '10.71.0.1', port: 9000 }, { address: '10.71.1.2', port: 41000 });
  t.ok(initial !== undefined, 'the initial subflow, asked for as the proxy names it');
  t.equal(initial?.token, 7);
  t.equal(initial?.saddr, '::ffff:a47:1', 'the kernel\'s own spelling is kept (the set-flags command is sent with it)');
  t.equal(svc.established({ address: '::ffff:10.71.0.1', port: 9000 }, { address: '::ffff:a47:202', port: 42000 })?.dport, 42000, 'the join, in any spelling');
  t.equal(svc.established({ address: '10.71.0.1', port: 9000 }, { address: '10.71.1.2', port: 41001 }), undefined, 'another port: not it');
  t.equal(svc.established({ address: '10.71.0.2', port: 9000 }, { address: '10.71.1.2', port: 41000 }), undefined, 'another address: not it');
  pm.emit('event', event(11, { ...ends, daddr: '::ffff:10.71.2.2', dport: 42000 })); // sub_closed
  t.equal(svc.established({ address: '10.71.0.1', port: 9000 }, { address: '10.71.2.2', port: 42000 }), undefined, 'a closed subflow is not established');
  t.equal(svc.size, 1);
  svc.stop();
});
