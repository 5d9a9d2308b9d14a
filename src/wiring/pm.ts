import { EventEmitter } from 'node:events';
import type { BoardProfile } from '../core/board.js';
import { logger } from '../core/logger.js';
import { commonPrefixBits } from '../core/net.js';
import { MptcpPm } from '../drivers/netlink/mptcp-pm.js';
import { pathManagerOps, type PmMode } from '../drivers/netlink/path-manager.js';
import { SockDiag } from '../drivers/netlink/sock-diag.js';
import { PmService, SteeringController, type PathsLike, type PmBackend, type PmServiceOptions, type SessionView, type SteerPolicy } from '../services/pm/index.js';
import { subflowPolicy, type PolicySource } from '../services/policy/limits.js';
import type { ProxyEngine } from '../services/proxy/index.js';
import type { Store } from '../store/index.js';
import type { EffectivePolicy, PolicySpec } from '../store/types.js';
import { accessLabeler } from '../services/proxy/index.js';
import type { RunningPaths } from './paths.js';
import { storedExtra } from './policy.js';
import type { KernelLedger } from '../services/restore/ledger.js';

/**
 * The path manager in the running appliance: the pm service over the kernel's mptcp_pm family,
 * with the store's subscriber policy as the judge of every subflow that joins a connection the
 * box accepted (subflow limit, allowed networks).
 *
 * The kernel's path manager is chosen per network namespace; drivers/netlink/path-manager.ts
 * detects it and gives its operations (a refused join: SOCK_DESTROY under the in-kernel PM,
 * SUBFLOW_DESTROY under the userspace one). Under the in-kernel PM endpoints follow the
 * uplinks (one `subflow` endpoint per uplink address); under the userspace one they are left
 * alone and the box plans its own connections' subflows.
 */
const log = logger('duocell:wiring:pm');

export { pathManagerMode, type PmMode } from '../drivers/netlink/path-manager.js';

/** PathsLike for a box without uplinks (a concentrator): no paths, no events. */
const noPaths: PathsLike = (() => {
  const ee = new EventEmitter();
  return { list: () => [], byAddress: () => undefined, on: (ev, cb) => ee.on(ev, cb), off: (ev, cb) => ee.off(ev, cb) };
})();

export interface RunningPm {
  readonly service: PmService;
  readonly mode: PmMode;
  /** Steering modes per connection (userspace PM only). */
  readonly steering: SteeringController | undefined;
  /**
   * MP_PRIO: mark one of the box's subflows backup (userspace PM: the set-flags command of its
   * connection), so the sender stops scheduling on it at once; the handover does it before it
   * destroys a dying path's subflows. Rejects when no tracked connection has that subflow.
   */
  backupSubflow?(t: { local: { address: string; port: number }; remote: { address: string; port: number } }): Promise<void>;
  close(): void;
}

/** What startPm needs besides the paths: the policy, and who the box's own connections are for. */
export interface PmPolicyInput extends PolicySource {
  getPolicy(name: string): PolicySpec | undefined;
  onChange(fn: () => void): () => void;
  /**
   * The proxy session an MPTCP connection belongs to, by token: the authenticated subscriber
   * (cookie, SOCKS user) and the client's address. Its upstream (`side: 'server'`, the box's own
   * connection) or the client's connection (`side: 'client'`).
   */
  connectionOf?: (token: number) => { side: 'client' | 'server'; subscriber?: string; client: string } | undefined;
  /** The access a policy prefers (active-standby's active one, priority's first), if it says. */
  preferredOf?: (policy: string) => 'cellular' | 'wlan' | undefined;
}

/**
 * The steering policy of a connection: for one the box accepted, its UE's policy; for the box's
 * own (a proxy session's upstream), the policy of the session's client. Connections whose policy
 * leaves the steering mode at the built-in default are not steered: the kernel's scheduler
 * decides, as on any MPTCP host, until the operator sets a mode.
 */
export function steeringPolicy(src: PmPolicyInput, preferred: 'cellular' | 'wlan'): (sess: SessionView) => SteerPolicy | undefined {
  const explicit = cached((name: string) => (src.getPolicy(name)?.steeringMode ?? src.getPolicy('default')?.steeringMode ?? null) !== null);
  src.onChange(() => explicit.clear());
  const connPolicy = connectionPolicy(src);
  return (sess) => {
    // looked up again on every call: a policy change reaches live connections at the next tick
    const p = connPolicy(sess);
    if (p === undefined || !explicit.get(p.policy)) return undefined;
    const group = p.subscriber ?? (sess.serverSide ? sess.daddr : (src.connectionOf?.(sess.token)?.client ?? sess.daddr));
    return { mode: p.steeringMode, ratio: p.ratio, preferred: src.preferredOf?.(p.policy) ?? preferred, group };
  };
}

/**
 * The policy of an MPTCP connection: an authenticated subscriber's (the engine knows the token),
 * else the policy of the client's address: for a connection the box accepted, its peer; for the
 * box's own, the proxied client. undefined: a connection of the box's own that no session claims.
 */
export function connectionPolicy(src: Pick<PmPolicyInput, 'resolvePolicy' | 'resolveSubscriber' | 'connectionOf'>): (sess: { token: number; serverSide: boolean; daddr: string }) => EffectivePolicy | undefined {
  return (sess) => {
    const c = src.connectionOf?.(sess.token);
    const named = c?.subscriber === undefined ? undefined : src.resolveSubscriber?.(c.subscriber);
    if (named !== undefined) return named;
    if (sess.serverSide) return src.resolvePolicy(sess.daddr);
    return c === undefined ? undefined : src.resolvePolicy(c.client);
  };
}

/**
 * Userspace PM: the subflows of the box's own connections (to a concentrator, an M-server): one
 * from each other uplink address of the connection's family, to the address the peer announced
 * nearest to it if it announced any (a concentrator refusing joins to its shared address), else
 * to the connection's remote address.
 */
export const planSubflows: NonNullable<PmServiceOptions['planSubflows']> = (sess, up) => {
  if (sess.serverSide) return [];
  const v6 = sess.daddr.includes(':');
  const announced = Object.entries(sess.announced)
    .filter(([, a]) => a.includes(':') === v6)
    .map(([id, address]) => ({ address, port: sess.announcedPorts[Number(id)] ?? sess.dport }));
  // Each local address joins the announced address nearest to it (most leading bits in common:
  // the peer's address on the same access network), else the connection's remote address.
  const nearest = (local: string): { address: string; port: number } | undefined =>
    announced.reduce<{ r: { address: string; port: number } | undefined; bits: number }>(
      (best, r) => {
        const bits = commonPrefixBits(local, r.address);
        return bits > best.bits ? { r, bits } : best;
      },
      { r: undefined, bits: -1 },
    ).r;
  return up.flatMap((p) =>
    p.addresses
      .filter((a) => a.includes(':') === v6 && a !== sess.saddr)
      .map((address) => {
        const remote = nearest(address);
        return { path: p, address, ...(remote === undefined ? {} : { remote }) };
      }),
  );
};

export async function startPm(board: BoardProfile, policy: PmPolicyInput, paths: RunningPaths | undefined, ledger?: KernelLedger): Promise<RunningPm | undefined> {
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
  const diag = new SockDiag();
  const kernelPm = pm;
  const ops = pathManagerOps(kernelPm, diag);
  const mode = ops.mode;
  // Limits and endpoints are recorded in the kernel ledger before they change; endpoints the
  // operator made are left alone (src/services/restore/ledger.ts).
  const backend: PmBackend = ledger?.wrap(ops) ?? ops;
  const accessOf = accessLabeler(board);
  const service = new PmService({
    pm: backend,
    paths: paths?.service ?? noPaths,
    manageEndpoints: mode === 'kernel' && paths !== undefined,
    label: ({ daddr, serverSide }) => {
      if (!serverSide) return undefined; // the box's own connection: the uplink of its local address
      const a = accessOf(daddr);
      return { access: a === 'cellular' || a === 'wlan' ? a : 'unknown' };
    },
    admitSubflow: subflowPolicy({ ...policy, connectionPolicy: connectionPolicy(policy) }),
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
  // Per-connection backup flags exist only under the userspace PM (the in-kernel one answers EINVAL).
  const steering =
    mode === 'userspace'
      ? new SteeringController({
          sessions: service,
          backend: { setSubflowFlags: (t, l, r, f) => kernelPm.setSubflowFlags(t, l, r, f), subflowDestroy: (t, l, r) => ops.subflowDestroy(t, l, r) },
          policy: steeringPolicy(policy, board.policy?.preferredPath === 'cellular' ? 'cellular' : 'wlan'),
          counters: () => diag.subflows(),
          ...(paths === undefined ? {} : { paths: paths.service }),
        })
      : undefined;
  steering?.start();
  if (mode === 'kernel') {
    log.warn('the in-kernel MPTCP path manager is in use: steering modes (active-standby, priority, ratio) are off; net.mptcp.pm_type=1 turns them on');
  }
  log.info({ mode, endpoints: service.endpoints(), steering: steering !== undefined }, 'path manager running');
  const bare = (a: string): string => (a.startsWith('::ffff:') ? a.slice(7) : a);
  const backupSubflow = async (t: { local: { address: string; port: number }; remote: { address: string; port: number } }): Promise<void> => {
    const [la, ra] = [bare(t.local.address), bare(t.remote.address)];
    for (const sess of service.sessions()) {
      for (const sf of sess.subflows) {
        if (sf.state !== 'established' || sf.sport !== t.local.port || sf.dport !== t.remote.port || bare(sf.saddr) !== la || bare(sf.daddr) !== ra) continue;
        await kernelPm.setSubflowFlags(sess.token, { address: la, port: t.local.port }, { address: ra, port: t.remote.port }, ['backup']);
        return;
      }
    }
    throw new Error(`no tracked MPTCP subflow ${la}:${t.local.port} → ${ra}:${t.remote.port}`);
  };
  return {
    service,
    mode,
    steering,
    ...(mode === 'userspace' ? { backupSubflow } : {}),
    close() {
      steering?.stop();
      service.stop();
      diag.close();
      if (own) kernelPm.close();
    },
  };
}

/**
 * Memoise a per-policy-name lookup for `ttlMs`: the store's own index follows commits by other
 * processes (the CLI) within 250 ms, and these settings reads should not hit SQLite per subflow.
 */
export function cached<T>(read: (name: string) => T, ttlMs = 1000, now: () => number = Date.now): { get(name: string): T; clear(): void } {
  const m = new Map<string, { v: T; at: number }>();
  return {
    get(name) {
      const hit = m.get(name);
      const t = now();
      if (hit !== undefined && t - hit.at < ttlMs) return hit.v;
      if (m.size > 4096) m.clear();
      const v = read(name);
      m.set(name, { v, at: t });
      return v;
    },
    clear: () => m.clear(),
  };
}

/** The pm's policy input from the store, with the engine telling whose traffic each upstream token carries. */
export function pmPolicyInput(store: Store, engine: ProxyEngine): PmPolicyInput {
  const extra = cached((p: string) => storedExtra(store, p));
  store.onChange(() => extra.clear());
  const conns = new Map<number, { side: 'client' | 'server'; subscriber?: string; client: string }>();
  engine.on('session', (v) => {
    const who = { ...(v.subscriber === undefined ? {} : { subscriber: v.subscriber }), client: v.client.address };
    if (v.tokens?.server !== undefined) conns.set(v.tokens.server, { side: 'server', ...who });
    if (v.tokens?.client !== undefined) conns.set(v.tokens.client, { side: 'client', ...who });
  });
  engine.on('closed', (v) => {
    if (v.tokens?.server !== undefined) conns.delete(v.tokens.server);
    if (v.tokens?.client !== undefined) conns.delete(v.tokens.client);
  });
  return {
    resolvePolicy: (a) => store.resolvePolicy(a),
    resolveSubscriber: (n) => store.resolveSubscriber(n),
    nserverCap: (a) => store.nserverCap(a),
    getPolicy: (n) => store.getPolicy(n),
    onChange: (f) => store.onChange(f),
    connectionOf: (t) => conns.get(t),
    allowedAccess: (p) => extra.get(p)?.allowedAccess,
    preferredOf: (p) => extra.get(p)?.primary,
  };
}
