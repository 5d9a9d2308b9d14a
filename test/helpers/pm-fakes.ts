import { EventEmitter } from 'node:events';
import type { PmBackend } from '../../src/services/pm/index.js';
import { parseEvent, type MptcpEvent } from '../../src/protocols/mptcp-pm/index.js';
import { attr, encodeGenl, ipToBuffer } from '../../src/protocols/netlink/index.js';

// Fakes for PmService's unit tests: a kernel path manager that accepts everything, and mptcp_pm
// events encoded as the kernel sends them and parsed by the real codec.

export class FakePm extends EventEmitter implements PmBackend {
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

/**
 * One mptcp_pm event as the kernel sends it (genl header and attributes), parsed by the real
 * codec: an AF_INET6 socket with IPv4-mapped ends, as a '::' listener's subflows are (the codec
 * writes their addresses in hex).
 */
export function pmEvent(type: number, o: { token: number; saddr: string; daddr: string; sport: number; dport: number; serverSide?: boolean }): MptcpEvent {
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
