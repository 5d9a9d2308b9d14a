import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { BoardProfile } from '../core/board.js';
import { logger } from '../core/logger.js';
import { MptcpPm } from '../drivers/netlink/mptcp-pm.js';
import { SockDiag } from '../drivers/netlink/sock-diag.js';
import { destroyTcp } from '../drivers/sockdiag/index.js';
import { PmService, type PathsLike, type PmBackend, type PmServiceOptions } from '../services/pm/index.js';
import { subflowPolicy, type PolicySource } from '../services/policy/limits.js';
import { accessLabeler } from '../services/proxy/index.js';
import type { RunningPaths } from './paths.js';

/**
 * The path manager in the running appliance: the pm service over the kernel's mptcp_pm family,
 * with the store's subscriber policy as the judge of every subflow that joins a connection the
 * box accepted (subflow limit, allowed networks).
 *
 * The kernel's path manager is chosen per network namespace (net.mptcp.path_manager):
 *   kernel    — endpoints follow the uplinks (one `subflow` endpoint per uplink address);
 *               a refused join is aborted with SOCK_DESTROY (inet_diag), as the in-kernel PM
 *               answers no per-connection command;
 *   userspace — the kernel makes no subflow by itself: endpoints are left alone and refused
 *               joins are closed with MPTCP_PM_CMD_SUBFLOW_DESTROY.
 */
const log = logger('duocell:wiring:pm');

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

/** PathsLike for a box without uplinks (a concentrator): no paths, no events. */
const noPaths: PathsLike = (() => {
  const ee = new EventEmitter();
  return { list: () => [], byAddress: () => undefined, on: (ev, cb) => ee.on(ev, cb), off: (ev, cb) => ee.off(ev, cb) };
})();

export interface RunningPm {
  readonly service: PmService;
  readonly mode: PmMode;
  close(): void;
}

/**
 * Userspace PM: the subflows of the box's own connections (to a concentrator, an M-server): one
 * from each other uplink address of the connection's family, to the address the peer announced
 * if it announced one (a concentrator refusing joins to its shared address), else to the
 * connection's remote address.
 */
export const planSubflows: NonNullable<PmServiceOptions['planSubflows']> = (sess, up) => {
  if (sess.serverSide) return [];
  const v6 = sess.daddr.includes(':');
  const ann = Object.entries(sess.announced).find(([, a]) => a.includes(':') === v6);
  const remote = ann === undefined ? undefined : { address: ann[1], port: sess.announcedPorts[Number(ann[0])] ?? sess.dport };
  return up.flatMap((p) =>
    p.addresses.filter((a) => a.includes(':') === v6 && a !== sess.saddr).map((address) => ({ path: p, address, ...(remote === undefined ? {} : { remote }) })),
  );
};

export async function startPm(board: BoardProfile, policy: PolicySource, paths: RunningPaths | undefined): Promise<RunningPm | undefined> {
  let pm = paths?.pm;
  let own = false;
  if (pm === undefined) {
    try {
      pm = await MptcpPm.open();
      own = true;
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'no mptcp_pm: subflow policy (limits, allowed networks) is not enforced');
      return undefined;
    }
  }
  const mode = pathManagerMode();
  const kernelPm = pm;
  const backend: PmBackend = {
    limits: () => kernelPm.limits(),
    setLimits: (l) => kernelPm.setLimits(l),
    endpoints: () => kernelPm.endpoints(),
    addEndpoint: (e) => kernelPm.addEndpoint(e),
    deleteEndpoint: (id, address) => kernelPm.deleteEndpoint(id, address),
    setEndpointFlags: (e) => kernelPm.setEndpointFlags(e),
    ...(mode === 'userspace' ? { subflowCreate: (token, local, remote) => kernelPm.subflowCreate(token, local, remote) } : {}),
    subflowDestroy: (token, local, remote) => (mode === 'userspace' ? kernelPm.subflowDestroy(token, local, remote) : destroyTcp({ local, remote })),
    subscribe: () => kernelPm.subscribe(),
    on: (ev: 'event' | 'lost', cb: never) => kernelPm.on(ev, cb),
    off: (ev: 'event' | 'lost', cb: never) => kernelPm.off(ev, cb),
  };
  const accessOf = accessLabeler(board);
  const diag = new SockDiag();
  const service = new PmService({
    pm: backend,
    paths: paths?.service ?? noPaths,
    manageEndpoints: mode === 'kernel' && paths !== undefined,
    label: ({ daddr, serverSide }) => {
      if (!serverSide) return undefined; // the box's own connection: the uplink of its local address
      const a = accessOf(daddr);
      return { access: a === 'cellular' || a === 'wlan' ? a : 'unknown' };
    },
    admitSubflow: subflowPolicy(policy),
    ...(mode === 'userspace' ? { planSubflows } : {}),
    counters: () => diag.subflows(),
  });
  try {
    await service.start();
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'pm service did not start: subflow policy is not enforced');
    service.stop();
    diag.close();
    if (own) pm.close();
    return undefined;
  }
  log.info({ mode, endpoints: service.endpoints() }, 'path manager running');
  return {
    service,
    mode,
    close() {
      service.stop();
      diag.close();
      if (own) kernelPm.close();
    },
  };
}
