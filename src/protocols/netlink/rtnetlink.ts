import { DuocellError } from '../../core/errors.js';
import { attr, Attrs, bufferToIp, encodeAttrs, ipToBuffer, macToString, type AttrOut } from './attrs.js';

/**
 * rtnetlink (NETLINK_ROUTE), pure: links, addresses, routes and policy rules.
 *
 *   link    struct ifinfomsg  (16 bytes) family u8, pad, type u16, index s32, flags u32, change u32
 *   address struct ifaddrmsg  ( 8 bytes) family, prefixlen, flags, scope u8, index u32
 *   route   struct rtmsg      (12 bytes) family, dst_len, src_len, tos, table, protocol, scope, type u8, flags u32
 *   rule    struct fib_rule_hdr (12 bytes) family, dst_len, src_len, tos, table, res1, res2, action u8, flags u32
 *
 * each followed by attributes (IFLA_*, IFA_*, RTA_*, FRA_*).
 */

export const RTM = {
  NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19,
  NEWADDR: 20, DELADDR: 21, GETADDR: 22,
  NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26,
  NEWRULE: 32, DELRULE: 33, GETRULE: 34,
} as const;

/** Multicast groups (enum rtnetlink_groups). */
export const RTNLGRP = {
  LINK: 1, IPV4_IFADDR: 5, IPV4_ROUTE: 7, IPV4_RULE: 8, IPV6_IFADDR: 9, IPV6_ROUTE: 11, IPV6_RULE: 19,
} as const;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const IFF_UP = 0x1;
export const IFF_LOOPBACK = 0x8;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_OPERSTATE = 16;
const IFLA_STATS64 = 23;
const IFLA_CARRIER = 33;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const IFA_FLAGS = 8;

const RTA_DST = 1;
const RTA_SRC = 2;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
const RTA_TABLE = 15;

const FRA_DST = 1;
const FRA_SRC = 2;
const FRA_IIFNAME = 3;
const FRA_PRIORITY = 6;
const FRA_FWMARK = 10;
const FRA_TABLE = 15;
const FRA_FWMASK = 16;
const FRA_OIFNAME = 17;
const FRA_PROTOCOL = 21;

export const RT_TABLE_COMPAT = 252;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_UNREACHABLE = 7;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
/** In a delete request: match any scope. */
export const RT_SCOPE_NOWHERE = 255;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
/** The protocol number duocell stamps on the routes and rules it installs (unused by others). */
export const RTPROT_DUOCELL = 220;
export const FR_ACT_TO_TBL = 1;

const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export type OperState = (typeof OPERSTATES)[number];

function malformed(message: string): DuocellError {
  return new DuocellError('DC_NETLINK_MALFORMED', message, { origin: 'local' });
}

function need(p: Buffer, n: number, what: string): void {
  if (p.length < n) throw malformed(`${what}: ${p.length} bytes, header needs ${n}`);
}

const famOf = (f: number): 4 | 6 | undefined => (f === AF_INET ? 4 : f === AF_INET6 ? 6 : undefined);
const afOf = (f: 4 | 6): number => (f === 4 ? AF_INET : AF_INET6);

// ---------------------------------------------------------------------------------------------
// Links

export interface Link {
  readonly index: number;
  readonly name: string;
  readonly flags: number;
  /** IFF_UP: administratively up. */
  readonly adminUp: boolean;
  /** IFF_LOWER_UP: carrier. */
  readonly lowerUp: boolean;
  readonly operState: OperState;
  /** Usable: admin up and operstate up (or unknown with carrier, as for tun/ppp/veth-less devices). */
  readonly up: boolean;
  readonly mtu?: number;
  readonly mac?: string;
  readonly carrier?: boolean;
  /** Interface counters (IFLA_STATS64), when the kernel sent them. */
  readonly stats?: { readonly rxBytes: number; readonly txBytes: number; readonly rxPackets: number; readonly txPackets: number };
}

export function decodeLink(p: Buffer): Link {
  need(p, 16, 'ifinfomsg');
  const index = p.readInt32LE(4);
  const flags = p.readUInt32LE(8);
  const a = Attrs.decode(p.subarray(16));
  const op = a.u8(IFLA_OPERSTATE);
  const operState: OperState = op !== undefined && op < OPERSTATES.length ? OPERSTATES[op]! : 'unknown';
  const adminUp = (flags & IFF_UP) !== 0;
  const lowerUp = (flags & IFF_LOWER_UP) !== 0;
  const mac = a.binary(IFLA_ADDRESS);
  const mtu = a.u32(IFLA_MTU);
  const carrier = a.u8(IFLA_CARRIER);
  const st = a.binary(IFLA_STATS64);
  const stats = st !== undefined && st.length >= 32
    ? { rxPackets: Number(st.readBigUInt64LE(0)), txPackets: Number(st.readBigUInt64LE(8)), rxBytes: Number(st.readBigUInt64LE(16)), txBytes: Number(st.readBigUInt64LE(24)) }
    : undefined;
  return {
    index,
    name: a.string(IFLA_IFNAME) ?? `if${index}`,
    flags,
    adminUp,
    lowerUp,
    operState,
    up: adminUp && (operState === 'up' || (operState === 'unknown' && lowerUp)),
    ...(mtu === undefined ? {} : { mtu }),
    ...(mac === undefined || mac.length === 0 ? {} : { mac: macToString(mac) }),
    ...(carrier === undefined ? {} : { carrier: carrier !== 0 }),
    ...(stats === undefined ? {} : { stats }),
  };
}

/** ifinfomsg for a dump or a state change (flags/change: e.g. IFF_UP to bring a link up). */
export function encodeLinkMsg(o: { index?: number; flags?: number; change?: number; name?: string; mtu?: number } = {}): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt8(AF_UNSPEC, 0);
  h.writeInt32LE(o.index ?? 0, 4);
  h.writeUInt32LE(o.flags ?? 0, 8);
  h.writeUInt32LE(o.change ?? 0, 12);
  const attrs: AttrOut[] = o.name === undefined ? [] : [attr.string(IFLA_IFNAME, o.name)];
  if (o.mtu !== undefined) attrs.push(attr.u32(IFLA_MTU, o.mtu));
  return Buffer.concat([h, encodeAttrs(attrs)]);
}

// ---------------------------------------------------------------------------------------------
// Addresses

export interface Address {
  readonly family: 4 | 6;
  readonly index: number;
  readonly address: string;
  readonly prefixLen: number;
  readonly scope: number;
  readonly flags: number;
  readonly label?: string;
  /** Point-to-point peer (IFA_ADDRESS differing from IFA_LOCAL). */
  readonly peer?: string;
}

export function decodeAddress(p: Buffer): Address {
  need(p, 8, 'ifaddrmsg');
  const family = famOf(p.readUInt8(0));
  if (family === undefined) throw malformed(`address family ${p.readUInt8(0)} is neither IPv4 nor IPv6`);
  const a = Attrs.decode(p.subarray(8));
  const len = family === 4 ? 4 : 16;
  const local = a.binary(IFA_LOCAL, len);
  const addr = a.binary(IFA_ADDRESS, len);
  const main = local ?? addr;
  if (main === undefined) throw malformed('address message without IFA_LOCAL or IFA_ADDRESS');
  const label = a.string(IFA_LABEL);
  const flags32 = a.u32(IFA_FLAGS);
  const peer = local !== undefined && addr !== undefined && !local.equals(addr) ? bufferToIp(addr) : undefined;
  return {
    family,
    index: p.readUInt32LE(4),
    address: bufferToIp(main),
    prefixLen: p.readUInt8(1),
    scope: p.readUInt8(3),
    flags: flags32 ?? p.readUInt8(2),
    ...(label === undefined ? {} : { label }),
    ...(peer === undefined ? {} : { peer }),
  };
}

/** ifa_flags: skip duplicate address detection (a point-to-point modem link has no neighbours). */
export const IFA_F_NODAD = 0x02;

export function encodeAddressMsg(o: { family?: 4 | 6; index?: number; address?: string; prefixLen?: number; scope?: number; flags?: number }): Buffer {
  const h = Buffer.alloc(8);
  let attrs: AttrOut[] = [];
  let fam = o.family;
  if (o.address !== undefined) {
    const { family, bytes } = ipToBuffer(o.address);
    fam = family;
    attrs = [attr.binary(IFA_LOCAL, bytes), attr.binary(IFA_ADDRESS, bytes)];
    if (family === 6) attrs = [attr.binary(IFA_ADDRESS, bytes)];
  }
  h.writeUInt8(fam === undefined ? AF_UNSPEC : afOf(fam), 0);
  h.writeUInt8(o.prefixLen ?? (fam === 6 ? 128 : 32), 1);
  h.writeUInt8(o.flags ?? 0, 2);
  h.writeUInt8(o.scope ?? RT_SCOPE_UNIVERSE, 3);
  h.writeUInt32LE(o.index ?? 0, 4);
  return Buffer.concat([h, encodeAttrs(attrs)]);
}

// ---------------------------------------------------------------------------------------------
// Routes

export interface Route {
  readonly family: 4 | 6;
  /** Destination prefix "a.b.c.d/len"; "0.0.0.0/0" or "::/0" for default. */
  readonly dst: string;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: number;
  readonly oif?: number;
  readonly gateway?: string;
  readonly prefsrc?: string;
  readonly src?: string;
  readonly priority?: number;
}

export function decodeRoute(p: Buffer): Route {
  need(p, 12, 'rtmsg');
  const family = famOf(p.readUInt8(0));
  if (family === undefined) throw malformed(`route family ${p.readUInt8(0)} is neither IPv4 nor IPv6`);
  const a = Attrs.decode(p.subarray(12));
  const len = family === 4 ? 4 : 16;
  const dstLen = p.readUInt8(1);
  const dstB = a.binary(RTA_DST, len);
  const dst = `${dstB === undefined ? (family === 4 ? '0.0.0.0' : '::') : bufferToIp(dstB)}/${dstLen}`;
  const gw = a.binary(RTA_GATEWAY, len);
  const pref = a.binary(RTA_PREFSRC, len);
  const srcB = a.binary(RTA_SRC, len);
  const oif = a.u32(RTA_OIF);
  const prio = a.u32(RTA_PRIORITY);
  return {
    family,
    dst,
    table: a.u32(RTA_TABLE) ?? p.readUInt8(4),
    protocol: p.readUInt8(5),
    scope: p.readUInt8(6),
    type: p.readUInt8(7),
    ...(oif === undefined ? {} : { oif }),
    ...(gw === undefined ? {} : { gateway: bufferToIp(gw) }),
    ...(pref === undefined ? {} : { prefsrc: bufferToIp(pref) }),
    ...(srcB === undefined ? {} : { src: `${bufferToIp(srcB)}/${p.readUInt8(2)}` }),
    ...(prio === undefined ? {} : { priority: prio }),
  };
}

export interface RouteSpec {
  /** "0.0.0.0/0", "10.1.0.0/16", "::/0", or "default4"/"default6" spelled as the prefix. */
  readonly dst: string;
  readonly table: number;
  readonly oif?: number;
  readonly gateway?: string;
  readonly prefsrc?: string;
  readonly priority?: number;
  readonly protocol?: number;
  readonly scope?: number;
  readonly type?: number;
}

export function splitPrefix(prefix: string): { family: 4 | 6; bytes: Buffer; len: number } {
  const slash = prefix.indexOf('/');
  const ip = slash === -1 ? prefix : prefix.slice(0, slash);
  const { family, bytes } = ipToBuffer(ip);
  const max = family === 4 ? 32 : 128;
  const len = slash === -1 ? max : Number(prefix.slice(slash + 1));
  if (!Number.isInteger(len) || len < 0 || len > max) {
    throw new DuocellError('DC_NETLINK_INVALID_ARG', `bad prefix length in ${JSON.stringify(prefix)}`, { origin: 'local' });
  }
  return { family, bytes, len };
}

export function encodeRouteMsg(r: RouteSpec): Buffer {
  const { family, bytes, len } = splitPrefix(r.dst);
  const h = Buffer.alloc(12);
  h.writeUInt8(afOf(family), 0);
  h.writeUInt8(len, 1);
  h.writeUInt8(r.table < 256 ? r.table : RT_TABLE_COMPAT, 4);
  h.writeUInt8(r.protocol ?? RTPROT_DUOCELL, 5);
  h.writeUInt8(r.scope ?? (r.gateway === undefined && r.type !== RTN_UNREACHABLE ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE), 6);
  h.writeUInt8(r.type ?? RTN_UNICAST, 7);
  const attrs: AttrOut[] = [attr.u32(RTA_TABLE, r.table)];
  if (len > 0) attrs.push(attr.binary(RTA_DST, bytes));
  if (r.oif !== undefined) attrs.push(attr.u32(RTA_OIF, r.oif));
  if (r.gateway !== undefined) attrs.push(attr.binary(RTA_GATEWAY, ipToBuffer(r.gateway).bytes));
  if (r.prefsrc !== undefined) attrs.push(attr.binary(RTA_PREFSRC, ipToBuffer(r.prefsrc).bytes));
  if (r.priority !== undefined) attrs.push(attr.u32(RTA_PRIORITY, r.priority));
  return Buffer.concat([h, encodeAttrs(attrs)]);
}

/** A dump request header for routes or rules of one family (0 = both). */
export function encodeFamilyDump(family: 4 | 6 | undefined, headerLen: 12 | 16 | 8): Buffer {
  const h = Buffer.alloc(headerLen);
  h.writeUInt8(family === undefined ? AF_UNSPEC : afOf(family), 0);
  return h;
}

// ---------------------------------------------------------------------------------------------
// Policy rules

export interface Rule {
  readonly family: 4 | 6;
  readonly priority?: number;
  readonly table: number;
  readonly action: number;
  /** Source prefix "a.b.c.d/len" (absent: from all). */
  readonly src?: string;
  readonly dst?: string;
  readonly fwmark?: number;
  readonly fwmask?: number;
  readonly iifname?: string;
  readonly oifname?: string;
  readonly protocol?: number;
}

export function decodeRule(p: Buffer): Rule {
  need(p, 12, 'fib_rule_hdr');
  const family = famOf(p.readUInt8(0));
  if (family === undefined) throw malformed(`rule family ${p.readUInt8(0)} is neither IPv4 nor IPv6`);
  const a = Attrs.decode(p.subarray(12));
  const len = family === 4 ? 4 : 16;
  const src = a.binary(FRA_SRC, len);
  const dst = a.binary(FRA_DST, len);
  const prio = a.u32(FRA_PRIORITY);
  const mark = a.u32(FRA_FWMARK);
  const mask = a.u32(FRA_FWMASK);
  const iif = a.string(FRA_IIFNAME);
  const oif = a.string(FRA_OIFNAME);
  const proto = a.u8(FRA_PROTOCOL);
  return {
    family,
    table: a.u32(FRA_TABLE) ?? p.readUInt8(4),
    action: p.readUInt8(7),
    ...(prio === undefined ? {} : { priority: prio }),
    ...(src === undefined ? {} : { src: `${bufferToIp(src)}/${p.readUInt8(2)}` }),
    ...(dst === undefined ? {} : { dst: `${bufferToIp(dst)}/${p.readUInt8(1)}` }),
    ...(mark === undefined ? {} : { fwmark: mark }),
    ...(mask === undefined ? {} : { fwmask: mask }),
    ...(iif === undefined ? {} : { iifname: iif }),
    ...(oif === undefined ? {} : { oifname: oif }),
    ...(proto === undefined ? {} : { protocol: proto }),
  };
}

export interface RuleSpec {
  readonly family?: 4 | 6;
  readonly table: number;
  readonly priority?: number;
  readonly src?: string;
  readonly dst?: string;
  readonly fwmark?: number;
  readonly fwmask?: number;
  readonly iifname?: string;
  readonly protocol?: number;
}

export function encodeRuleMsg(r: RuleSpec): Buffer {
  const h = Buffer.alloc(12);
  const attrs: AttrOut[] = [attr.u32(FRA_TABLE, r.table)];
  let family = r.family;
  if (r.src !== undefined) {
    const s = splitPrefix(r.src);
    family = s.family;
    h.writeUInt8(s.len, 2);
    attrs.push(attr.binary(FRA_SRC, s.bytes));
  }
  if (r.dst !== undefined) {
    const d = splitPrefix(r.dst);
    if (family !== undefined && d.family !== family) throw new DuocellError('DC_NETLINK_INVALID_ARG', 'rule src and dst families differ', { origin: 'local' });
    family = d.family;
    h.writeUInt8(d.len, 1);
    attrs.push(attr.binary(FRA_DST, d.bytes));
  }
  if (family === undefined) throw new DuocellError('DC_NETLINK_INVALID_ARG', 'a rule needs a family, a source or a destination', { origin: 'local' });
  h.writeUInt8(afOf(family), 0);
  h.writeUInt8(r.table < 256 ? r.table : 0, 4);
  h.writeUInt8(FR_ACT_TO_TBL, 7);
  if (r.priority !== undefined) attrs.push(attr.u32(FRA_PRIORITY, r.priority));
  if (r.fwmark !== undefined) attrs.push(attr.u32(FRA_FWMARK, r.fwmark));
  if (r.fwmask !== undefined) attrs.push(attr.u32(FRA_FWMASK, r.fwmask));
  if (r.iifname !== undefined) attrs.push(attr.string(FRA_IIFNAME, r.iifname));
  attrs.push(attr.u8(FRA_PROTOCOL, r.protocol ?? RTPROT_DUOCELL));
  return Buffer.concat([h, encodeAttrs(attrs)]);
}

/** Decode any rtnetlink message by type; undefined for types we do not model. */
export type RtnlObject =
  | { kind: 'link'; op: 'new' | 'del'; link: Link }
  | { kind: 'address'; op: 'new' | 'del'; address: Address }
  | { kind: 'route'; op: 'new' | 'del'; route: Route }
  | { kind: 'rule'; op: 'new' | 'del'; rule: Rule };

export function decodeRtnl(type: number, payload: Buffer): RtnlObject | undefined {
  switch (type) {
    case RTM.NEWLINK: case RTM.DELLINK:
      return { kind: 'link', op: type === RTM.NEWLINK ? 'new' : 'del', link: decodeLink(payload) };
    case RTM.NEWADDR: case RTM.DELADDR:
      return { kind: 'address', op: type === RTM.NEWADDR ? 'new' : 'del', address: decodeAddress(payload) };
    case RTM.NEWROUTE: case RTM.DELROUTE:
      return { kind: 'route', op: type === RTM.NEWROUTE ? 'new' : 'del', route: decodeRoute(payload) };
    case RTM.NEWRULE: case RTM.DELRULE:
      return { kind: 'rule', op: type === RTM.NEWRULE ? 'new' : 'del', rule: decodeRule(payload) };
    default:
      return undefined;
  }
}
