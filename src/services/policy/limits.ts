import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { canonicalAddress, parsePrefix, prefixContains, unmapV4, type Prefix } from '../../core/net.js';
import type { EffectivePolicy } from '../../store/types.js';
import type { Admission, FrontInfo, FrontRequest, Grant } from '../proxy/types.js';

/**
 * Per-subscriber resource policy, enforced at the two moments duocell can act:
 *
 *   a session is admitted (engine admission hook) ─► M-sessions per UE, sessions per N-server
 *        refused with DC_POLICY_LIMIT (Convert "Resource Exceeded", SOCKS "not allowed")
 *   a subflow joins (mptcp_pm sub_established) ───► subflows per M-session, allowed networks
 *        (origin authentication): refused → destroyed at once by the pm service, and counted
 *
 * Policies come from the store's resolver (subscriber prefix → policy, with defaults). The UE is
 * the subscriber whose address the session came from; every session the proxy carries for it is
 * an M-session on at least one side (the UE's own, or the cell's Convert/MPTCP upstream), so all
 * of them count.
 */
const log = logger('duocell:policy');

export interface PolicySource {
  resolvePolicy(address: string): EffectivePolicy;
  /** The operator's box-wide limit of concurrent sessions to this N-server (the store's N-server limits), if any. */
  nserverCap(address: string): number | undefined;
  /** The policy of a subscriber known by name (authenticated by a cookie or a SOCKS password). */
  resolveSubscriber?(name: string): EffectivePolicy | undefined;
  /** Access types (cellular, wlan) a policy lets subflows join from; undefined: any. */
  allowedAccess?(policy: string): readonly string[] | undefined;
}

export function grantOf(p: EffectivePolicy, nserverMax?: number): Grant {
  return {
    subscriber: p.subscriber,
    policy: p.policy,
    maxSessionsPerUe: p.maxSessionsPerUe,
    maxSessionsPerNServer: nserverMax ?? p.maxSessionsPerNServer,
    maxSubflowsPerSession: p.maxSubflowsPerSession,
    steeringMode: p.steeringMode,
    ratio: { cellular: p.ratio.cellular, wlan: p.ratio.wlan },
  };
}

export interface LimitCounts {
  /** Open sessions by UE key (subscriber name, else `addr:` + address, IPv6 by /64). */
  readonly perUe: Record<string, number>;
  /** Open sessions by N-server address (all clients together). */
  readonly perNServer: Record<string, number>;
  /** Sessions refused, by which limit (perNServer: a subscriber's own or the box-wide cap). */
  readonly refused: { perUe: number; perNServer: number };
}

/**
 * The text a server or client address is counted under: numeric addresses in one canonical
 * form (IPv4 dotted, also for IPv4-mapped IPv6 in any spelling; IPv6 compressed lower case), so
 * that no spelling of the same address gets a count of its own. A domain name stays a name.
 */
export function canonicalHost(host: string): string {
  const h = host.trim().toLowerCase();
  return canonicalAddress(h) ?? h;
}

/** An unknown client is counted by its address; an IPv6 one by its /64 (a host may rotate within it). */
function clientKey(address: string): string {
  if (!address.includes(':')) return `addr:${address}`;
  const p = parsePrefix(`${address}/64`);
  return p === undefined ? `addr:${address}` : `addr:${p.value.toString(16)}/64`;
}

export class SessionLimits {
  readonly #src: PolicySource;
  readonly #perUe = new Map<string, number>();
  /** Sessions per (UE key, N-server): what a subscriber's maxSessionsPerNServer bounds. */
  readonly #perUeServer = new Map<string, number>();
  /** Sessions per N-server, all clients: what the operator's N-server limits bound. */
  readonly #perServer = new Map<string, number>();
  readonly #refused = { perUe: 0, perNServer: 0 };
  /** canonicalHost() of the texts seen lately (clients and servers repeat): one parse per text. */
  readonly #canon = new Map<string, string>();
  /** One frozen grant per policy object and N-server cap: the index's policies are replaced, never changed, on a policy change. */
  readonly #grants = new WeakMap<EffectivePolicy, Map<number, Grant>>();

  constructor(src: PolicySource) {
    this.#src = src;
  }

  /** The engine's admission hook: throws DC_POLICY_LIMIT, or admits and returns the grant. */
  readonly admit = (info: FrontInfo, req: FrontRequest): Admission => {
    const ue = this.#canonical(info.remote.address);
    // A client that authenticated (Convert cookie, SOCKS user) is that subscriber wherever it
    // connects from; else the subscriber owning its address.
    const named = req.subscriber === undefined ? undefined : this.#src.resolveSubscriber?.(req.subscriber);
    const pol = named ?? this.#src.resolvePolicy(ue);
    const ueKey = pol.subscriber ?? (req.subscriber === undefined ? clientKey(ue) : `user:${req.subscriber}`);
    const server = this.#canonical(req.target.host);
    const pairKey = `${ueKey}|${server}`;
    const cap = this.#src.nserverCap(server);
    const ueNow = this.#perUe.get(ueKey) ?? 0;
    if (ueNow >= pol.maxSessionsPerUe) {
      this.#refused.perUe++;
      log.warn({ ue, subscriber: pol.subscriber, limit: pol.maxSessionsPerUe }, 'M-session refused: per-UE limit');
      throw new DuocellError('DC_POLICY_LIMIT', `${pol.subscriber ?? ue} already has ${ueNow} sessions (limit ${pol.maxSessionsPerUe})`, { limit: 'maxSessionsPerUe', max: pol.maxSessionsPerUe });
    }
    const pairNow = this.#perUeServer.get(pairKey) ?? 0;
    const serverNow = this.#perServer.get(server) ?? 0;
    if (pairNow >= pol.maxSessionsPerNServer || (cap !== undefined && serverNow >= cap)) {
      this.#refused.perNServer++;
      const own = pairNow >= pol.maxSessionsPerNServer;
      const max = own ? pol.maxSessionsPerNServer : cap!;
      log.warn({ ue, server, limit: max, which: own ? 'subscriber' : 'n-server' }, 'M-session refused: per-N-server limit');
      throw new DuocellError(
        'DC_POLICY_LIMIT',
        own ? `${pol.subscriber ?? ue} already has ${pairNow} sessions to ${server} (limit ${max})` : `${server} already has ${serverNow} sessions (N-server limit ${max})`,
        { limit: own ? 'maxSessionsPerNServer' : 'nserverLimit', max },
      );
    }
    this.#perUe.set(ueKey, ueNow + 1);
    this.#perUeServer.set(pairKey, pairNow + 1);
    this.#perServer.set(server, serverNow + 1);
    let released = false;
    return {
      grant: this.#grant(pol, cap === undefined ? pol.maxSessionsPerNServer : Math.min(cap, pol.maxSessionsPerNServer)),
      release: () => {
        if (released) return;
        released = true;
        dec(this.#perUe, ueKey);
        dec(this.#perUeServer, pairKey);
        dec(this.#perServer, server);
      },
    };
  };

  #canonical(text: string): string {
    let c = this.#canon.get(text);
    if (c === undefined) {
      c = canonicalHost(text);
      if (this.#canon.size >= 4096) this.#canon.clear();
      this.#canon.set(text, c);
    }
    return c;
  }

  #grant(pol: EffectivePolicy, nserverMax: number): Grant {
    let byCap = this.#grants.get(pol);
    if (byCap === undefined) this.#grants.set(pol, (byCap = new Map()));
    let g = byCap.get(nserverMax);
    if (g === undefined) {
      g = grantOf(pol, nserverMax);
      Object.freeze(g.ratio);
      byCap.set(nserverMax, Object.freeze(g));
    }
    return g;
  }

  counts(): LimitCounts {
    return { perUe: Object.fromEntries(this.#perUe), perNServer: Object.fromEntries(this.#perServer), refused: { ...this.#refused } };
  }
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
}

/** What admitSubflow sees of a connection and of the new subflow (services/pm PmConnectionView). */
export interface SubflowCheckSession {
  readonly token?: number;
  readonly serverSide: boolean;
  /** The peer's address of the initial subflow: the UE, on a connection the box accepted. */
  readonly daddr: string;
  readonly subflows: ReadonlyArray<{ readonly state: string }>;
}

/**
 * Subflow admission for the pm service: on connections the box accepted (the peer is a UE, a
 * cell, …), a join is refused when the connection already has its subscriber's maximum of
 * subflows, when it comes over an access type the policy does not allow (the page's allowed
 * access: cellular, WLAN), or when it comes from outside the subscriber's allowed networks (origin
 * authentication: a join from a third-party network is not the subscriber's, whatever its
 * token says). Connections the box opened itself are its own and not checked.
 * Returns true, or the reason (which the pm service logs with the source and counts).
 */
export function subflowPolicy(
  src: Pick<PolicySource, 'resolvePolicy' | 'allowedAccess'> & {
    /** The connection's policy when more is known than its peer's address (an authenticated subscriber). */
    connectionPolicy?: (s: { token: number; serverSide: boolean; daddr: string }) => EffectivePolicy | undefined;
  },
): (s: SubflowCheckSession, sf: { readonly daddr: string; readonly access?: string }) => true | string {
  const parsed = new WeakMap<readonly string[], Prefix[]>();
  const prefixes = (list: readonly string[]): Prefix[] => {
    let p = parsed.get(list);
    if (p === undefined) {
      p = list.map((x) => parsePrefix(x)).filter((x): x is Prefix => x !== undefined);
      parsed.set(list, p);
    }
    return p;
  };
  return (s, sf) => {
    if (!s.serverSide) return true;
    const pol = (s.token === undefined ? undefined : src.connectionPolicy?.({ token: s.token, serverSide: true, daddr: s.daddr })) ?? src.resolvePolicy(unmapV4(s.daddr));
    const from = unmapV4(sf.daddr);
    const nets = prefixes(pol.allowedNetworks);
    if (pol.allowedNetworks.length > 0 && !nets.some((n) => prefixContains(n, from))) return `origin ${from} outside allowed networks`;
    const access = src.allowedAccess?.(pol.policy);
    if (access !== undefined && (sf.access === 'cellular' || sf.access === 'wlan') && !access.includes(sf.access)) return `access ${sf.access} not allowed`;
    const open = s.subflows.filter((f) => f.state === 'established').length;
    if (open > pol.maxSubflowsPerSession) return `subflow limit ${pol.maxSubflowsPerSession}`;
    return true;
  };
}
