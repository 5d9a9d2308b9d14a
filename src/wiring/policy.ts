import { DuocellError } from '../core/errors.js';
import type { BoardProfile } from '../core/board.js';
import type { Store, PolicySpec as StorePolicy, SubscriberRecord } from '../store/index.js';
import type { ResolvedDefaults } from '../store/types.js';
import type { AccessType, PolicyDto as WebPolicy, PolicyView, SubscriberInput, SubscriberView, WebDeps } from '../web/deps.js';

/**
 * The web page's policy shape ⇄ the store's named policies.
 *   the cell default      ⇄ store policy `default`
 *   a subscriber's own    ⇄ store policy `sub.NAME` (null on the page: the subscriber uses `default`)
 * allowedAccess and the preferred path are not columns of the store's policy table: they are kept
 * beside it in the settings table under `policy-extra.NAME`.
 */
const DEFAULT = 'default';
const own = (name: string): string => `sub.${name}`;

interface Extra {
  allowedAccess: AccessType[];
  primary: AccessType;
  /** The UDP steering mode (services/udp/steering.ts), when the policy names one. */
  udpMode?: 'active-standby' | 'priority' | 'smallest-delay' | 'load-balancing';
  /** `block`: the policy's devices get ICMP port-unreachable on UDP/443 (QUIC falls back to TCP). */
  quic?: 'allow' | 'block';
}

const UDP_MODES = ['active-standby', 'priority', 'smallest-delay', 'load-balancing'];

/** What the page stored beside a policy (allowed access types, preferred access), if anything. */
export function storedExtra(store: Pick<Store, 'getSetting'>, policy: string): Extra | undefined {
  const raw = store.getSetting(`policy-extra.${policy}`);
  if (raw === undefined) return undefined;
  try {
    const x = JSON.parse(raw) as Partial<Extra>;
    const okAccess = (a: unknown): a is AccessType => a === 'cellular' || a === 'wlan';
    if (!Array.isArray(x.allowedAccess) || !x.allowedAccess.every(okAccess) || !okAccess(x.primary)) return undefined;
    const udp = typeof x.udpMode === 'string' && UDP_MODES.includes(x.udpMode) ? { udpMode: x.udpMode } : {};
    const quic = x.quic === 'allow' || x.quic === 'block' ? { quic: x.quic } : {};
    return { allowedAccess: x.allowedAccess, primary: x.primary, ...udp, ...quic };
  } catch {
    return undefined;
  }
}

function readExtra(store: Store, policy: string): Extra {
  return storedExtra(store, policy) ?? { allowedAccess: ['cellular', 'wlan'], primary: 'wlan' };
}

function toWeb(store: Store, name: string): WebPolicy {
  const p = store.getPolicy(name);
  const eff = name === DEFAULT ? store.defaultPolicy() : undefined;
  const base = store.defaultPolicy();
  const x = readExtra(store, name);
  return {
    limits: {
      maxSessions: p?.maxSessionsPerUe ?? eff?.maxSessionsPerUe ?? base.maxSessionsPerUe,
      maxSubflows: p?.maxSubflowsPerSession ?? eff?.maxSubflowsPerSession ?? base.maxSubflowsPerSession,
      maxSessionsPerServer: p?.maxSessionsPerNServer ?? eff?.maxSessionsPerNServer ?? base.maxSessionsPerNServer,
    },
    allowedAccess: x.allowedAccess,
    allowedNetworks: [...(p?.allowedNetworks ?? eff?.allowedNetworks ?? base.allowedNetworks)].filter((n) => n !== '0.0.0.0/0' && n !== '::/0'),
    steering: {
      mode: p?.steeringMode ?? eff?.steeringMode ?? base.steeringMode,
      primary: x.primary,
      ratio: { ...(p?.ratio ?? eff?.ratio ?? base.ratio) },
    },
    ...(x.udpMode === undefined ? {} : { udpMode: x.udpMode }),
    ...(x.quic === undefined ? {} : { quic: x.quic }),
  };
}

function toStore(name: string, w: WebPolicy): StorePolicy {
  return {
    name,
    maxSessionsPerUe: w.limits.maxSessions,
    maxSubflowsPerSession: w.limits.maxSubflows,
    maxSessionsPerNServer: w.limits.maxSessionsPerServer,
    // Empty on the page means "any network".
    allowedNetworks: w.allowedNetworks.length === 0 ? ['0.0.0.0/0', '::/0'] : w.allowedNetworks,
    steeringMode: w.steering.mode,
    ratio: w.steering.ratio,
  };
}

function writePolicy(store: Store, name: string, w: WebPolicy): void {
  store.setPolicy(toStore(name, w), 'web');
  // udpMode and quic: a body that leaves them out keeps what is stored
  const old = storedExtra(store, name);
  const udp = w.udpMode ?? old?.udpMode;
  const quic = w.quic ?? old?.quic;
  store.setSetting(`policy-extra.${name}`, JSON.stringify({ allowedAccess: w.allowedAccess, primary: w.steering.primary, ...(udp === undefined ? {} : { udpMode: udp }), ...(quic === undefined ? {} : { quic }) }), 'web');
}

function subView(store: Store, r: SubscriberRecord): SubscriberView {
  return {
    id: r.name,
    name: r.name,
    enabled: r.enabled,
    identifiers: { addresses: r.addresses, macs: r.macs },
    policy: r.policy === own(r.name) ? toWeb(store, r.policy) : null,
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

function mustGet(store: Store, id: string): SubscriberRecord {
  const r = store.getSubscriber(id);
  if (r === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no subscriber ${JSON.stringify(id)}`);
  return r;
}

export function storeBackedPolicy(store: Store): Pick<WebDeps, 'subscribers' | 'policy'> {
  const apply = (name: string, input: SubscriberInput, create: boolean): SubscriberView => {
    // Write the subscriber first with the default policy, then its own policy, then link them:
    // every step validates, and a refusal leaves nothing half-made behind.
    if (input.policy !== null) store.setPolicy(toStore(own(name), input.policy), 'web');
    const spec = { enabled: input.enabled, addresses: input.identifiers.addresses, macs: input.identifiers.macs, policy: input.policy === null ? DEFAULT : own(name) };
    try {
      const r = create ? store.addSubscriber({ name, ...spec }, 'web') : store.updateSubscriber(name, spec, 'web');
      if (input.policy !== null) writePolicy(store, own(name), input.policy);
      else if (store.getPolicy(own(name)) !== undefined) store.removePolicy(own(name), 'web');
      return subView(store, r);
    } catch (e) {
      if (create && input.policy !== null && store.getSubscriber(name) === undefined) store.removePolicy(own(name), 'web');
      throw e;
    }
  };
  return {
    subscribers: {
      list: () => Promise.resolve(store.listSubscribers().map((r) => subView(store, r))),
      get: (id) => Promise.resolve(subView(store, mustGet(store, id))),
      create: (input) => Promise.resolve().then(() => apply(input.name, input, true)),
      update: (id, input) =>
        Promise.resolve().then(() => {
          mustGet(store, id);
          if (input.name !== id) throw new DuocellError('DC_HTTP_BAD_REQUEST', 'a subscriber cannot be renamed');
          return apply(id, input, false);
        }),
      remove: (id) =>
        Promise.resolve().then(() => {
          const r = mustGet(store, id);
          store.removeSubscriber(id, 'web');
          if (r.policy === own(id)) store.removePolicy(own(id), 'web');
        }),
    },
    policy: {
      get: () => Promise.resolve(policyView(store)),
      set: (defaults) =>
        Promise.resolve().then(() => {
          writePolicy(store, DEFAULT, defaults);
          return policyView(store);
        }),
    },
  };
}

function policyView(store: Store): PolicyView {
  const st = store.otaState();
  return { version: st.currentVersion > 0 ? st.currentVersion : null, updatedAt: new Date(st.appliedAt ?? Date.now()).toISOString(), defaults: toWeb(store, DEFAULT) };
}

/**
 * The board profile's policy block, as the store's defaults below the `default` policy:
 * `maxSubflows` → subflows per M-session, `pathRatio` (weights) → ratio in percent. On a
 * concentrator every device behind a cell arrives as that one cell: its default per-UE session
 * limit is the cell's, 65,536 (operators size it per cell with a policy).
 */
export function boardPolicyDefaults(board: Pick<BoardProfile, 'policy' | 'preset'>): Partial<ResolvedDefaults> {
  const p = board.policy ?? {};
  const out: { -readonly [K in keyof ResolvedDefaults]?: ResolvedDefaults[K] } = {};
  if (typeof p.maxSubflows === 'number') out.maxSubflowsPerSession = p.maxSubflows;
  const c = p.pathRatio?.cellular ?? 0;
  const w = p.pathRatio?.wlan ?? 0;
  if (p.pathRatio !== undefined && c + w > 0) {
    const cellular = Math.round((100 * c) / (c + w));
    out.ratio = { cellular, wlan: 100 - cellular };
  }
  if (board.preset === 'concentrator') out.maxSessionsPerUe = 65_536;
  return out;
}
