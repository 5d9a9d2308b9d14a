import { addressKey } from '../../core/net.js';
import type { EffectivePolicy, PolicySpec } from '../../store/types.js';
import type { PmConnectionView, SteerPolicy } from '../pm/index.js';
import { cached } from './cache.js';
import type { PolicySource } from './limits.js';

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
export function steeringPolicy(src: PmPolicyInput, preferred: 'cellular' | 'wlan'): (sess: PmConnectionView) => SteerPolicy | undefined {
  const explicit = cached((name: string) => (src.getPolicy(name)?.steeringMode ?? src.getPolicy('default')?.steeringMode ?? null) !== null);
  src.onChange(() => explicit.clear());
  const connPolicy = connectionPolicy(src);
  return (sess) => {
    // looked up again on every call: a policy change reaches live connections at the next tick
    const p = connPolicy(sess);
    if (p === undefined || !explicit.get(p.policy)) return undefined;
    // an unnamed UE's group is its address by value: the kernel names it `::ffff:a47:2` on a
    // dual-stack listener, the proxy `10.71.0.2`; one UE, one group
    const group = p.subscriber ?? addressKey(sess.serverSide ? sess.daddr : (src.connectionOf?.(sess.token)?.client ?? sess.daddr));
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
