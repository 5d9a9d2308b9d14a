import type { BoardProfile } from '../core/board.js';
import { logger } from '../core/logger.js';
import { writeFile } from 'node:fs/promises';
import { deleteFlows, listFlows } from '../drivers/conntrack/index.js';
import { applyRuleset, deleteTable, ensureMarkRules, removeMarkRules, tableCounters } from '../drivers/nft/index.js';
import type { KernelLedger } from '../services/restore/ledger.js';
import { UdpSteering, type UdpPolicy, type UdpPolicySource, type UdpSteerBackend, type UdpSteeringMode } from '../services/udp/steering.js';
import type { Store } from '../store/index.js';
import type { UdpView } from '../web/deps.js';
import type { SteeringMode } from '../store/types.js';
import type { RunningPaths } from './paths.js';
import { storedExtra } from './policy.js';

/**
 * UDP steering in the running appliance (board `udpSteering.enabled`): the subscribers' policies
 * from the store (a subscriber's addresses → its policy's UDP mode, allowed access, preferred
 * access, ratio), the paths and their measured RTT, nft/ip/conntrack as the backend.
 */
const log = logger('duocell:wiring:udp');

export const udpBackend: UdpSteerBackend = {
  apply: (text) => applyRuleset(text),
  ensureMarkRules,
  removeMarkRules,
  deleteTable: (t) => deleteTable('inet', t),
  deleteFlows,
  listFlows,
  counters: (t) => tableCounters('inet', t),
};

/** The UDP mode a policy implies when it names none: its MPTCP mode's counterpart. */
export function udpModeOf(mptcp: SteeringMode, fallback?: UdpSteeringMode): UdpSteeringMode {
  if (fallback !== undefined) return fallback;
  return mptcp === 'ratio' ? 'load-balancing' : mptcp;
}

export function storePolicySource(store: Store, board: BoardProfile): UdpPolicySource {
  const policyOf = (name: string): UdpPolicy => {
    const eff = name === 'default' ? store.defaultPolicy() : (store.getPolicy(name) ?? undefined);
    const base = store.defaultPolicy();
    const x = storedExtra(store, name) ?? storedExtra(store, 'default');
    return {
      mode: x?.udpMode ?? udpModeOf(eff?.steeringMode ?? base.steeringMode, board.udpSteering?.mode),
      preferred: x?.primary ?? (board.policy?.preferredPath === 'cellular' ? 'cellular' : 'wlan'),
      ratio: { ...(eff?.ratio ?? base.ratio) },
      allowed: x?.allowedAccess ?? ['cellular', 'wlan'],
      ...(x?.quic === undefined ? {} : { quic: x.quic }),
    };
  };
  return {
    groups: () =>
      store
        .listSubscribers()
        .filter((s) => s.enabled && s.addresses.length > 0)
        .map((s) => ({ key: s.name, prefixes: [...s.addresses], policy: policyOf(s.policy) })),
    fallback: () => policyOf('default'),
    onChange: (f) => store.onChange(f),
  };
}

export const ACCT_SYSCTL = 'net.netfilter.nf_conntrack_acct';

/**
 * Per-flow byte and packet counters for GET /api/v1/udp (off by default in the kernel), recorded
 * in the kernel ledger first: put back at a clean exit, or at the next start after a crash.
 * Without it (no such sysctl, no permission) flows show 0 bytes; steering works all the same.
 */
export async function enableConntrackAccounting(ledger?: Pick<KernelLedger, 'recordSysctl'>, write: (value: string) => Promise<void> = (v) => writeFile('/proc/sys/net/netfilter/nf_conntrack_acct', v)): Promise<boolean> {
  try {
    ledger?.recordSysctl(ACCT_SYSCTL);
    await write('1');
    return true;
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'conntrack accounting stays off: UDP flows show 0 bytes');
    return false;
  }
}

export async function startUdpSteering(board: BoardProfile, store: Store, paths: RunningPaths | undefined, ledger?: Pick<KernelLedger, 'recordSysctl'>): Promise<UdpSteering | undefined> {
  const cfg = board.udpSteering;
  if (cfg?.enabled !== true || paths === undefined || board.lan.interfaces.length === 0) return undefined;
  const s = new UdpSteering({
    ...(cfg.table === undefined ? {} : { table: cfg.table }),
    lanInterfaces: board.lan.interfaces,
    ...(Array.isArray(board.lan.addresses) ? { lanPrefixes: board.lan.addresses.map((a: string) => networkOf(a)) } : {}),
    paths: paths.service,
    policy: storePolicySource(store, board),
    backend: udpBackend,
    rtt: (n) => {
      const m = paths.meter.get(n)?.rttMs;
      return m === undefined ? undefined : { median: m.median, min: m.min };
    },
    perSourceFlows: cfg.perSourceFlows ?? 1024,
    ...(cfg.rulePriority === undefined ? {} : { rulePriority: cfg.rulePriority }),
  });
  await enableConntrackAccounting(ledger);
  try {
    await s.start();
  } catch (e) {
    log.warn({ code: 'DC_UDP_STEER', err: (e as Error).message }, 'UDP steering did not start: LAN UDP follows the main routing table');
    await s.stop().catch(() => undefined);
    return undefined;
  }
  return s;
}

/** A LAN address with its length stands for its network (nft masks the host bits). */
function networkOf(a: string): string {
  return a.includes('/') ? a : `${a}/${a.includes(':') ? 128 : 32}`;
}

/** GET /api/v1/udp, the control socket's /udp and /metrics. */
export async function udpView(s: UdpSteering): Promise<UdpView> {
  const st = s.status();
  const mode = s.mode();
  const c = await s.counters();
  return { enabled: st.active, ...(mode === undefined ? {} : { mode }), flows: await s.flows(), moves: st.moves, flowsMoved: st.flowsMoved, capDrops: c.capDrops, quicBlocked: c.quicBlocked, quicLimited: c.quicLimited };
}
