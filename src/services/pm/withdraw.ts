import type { PmConnectionView, SubflowView } from './types.js';

/**
 * Which local addresses to withdraw (REMOVE_ADDR, RFC 8684 section 3.4.2) when a path dies.
 *
 * Destroying the box's subflow on a dead path sends its RST into that dead path: the peer never
 * hears it and, where the peer is the sender, keeps scheduling data on its own end of the subflow
 * until its retransmission timers call it stale (Linux: net.mptcp.stale_loss_cnt MPTCP retransmit
 * periods, MPTcpExtSubflowStale) and only then reinjects. A REMOVE_ADDR for the box's address id
 * of that subflow travels over a surviving subflow instead, and the peer's kernel closes every
 * subflow with that remote id at once and reinjects (MPTcpExtRmAddr, MPTcpExtRmSubflow).
 *
 * The option names an address id, not a subflow: it must not name an id that a surviving subflow
 * of the same connection also uses, or the peer would close the survivor too. That is the common
 * case on the cell's M-UE side by default: an M-UE joins the cell's one service address over each
 * of its radios, so every subflow has the cell's local id 0 (docs/relay.md) and nothing is
 * withdrawn there, unless the board turns on per-radio address ids (`mueRadioAddresses`: the cell
 * announces its own address on each other radio and refuses joins to the service address, so
 * each radio's subflows have an id of their own). The box's own upstream connections (it creates
 * every join itself, one local id per uplink address) always qualify.
 *
 * When to send it: before the box destroys the dying subflows, while the kernel still lists them
 * (for an id other than 0 the userspace PM does nothing, and answers 0, once no subflow with that
 * local address is left: mptcp_pm_remove_addr_entry; for id 0, Linux 6.18 answers EINVAL after
 * the destroy, "address with id 0 not found"). The kernel writes the option on the next ACK of
 * an active subflow, and since the upstream fix of mptcp_net-next issue 612 (Linux 7.0-rc2, sent
 * to the stable kernels; the 6.18.44 this project tests on behaves so) it skips the
 * subflows whose local id is the one withdrawn (mptcp_pm_addr_send_ack_avoid_list): the option
 * leaves on a survivor whichever subflow heads the list, the initial one included. So id 0 (the
 * initial subflow's path died) is withdrawn like any other, and so is a join's id when the
 * initial subflow dies with it. On a kernel without that fix the option may leave on the dying
 * subflow and be lost: the peer then finds the subflow stale by its timers, as it would anyway.
 * test/kernel/handover-remove-addr.test.ts (a join's path, the box's upstream) and
 * test/kernel/mue-radio-ids.test.ts (both paths, an M-UE's upload) show it on this kernel.
 *
 * Joins the peer made to an address the box never announced (an M-UE's join to the service
 * address that the join DNAT gave an id of its own, services/intercept/join.ts) must never be
 * withdrawn by their id: Linux answers a REMOVE_ADDR of id ≠ 0 for such a join by decrementing its
 * accepted-announcement count, which is 0, and hits WARN_ON_ONCE(add_addr_accepted == 0) in
 * mptcp_pm_nl_rm_addr (docs/relay.md). So for a connection the box accepted (serverSide) without
 * announcements of its own (`announced` false), only id 0 is ever withdrawn.
 *
 *   victims  the established subflows of the dead path, as the path manager follows them
 *   result   per connection, each local id of a victim that no other established subflow of that
 *            connection uses; connections left without any other established subflow are
 *            skipped (no path to carry the option, and the connection ends anyway)
 */
export interface Withdrawal {
  readonly token: number;
  readonly locId: number;
}

export interface WithdrawalPlan {
  readonly withdraw: Withdrawal[];
  /** Local ids not withdrawn because a surviving subflow shares them (token:id). */
  readonly shared: string[];
  /** Ids of joins the peer made to an address the box never announced: never withdrawn (token:id). */
  readonly unannounced: string[];
}

const sfKey = (s: Pick<SubflowView, 'saddr' | 'sport' | 'daddr' | 'dport'>): string => `${s.saddr}|${s.sport}|${s.daddr}|${s.dport}`;

export function planWithdrawals(victims: readonly SubflowView[], session: (token: number) => PmConnectionView | undefined, opts: { announced?: boolean } = {}): WithdrawalPlan {
  const withdraw: Withdrawal[] = [];
  const shared: string[] = [];
  const unannounced: string[] = [];
  const byToken = new Map<number, SubflowView[]>();
  for (const v of victims) byToken.set(v.token, [...(byToken.get(v.token) ?? []), v]);
  for (const [token, vs] of byToken) {
    const sess = session(token);
    if (sess === undefined) continue;
    const dead = new Set(vs.map(sfKey));
    const survivors = sess.subflows.filter((s) => s.state === 'established' && !dead.has(sfKey(s)));
    if (survivors.length === 0) continue;
    const used = new Set(survivors.map((s) => s.locId));
    for (const id of new Set(vs.map((v) => v.locId))) {
      if (used.has(id)) shared.push(`${token}:${id}`);
      else if (id !== 0 && sess.serverSide && opts.announced !== true) unannounced.push(`${token}:${id}`);
      else withdraw.push({ token, locId: id });
    }
  }
  return { withdraw, shared, unannounced };
}
