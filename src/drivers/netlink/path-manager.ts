import { readFileSync } from 'node:fs';
import type { MptcpPm } from './mptcp-pm.js';
import type { SockDiag } from './sock-diag.js';

/**
 * Which MPTCP path manager the kernel runs in this network namespace, found once, and one table
 * of operations for it (as mptcpd's netlink_pm does): the rest of the code calls the table and
 * never asks which kernel it has.
 *
 *   net.mptcp.path_manager  (6.x)        "kernel" | "userspace"
 *   net.mptcp.pm_type       (5.19 - 6.x)  0 (kernel) | 1 (userspace)
 *   neither                               kernel
 *
 * kernel     — limits and endpoints; per-connection commands answer EINVAL, so a refused join is
 *              aborted with SOCK_DESTROY (sock_diag) and there is no subflow create or flags;
 * userspace  — the kernel makes no subflow by itself: subflows are created, destroyed and
 *              flagged per connection with mptcp_pm commands.
 */

export type PmMode = 'kernel' | 'userspace';

export function pathManagerMode(read: (f: string) => string = (f) => readFileSync(f, 'utf8')): PmMode {
  try {
    return read('/proc/sys/net/mptcp/path_manager').trim() === 'userspace' ? 'userspace' : 'kernel';
  } catch {
    try {
      return read('/proc/sys/net/mptcp/pm_type').trim() === '1' ? 'userspace' : 'kernel';
    } catch {
      return 'kernel';
    }
  }
}

type Ends = [local: { address: string; port: number }, remote: { address: string; port: number }];

/** The path-manager operations of this kernel; the optional ones exist under the userspace PM only. */
export interface PathManagerOps {
  readonly mode: PmMode;
  limits: MptcpPm['limits'];
  setLimits: MptcpPm['setLimits'];
  endpoints: MptcpPm['endpoints'];
  addEndpoint: MptcpPm['addEndpoint'];
  deleteEndpoint: MptcpPm['deleteEndpoint'];
  setEndpointFlags: MptcpPm['setEndpointFlags'];
  /** Close one subflow of a connection: SUBFLOW_DESTROY (userspace) or SOCK_DESTROY (kernel). */
  subflowDestroy(token: number, ...ends: Ends): Promise<void>;
  subflowCreate?: MptcpPm['subflowCreate'];
  announce?: MptcpPm['announce'];
  setSubflowFlags?: MptcpPm['setSubflowFlags'];
  subscribe: MptcpPm['subscribe'];
  on: MptcpPm['on'];
  off: MptcpPm['off'];
}

/** Detect the path manager (once) and return its operations over `pm` and `diag`. */
export function pathManagerOps(pm: MptcpPm, diag: Pick<SockDiag, 'destroy'>, mode: PmMode = pathManagerMode()): PathManagerOps {
  const common = {
    mode,
    limits: () => pm.limits(),
    setLimits: (l: Parameters<MptcpPm['setLimits']>[0]) => pm.setLimits(l),
    endpoints: () => pm.endpoints(),
    addEndpoint: (e: Parameters<MptcpPm['addEndpoint']>[0]) => pm.addEndpoint(e),
    deleteEndpoint: (id: number, address?: string) => pm.deleteEndpoint(id, address),
    setEndpointFlags: (e: Parameters<MptcpPm['setEndpointFlags']>[0]) => pm.setEndpointFlags(e),
    subscribe: () => pm.subscribe(),
    on: ((ev: never, cb: never) => pm.on(ev, cb)) as MptcpPm['on'],
    off: ((ev: never, cb: never) => pm.off(ev, cb)) as MptcpPm['off'],
  };
  if (mode === 'kernel') {
    return {
      ...common,
      subflowDestroy: async (_token, local, remote) => {
        await diag.destroy({ local, remote });
      },
    };
  }
  return {
    ...common,
    subflowDestroy: (token, local, remote) => pm.subflowDestroy(token, local, remote),
    subflowCreate: (token, local, remote) => pm.subflowCreate(token, local, remote),
    announce: (token, local) => pm.announce(token, local),
    setSubflowFlags: (token, local, remote, flags) => pm.setSubflowFlags(token, local, remote, flags),
  };
}
