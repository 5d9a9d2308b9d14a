import { DuocellError } from '../../core/errors.js';
import {
  attr, Attrs, bufferToIp, decodeGenl, ipToBuffer, type AttrOut, type GenlMessage,
} from '../netlink/index.js';

/**
 * The kernel's MPTCP path-manager generic-netlink family (`mptcp_pm`, version 1), pure:
 * command encoders, reply and event decoders. Numbers from include/uapi/linux/mptcp_pm.h
 * (generated from Documentation/netlink/specs/mptcp_pm.yaml) and mptcp.h, checked against
 * the 6.18 kernel here (family id and groups resolved through nlctrl at run time).
 *
 * Byte order, as the kernel writes them: addresses (ADDR4/SADDR4/DADDR4) and the event ports
 * (SPORT/DPORT) are big-endian without the NET_BYTEORDER flag; the endpoint PORT is host order;
 * everything else host order.
 */

export const MPTCP_PM_NAME = 'mptcp_pm';
export const MPTCP_PM_VER = 1;
export const MPTCP_PM_EV_GRP_NAME = 'mptcp_pm_events';
export const MPTCP_PM_CMD_GRP_NAME = 'mptcp_pm_cmds';

export const AF_INET = 2;
export const AF_INET6 = 10;

/** enum mptcp_pm_cmd */
export const Cmd = {
  ADD_ADDR: 1,
  DEL_ADDR: 2,
  GET_ADDR: 3,
  FLUSH_ADDRS: 4,
  SET_LIMITS: 5,
  GET_LIMITS: 6,
  SET_FLAGS: 7,
  ANNOUNCE: 8,
  REMOVE: 9,
  SUBFLOW_CREATE: 10,
  SUBFLOW_DESTROY: 11,
} as const;

/** MPTCP_PM_ATTR_* (top level of commands) */
export const PmAttr = { ADDR: 1, RCV_ADD_ADDRS: 2, SUBFLOWS: 3, TOKEN: 4, LOC_ID: 5, ADDR_REMOTE: 6 } as const;

/** MPTCP_PM_ADDR_ATTR_* (inside ADDR / ADDR_REMOTE) */
export const AddrAttr = { FAMILY: 1, ID: 2, ADDR4: 3, ADDR6: 4, PORT: 5, FLAGS: 6, IF_IDX: 7 } as const;

/** MPTCP_PM_ADDR_FLAG_* (endpoint flags, mptcp.h) */
export const EndpointFlag = {
  signal: 1 << 0,
  subflow: 1 << 1,
  backup: 1 << 2,
  fullmesh: 1 << 3,
  implicit: 1 << 4,
  laminar: 1 << 5,
} as const;
export type EndpointFlagName = keyof typeof EndpointFlag;

/** enum mptcp_event_type */
export const EventType = {
  CREATED: 1,
  ESTABLISHED: 2,
  CLOSED: 3,
  ANNOUNCED: 6,
  REMOVED: 7,
  SUB_ESTABLISHED: 10,
  SUB_CLOSED: 11,
  SUB_PRIORITY: 13,
  LISTENER_CREATED: 15,
  LISTENER_CLOSED: 16,
} as const;

/** enum mptcp_event_attr */
export const EvAttr = {
  TOKEN: 1,
  FAMILY: 2,
  LOC_ID: 3,
  REM_ID: 4,
  SADDR4: 5,
  SADDR6: 6,
  DADDR4: 7,
  DADDR6: 8,
  SPORT: 9,
  DPORT: 10,
  BACKUP: 11,
  ERROR: 12,
  FLAGS: 13,
  TIMEOUT: 14,
  IF_IDX: 15,
  RESET_REASON: 16,
  RESET_FLAGS: 17,
  SERVER_SIDE: 18,
} as const;

/** MPTCP_PM_EV_FLAG_* carried in MPTCP_ATTR_FLAGS of connection events (6.x). */
/** MPTCP_ATTR_FLAGS of created/established events (uapi MPTCP_PM_EV_FLAG_*): bit 0 the peer denies joins to its initial address (the C flag), bit 1 server side. */
export const EventFlag = { denyJoinId0: 1 << 0, serverSide: 1 << 1 } as const;

const EV_ATTR_NAMES: Record<number, string> = Object.fromEntries(Object.entries(EvAttr).map(([k, v]) => [v, `MPTCP_ATTR_${k}`]));
const ADDR_ATTR_NAMES: Record<number, string> = Object.fromEntries(Object.entries(AddrAttr).map(([k, v]) => [v, `MPTCP_PM_ADDR_ATTR_${k}`]));
const PM_ATTR_NAMES: Record<number, string> = Object.fromEntries(Object.entries(PmAttr).map(([k, v]) => [v, `MPTCP_PM_ATTR_${k}`]));

function invalid(message: string): DuocellError {
  return new DuocellError('DC_NETLINK_INVALID_ARG', message, { origin: 'local' });
}

// ---------------------------------------------------------------------------------------------
// Addresses and endpoints

export interface PmAddress {
  /** Numeric IPv4 or IPv6 address. */
  readonly address: string;
  readonly port?: number;
  /** Endpoint / address id (0-255; 0 is the initial subflow's address). */
  readonly id?: number;
  readonly flags?: readonly EndpointFlagName[] | number;
  readonly ifIndex?: number;
}

export interface Endpoint {
  readonly id: number;
  readonly family: 4 | 6;
  readonly address: string;
  readonly port?: number;
  readonly flags: EndpointFlagName[];
  readonly flagBits: number;
  readonly ifIndex?: number;
}

export function flagsToBits(flags: readonly EndpointFlagName[] | number | undefined): number {
  if (flags === undefined) return 0;
  if (typeof flags === 'number') return flags;
  let bits = 0;
  for (const f of flags) {
    const b = EndpointFlag[f];
    if (b === undefined) throw invalid(`unknown endpoint flag ${JSON.stringify(f)}`);
    bits |= b;
  }
  return bits;
}

export function bitsToFlags(bits: number): EndpointFlagName[] {
  return (Object.keys(EndpointFlag) as EndpointFlagName[]).filter((k) => (bits & EndpointFlag[k]) !== 0);
}

/** Encode an MPTCP_PM_ADDR_ATTR_* nest. `what` selects which fields go in. */
export function addrNest(type: number, a: Partial<PmAddress>, opts: { flags?: boolean } = {}): AttrOut {
  const children: AttrOut[] = [];
  if (a.address !== undefined) {
    const { family, bytes } = ipToBuffer(a.address);
    children.push(attr.u16(AddrAttr.FAMILY, family === 4 ? AF_INET : AF_INET6));
    children.push(attr.binary(family === 4 ? AddrAttr.ADDR4 : AddrAttr.ADDR6, bytes));
  }
  if (a.id !== undefined) children.push(attr.u8(AddrAttr.ID, a.id));
  if (a.port !== undefined && a.port !== 0) children.push(attr.u16(AddrAttr.PORT, a.port));
  if (opts.flags === true || a.flags !== undefined) children.push(attr.u32(AddrAttr.FLAGS, flagsToBits(a.flags)));
  if (a.ifIndex !== undefined && a.ifIndex !== 0) children.push(attr.s32(AddrAttr.IF_IDX, a.ifIndex));
  return attr.nested(type, children);
}

function decodeAddr(a: Attrs): { family: 4 | 6; address: string } {
  const fam = a.need(AddrAttr.FAMILY, a.u16);
  if (fam === AF_INET) return { family: 4, address: bufferToIp(a.need(AddrAttr.ADDR4, (t) => a.binary(t, 4))) };
  if (fam === AF_INET6) return { family: 6, address: bufferToIp(a.need(AddrAttr.ADDR6, (t) => a.binary(t, 16))) };
  throw new DuocellError('DC_NETLINK_MALFORMED', `address family ${fam} is neither AF_INET nor AF_INET6`);
}

/** Decode one endpoint (a GET_ADDR reply or dump part), genl header onward. */
export function decodeEndpoint(payload: Buffer): Endpoint {
  const g = decodeGenl(payload);
  const top = Attrs.decode(g.attrs, PM_ATTR_NAMES);
  const a = top.nested(PmAttr.ADDR, ADDR_ATTR_NAMES);
  if (a === undefined) throw new DuocellError('DC_NETLINK_MALFORMED', 'endpoint reply without MPTCP_PM_ATTR_ADDR');
  const { family, address } = decodeAddr(a);
  const flagBits = a.u32(AddrAttr.FLAGS) ?? 0;
  const port = a.u16(AddrAttr.PORT);
  const ifIndex = a.s32(AddrAttr.IF_IDX);
  return {
    id: a.need(AddrAttr.ID, a.u8),
    family,
    address,
    ...(port !== undefined && port !== 0 ? { port } : {}),
    flags: bitsToFlags(flagBits),
    flagBits,
    ...(ifIndex !== undefined && ifIndex !== 0 ? { ifIndex } : {}),
  };
}

export interface Limits {
  /** Maximum ADD_ADDRs accepted from the peer per connection. */
  readonly addAddrAccepted: number;
  /** Maximum additional subflows per connection. */
  readonly subflows: number;
}

export function decodeLimits(payload: Buffer): Limits {
  const a = Attrs.decode(decodeGenl(payload).attrs, PM_ATTR_NAMES);
  return { addAddrAccepted: a.need(PmAttr.RCV_ADD_ADDRS, a.u32), subflows: a.need(PmAttr.SUBFLOWS, a.u32) };
}

// ---------------------------------------------------------------------------------------------
// Command attribute builders (genl header added by the driver)

export const encode = {
  addEndpoint(e: PmAddress): AttrOut[] {
    return [addrNest(PmAttr.ADDR, e, { flags: true })];
  },
  /** Delete by id (id 0 needs the address too). */
  delEndpoint(e: { id: number; address?: string }): AttrOut[] {
    return [addrNest(PmAttr.ADDR, e)];
  },
  getEndpoint(id: number): AttrOut[] {
    return [addrNest(PmAttr.ADDR, { id })];
  },
  setLimits(l: Partial<Limits>): AttrOut[] {
    const out: AttrOut[] = [];
    if (l.addAddrAccepted !== undefined) out.push(attr.u32(PmAttr.RCV_ADD_ADDRS, l.addAddrAccepted));
    if (l.subflows !== undefined) out.push(attr.u32(PmAttr.SUBFLOWS, l.subflows));
    return out;
  },
  /** In-kernel PM: change an endpoint's flags (backup, fullmesh) by id or address. */
  setEndpointFlags(e: { id?: number; address?: string; flags: readonly EndpointFlagName[] | number }): AttrOut[] {
    return [addrNest(PmAttr.ADDR, e, { flags: true })];
  },
  /** Userspace PM: announce a local address (ADD_ADDR) on one connection. `id` required. */
  announce(token: number, local: PmAddress & { id: number }): AttrOut[] {
    // the kernel refuses an announce without the signal flag (EINVAL "invalid addr flags")
    const flags = flagsToBits(local.flags) | EndpointFlag.signal;
    return [attr.u32(PmAttr.TOKEN, token), addrNest(PmAttr.ADDR, { ...local, flags })];
  },
  /** Userspace PM: withdraw an announced address id (REMOVE_ADDR) on one connection. */
  remove(token: number, locId: number): AttrOut[] {
    return [attr.u32(PmAttr.TOKEN, token), attr.u8(PmAttr.LOC_ID, locId)];
  },
  /** Userspace PM: open a subflow from a local address (id required) to a remote one. */
  subflowCreate(token: number, local: PmAddress & { id: number }, remote: { address: string; port: number }): AttrOut[] {
    return [attr.u32(PmAttr.TOKEN, token), addrNest(PmAttr.ADDR, local), addrNest(PmAttr.ADDR_REMOTE, remote)];
  },
  /** Userspace PM: close the subflow with this 4-tuple. */
  subflowDestroy(token: number, local: { address: string; port: number }, remote: { address: string; port: number }): AttrOut[] {
    return [attr.u32(PmAttr.TOKEN, token), addrNest(PmAttr.ADDR, local), addrNest(PmAttr.ADDR_REMOTE, remote)];
  },
  /** Userspace PM: set the backup flag of one subflow (by its 4-tuple) on a connection. */
  setSubflowFlags(token: number, local: { address: string; port?: number }, remote: { address: string; port: number }, flags: readonly EndpointFlagName[] | number): AttrOut[] {
    return [attr.u32(PmAttr.TOKEN, token), addrNest(PmAttr.ADDR, { ...local, flags }, { flags: true }), addrNest(PmAttr.ADDR_REMOTE, remote)];
  },
};

// ---------------------------------------------------------------------------------------------
// Events

export type MptcpEvent =
  | { type: 'created' | 'established'; token: number; family: 4 | 6; saddr: string; daddr: string; sport: number; dport: number; serverSide?: boolean; flags?: number; timeout?: number }
  | { type: 'closed'; token: number }
  | { type: 'announced'; token: number; remId: number; family: 4 | 6; daddr: string; dport?: number }
  | { type: 'removed'; token: number; remId: number }
  | ({ type: 'sub_established' | 'sub_closed' | 'sub_priority' } & SubflowInfo)
  | { type: 'listener_created' | 'listener_closed'; family: 4 | 6; saddr: string; sport: number };

export interface SubflowInfo {
  token: number;
  family: 4 | 6;
  locId: number;
  remId: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  backup: boolean;
  ifIndex?: number;
  /** sk_err of the subflow (sub_closed), when the kernel saw one. */
  error?: number;
  resetReason?: number;
  resetFlags?: number;
}

export type MptcpEventName = MptcpEvent['type'];

const TYPE_NAMES: Record<number, MptcpEventName> = {
  [EventType.CREATED]: 'created',
  [EventType.ESTABLISHED]: 'established',
  [EventType.CLOSED]: 'closed',
  [EventType.ANNOUNCED]: 'announced',
  [EventType.REMOVED]: 'removed',
  [EventType.SUB_ESTABLISHED]: 'sub_established',
  [EventType.SUB_CLOSED]: 'sub_closed',
  [EventType.SUB_PRIORITY]: 'sub_priority',
  [EventType.LISTENER_CREATED]: 'listener_created',
  [EventType.LISTENER_CLOSED]: 'listener_closed',
};

export const EVENT_NAMES: readonly MptcpEventName[] = Object.values(TYPE_NAMES);

function eventInvalid(message: string, detail: Record<string, unknown> = {}): DuocellError {
  return new DuocellError('DC_MPTCP_PM_EVENT_INVALID', message, { origin: 'local', ...detail });
}

/** MPTCP_ATTR_FAMILY, or (the kernel omits it in ANNOUNCED) inferred from the address present. */
function family(a: Attrs, v4: number = EvAttr.SADDR4, v6: number = EvAttr.SADDR6): 4 | 6 {
  const f = a.u16(EvAttr.FAMILY);
  if (f === undefined) {
    if (a.has(v4)) return 4;
    if (a.has(v6)) return 6;
    throw eventInvalid(`missing MPTCP_ATTR_FAMILY and no ${EV_ATTR_NAMES[v4]} or ${EV_ATTR_NAMES[v6]}`);
  }
  if (f === AF_INET) return 4;
  if (f === AF_INET6) return 6;
  throw eventInvalid(`MPTCP_ATTR_FAMILY ${f} is neither AF_INET nor AF_INET6`);
}

function addrOf(a: Attrs, fam: 4 | 6, v4: number, v6: number): string {
  return fam === 4 ? bufferToIp(a.need(v4, (t) => a.binary(t, 4))) : bufferToIp(a.need(v6, (t) => a.binary(t, 16)));
}

const be16 = (a: Attrs, t: number): number => a.need(t, (x) => a.u16(x, true));

/**
 * Parse one mptcp_pm event (genl header onward) into a typed, validated event. Anything
 * missing or wrongly sized is DC_MPTCP_PM_EVENT_INVALID (the driver logs and drops it).
 */
export function parseEvent(payload: Buffer | GenlMessage): MptcpEvent {
  const g = Buffer.isBuffer(payload) ? decodeGenl(payload) : payload;
  const type = TYPE_NAMES[g.cmd];
  if (type === undefined) throw eventInvalid(`unknown mptcp_pm event type ${g.cmd}`, { cmd: g.cmd });
  try {
    const a = Attrs.decode(g.attrs, EV_ATTR_NAMES);
    switch (type) {
      case 'created':
      case 'established': {
        const fam = family(a);
        const flags = a.u16(EvAttr.FLAGS);
        const serverSideAttr = a.u8(EvAttr.SERVER_SIDE);
        const serverSide = serverSideAttr !== undefined ? serverSideAttr !== 0 : flags !== undefined ? (flags & EventFlag.serverSide) !== 0 : undefined;
        const timeout = a.u32(EvAttr.TIMEOUT);
        return {
          type,
          token: a.need(EvAttr.TOKEN, a.u32),
          family: fam,
          saddr: addrOf(a, fam, EvAttr.SADDR4, EvAttr.SADDR6),
          daddr: addrOf(a, fam, EvAttr.DADDR4, EvAttr.DADDR6),
          sport: be16(a, EvAttr.SPORT),
          dport: be16(a, EvAttr.DPORT),
          ...(serverSide === undefined ? {} : { serverSide }),
          ...(flags === undefined ? {} : { flags }),
          ...(timeout === undefined ? {} : { timeout }),
        };
      }
      case 'closed':
        return { type, token: a.need(EvAttr.TOKEN, a.u32) };
      case 'announced': {
        const fam = family(a, EvAttr.DADDR4, EvAttr.DADDR6);
        const dport = a.u16(EvAttr.DPORT, true);
        return {
          type,
          token: a.need(EvAttr.TOKEN, a.u32),
          remId: a.need(EvAttr.REM_ID, a.u8),
          family: fam,
          daddr: addrOf(a, fam, EvAttr.DADDR4, EvAttr.DADDR6),
          ...(dport !== undefined && dport !== 0 ? { dport } : {}),
        };
      }
      case 'removed':
        return { type, token: a.need(EvAttr.TOKEN, a.u32), remId: a.need(EvAttr.REM_ID, a.u8) };
      case 'sub_established':
      case 'sub_closed':
      case 'sub_priority': {
        const fam = family(a);
        const ifIndex = a.s32(EvAttr.IF_IDX);
        const error = a.u8(EvAttr.ERROR);
        const resetReason = a.u32(EvAttr.RESET_REASON);
        const resetFlags = a.u32(EvAttr.RESET_FLAGS);
        return {
          type,
          token: a.need(EvAttr.TOKEN, a.u32),
          family: fam,
          locId: a.need(EvAttr.LOC_ID, a.u8),
          remId: a.need(EvAttr.REM_ID, a.u8),
          saddr: addrOf(a, fam, EvAttr.SADDR4, EvAttr.SADDR6),
          daddr: addrOf(a, fam, EvAttr.DADDR4, EvAttr.DADDR6),
          sport: be16(a, EvAttr.SPORT),
          dport: be16(a, EvAttr.DPORT),
          backup: a.need(EvAttr.BACKUP, a.u8) !== 0,
          ...(ifIndex !== undefined ? { ifIndex } : {}),
          ...(error !== undefined ? { error } : {}),
          ...(resetReason !== undefined ? { resetReason } : {}),
          ...(resetFlags !== undefined ? { resetFlags } : {}),
        };
      }
      case 'listener_created':
      case 'listener_closed': {
        const fam = family(a);
        return { type, family: fam, saddr: addrOf(a, fam, EvAttr.SADDR4, EvAttr.SADDR6), sport: be16(a, EvAttr.SPORT) };
      }
    }
  } catch (e) {
    if (e instanceof DuocellError && e.code !== 'DC_MPTCP_PM_EVENT_INVALID') {
      throw eventInvalid(`${type} event: ${e.message}`, { cause: e, cmd: g.cmd });
    }
    throw e;
  }
}
