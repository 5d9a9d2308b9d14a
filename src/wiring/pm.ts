import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { BoardProfile } from '../core/board.js';
import { DuocellError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import { addressFamily, hostPort, parsePrefix, prefixContains } from '../core/net.js';
import { MptcpPm } from '../drivers/netlink/mptcp-pm.js';
import { pathManagerOps, type PmMode } from '../drivers/netlink/path-manager.js';
import { SockDiag } from '../drivers/netlink/sock-diag.js';
import { applyRuleset, deleteTable } from '../drivers/nft/index.js';
import { buildJoinDnat, type JoinDnatConfig } from '../services/intercept/join.js';
import { PmService, SteeringController, type PathsLike, type PmBackend } from '../services/pm/index.js';
import { planSubflows } from '../services/pm/planner.js';
import { planWithdrawals, type WithdrawalPlan } from '../services/pm/withdraw.js';
import type { PmConnectionView, SubflowView } from '../services/pm/types.js';
import { JOIN_SYSCTL } from '../services/announce/index.js';
import { cached } from '../services/policy/cache.js';
import { connectionPolicy, steeringPolicy, type PmPolicyInput } from '../services/policy/connection.js';
import { subflowPolicy } from '../services/policy/limits.js';
import type { ProxyEngine } from '../services/proxy/index.js';
import type { Store } from '../store/index.js';
import { accessLabeler, type InterfaceReader } from '../services/proxy/index.js';
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
   * destroys a dying path's subflows. The request is on its way to the kernel when this returns
   * (the caller need not wait for the answer to order a later command after it); rejects with
   * DC_PM_SUBFLOW_UNKNOWN when no followed connection has that subflow established, or with the
   * kernel's refusal.
   */
  backupSubflow?(t: { local: { address: string; port: number }; remote: { address: string; port: number } }): Promise<void>;
  /**
   * REMOVE_ADDR for a dying path (userspace PM only; services/pm/withdraw.ts): `plan` picks, from
   * the path's subflows as the PM follows them and before they are destroyed, the local address
   * ids no surviving subflow shares; `remove` sends MPTCP_PM_CMD_REMOVE (token, id), which the
   * kernel announces over a surviving subflow (and closes any local subflow left with that id).
   */
  withdrawal?: {
    plan(tuples: ReadonlyArray<{ local: { address: string; port: number }; remote: { address: string; port: number } }>): WithdrawalPlan;
    remove(token: number, locId: number): Promise<void>;
  };
  /** Whether the join DNAT is installed (services/intercept/join.ts). */
  readonly joinDnat: boolean;
  close(): Promise<void>;
}

/** The join DNAT's nftables table (services/intercept/join.ts). */
export const JOIN_DNAT_TABLE = 'duocell_join';

/**
 * The join DNAT for this board (services/intercept/join.ts), or undefined where it does not apply:
 * a cell with the userspace PM that turns it on (`joinDnat: true`, opt-in), never with `mueRadioAddresses`
 * (the announced joins have ids of their own), for the explicit (not transparent) MPTCP listeners,
 * on the LAN radios that have an address of the family now.
 */
export function joinDnatFor(board: Pick<BoardProfile, 'preset' | 'joinDnat' | 'mueRadioAddresses' | 'listeners' | 'lan'>, mode: PmMode, interfaces: InterfaceReader): JoinDnatConfig | undefined {
  if (board.preset !== 'cell' || mode !== 'userspace' || board.joinDnat !== true || board.mueRadioAddresses === true) return undefined;
  const listeners = board.listeners.filter((l) => l.kind !== 'transparent' && l.mptcp).map((l) => ({ host: l.host, port: l.port }));
  const all = interfaces();
  const radios = board.lan.interfaces.map((name) => {
    const addrs = (all[name] ?? []).filter((a) => !a.address.startsWith('fe80'));
    const families = [...new Set(addrs.map((a) => (a.family === 'IPv4' ? 4 : 6) as 4 | 6))];
    return { name, families };
  });
  if (listeners.length === 0 || radios.every((r) => r.families.length === 0)) return undefined;
  return { table: JOIN_DNAT_TABLE, radios, listeners };
}

/**
 * Per-radio address ids for M-UE sessions (board `mueRadioAddresses: true`, opt-in; userspace PM
 * only; docs/relay.md "Per-radio address ids"). Every subflow of an M-UE that joins the cell's
 * one service address has the cell's local id 0, so a REMOVE_ADDR cannot name one radio. With
 * this on, the cell
 *   1. refuses joins to the address and port a connection started on: the MP_CAPABLE C flag,
 *      net.mptcp.allow_join_initial_addr_port = 0 for the namespace (kept in the kernel ledger,
 *      put back on exit);
 *   2. announces (ADD_ADDR), as soon as an accepted connection is established, its own address on
 *      each LAN/access interface other than the one the connection came in on, with the id
 *      1 + that interface's index in `lan.interfaces`: the M-UE's join from that radio lands
 *      there, with an id of its own.
 * The handover then withdraws a dead radio's id over the survivor (services/pm/withdraw.ts), and
 * id 0 when the initial subflow's radio dies, since only the initial subflow has it.
 * Opt-in because an M-UE that takes no announcement loses its second subflow: Linux takes one
 * under the C flag with the default limits only since "mptcp: pm: in-kernel: usable client side
 * with C-flag" (4b1ff850e0c1, 6.18, sent to the stable kernels in October 2025), and other M-UEs'
 * stacks are not known here.
 * `interfaces` is read on every established connection: give it a snapshot (the composition
 * root's LocalAddresses.interfaces, refreshed on each rtnetlink address event), never
 * os.networkInterfaces itself (two rtnetlink dumps a call).
 */
export function radioAnnouncer(board: Pick<BoardProfile, 'lan' | 'accessNetworks'>, interfaces: InterfaceReader): (s: PmConnectionView) => Array<{ address: string; id: number }> {
  // Only the radios' addresses: those inside an access network of the board (all, if it names none).
  const access = (board.accessNetworks ?? []).map((a) => parsePrefix(a.prefix)).filter((p) => p !== undefined);
  const isAccess = (address: string): boolean => access.length === 0 || access.some((p) => prefixContains(p, address));
  return (s) => {
    const all = interfaces();
    const fam = addressFamily(s.daddr);
    const ifs = board.lan.interfaces.map((name, i) => ({ id: i + 1, addrs: (all[name] ?? []).filter((a) => a.cidr !== null && !a.address.startsWith('fe80') && isAccess(a.address)) }));
    const came = ifs.find((f) => f.addrs.some((a) => { const p = parsePrefix(a.cidr!); return p !== undefined && prefixContains(p, s.daddr); }));
    if (came === undefined) return []; // not from a radio the board knows: nothing to tell apart
    const out: Array<{ address: string; id: number }> = [];
    for (const f of ifs) {
      if (f === came) continue;
      const a = f.addrs.find((x) => (x.family === 'IPv4' ? 4 : 6) === fam);
      if (a !== undefined) out.push({ address: a.address, id: f.id });
    }
    return out;
  };
}

function sysctlPath(name: string): string {
  return `/proc/sys/${name.replace(/\./g, '/')}`;
}

/**
 * `io.interfaces`: the box's interfaces as the per-connection readers (access labels, per-radio
 * announcements) see them — the composition root's LocalAddresses.interfaces snapshot.
 */
export async function startPm(board: BoardProfile, policy: PmPolicyInput, paths: RunningPaths | undefined, io: { ledger?: KernelLedger; interfaces: InterfaceReader }): Promise<RunningPm | undefined> {
  const { ledger } = io;
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
  const accessOf = accessLabeler(board, io.interfaces);
  const radioIds = board.mueRadioAddresses === true && mode === 'userspace';
  if (board.mueRadioAddresses === true && mode !== 'userspace') log.warn('mueRadioAddresses needs the userspace path manager (net.mptcp.pm_type=1): off');
  // The join DNAT: a crashed run's table goes first, whatever this run does.
  await deleteTable('inet', JOIN_DNAT_TABLE).catch((e: Error) => log.warn({ err: e.message }, 'cannot remove an old join DNAT table'));
  const dnatText = ((): string | undefined => {
    const c = joinDnatFor(board, mode, io.interfaces);
    return c === undefined ? undefined : buildJoinDnat(c);
  })();
  let joinDnat = false;
  if (dnatText !== undefined) {
    try {
      await applyRuleset(dnatText);
      joinDnat = true;
      log.info({ table: JOIN_DNAT_TABLE }, 'M-UE joins to the explicit listeners DNATed to their radio\'s address: each join has an address id of its own');
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'join DNAT not installed: a dead initial path is left to the M-UE\'s timers');
    }
  }
  const dropDnat = async (): Promise<void> => {
    if (joinDnat) await deleteTable('inet', JOIN_DNAT_TABLE).catch((e: Error) => log.warn({ err: e.message }, 'cannot remove the join DNAT table'));
  };
  let joinSaved: string | undefined;
  if (radioIds) {
    // The C flag: M-UEs join the per-radio addresses announced below, not the service address.
    ledger?.recordSysctl(JOIN_SYSCTL);
    joinSaved = fs.readFileSync(sysctlPath(JOIN_SYSCTL), 'utf8').trim();
    fs.writeFileSync(sysctlPath(JOIN_SYSCTL), '0\n');
    log.info('per-radio address ids for M-UE sessions: joins to the initial address refused (C flag), each other radio\'s address announced');
  }
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
    ...(radioIds ? { announceOnAccept: radioAnnouncer(board, io.interfaces) } : {}),
    counters: () => diag.subflows(),
  });
  try {
    await service.start();
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'pm service did not start: subflow policy is not enforced');
    service.stop();
    diag.close();
    if (own) pm.close();
    await dropDnat();
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
    log.warn('the in-kernel MPTCP path manager is in use: steering modes (active-standby, priority, ratio, smallest-delay) are off; net.mptcp.pm_type=1 turns them on');
  }
  log.info({ mode, endpoints: service.endpoints(), steering: steering !== undefined }, 'path manager running');
  // Synchronous up to the kernel: the set-flags request is written (and, netlink being
  // synchronous for the kernel, applied) before this returns; the promise tells the answer.
  const backupSubflow = (t: { local: { address: string; port: number }; remote: { address: string; port: number } }): Promise<void> => {
    const sf = service.established(t.local, t.remote);
    if (sf === undefined) {
      return Promise.reject(new DuocellError('DC_PM_SUBFLOW_UNKNOWN', `no established MPTCP subflow ${hostPort(t.local.address, t.local.port)} → ${hostPort(t.remote.address, t.remote.port)} among the ${service.size} connections followed`));
    }
    // The subflow's addresses as the kernel reported them (the family of its socket).
    return kernelPm.setSubflowFlags(sf.token, { address: sf.saddr, port: sf.sport }, { address: sf.daddr, port: sf.dport }, ['backup']);
  };
  const withdrawal = {
    plan: (tuples: ReadonlyArray<{ local: { address: string; port: number }; remote: { address: string; port: number } }>): WithdrawalPlan => {
      const victims = tuples.map((t) => service.established(t.local, t.remote)).filter((x): x is SubflowView => x !== undefined);
      return planWithdrawals(victims, (token) => service.session(token), { announced: radioIds });
    },
    remove: (token: number, locId: number): Promise<void> => kernelPm.remove(token, locId),
  };
  return {
    service,
    mode,
    steering,
    ...(mode === 'userspace' ? { backupSubflow, withdrawal } : {}),
    joinDnat,
    async close() {
      steering?.stop();
      service.stop();
      if (joinSaved !== undefined && ledger === undefined) fs.writeFileSync(sysctlPath(JOIN_SYSCTL), `${joinSaved}\n`);
      diag.close();
      if (own) kernelPm.close();
      await dropDnat();
    },
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
