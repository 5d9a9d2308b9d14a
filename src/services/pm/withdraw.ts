import { canonicalAddress } from '../../core/net.js';
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
 * case on the cell's M-UE side today: an M-UE joins the cell's one service address over each of
 * its radios, so every subflow has the cell's local id 0 (docs/relay.md) and nothing is
 * withdrawn there. The box's own upstream connections (it creates every join itself, one local
 * id per uplink address) always qualify.
 *
 * When to send it (Linux 6.x, net/mptcp): the kernel writes the option on the next ACK of the
 * first *active* subflow of the connection's list (mptcp_pm_addr_send_ack: list order, TCP state
 * established or close-wait), and for an id other than 0 only while a subflow with that local
 * address is still in the list (mptcp_pm_remove_addr_entry, else it does nothing and answers 0).
 *   - id ≠ 0 (a join died): before the destroy, while the subflow is still listed, and only if the
 *     connection's initial subflow survives: it heads the list, so the option goes out on it and
 *     not on the dying subflow, which is still active until the destroy.
 *   - id 0 (the initial subflow died): not withdrawn. Before the destroy the option would leave
 *     on the dying subflow (it heads the list and is still active); after it, Linux 6.18 answers
 *     EINVAL ("address with id 0 not found": the closed first subflow no longer counts), measured
 *     in test/kernel/handover-remove-addr.test.ts's set-up. The peer then finds the subflow stale
 *     by its timers, as before.
 *   - id ≠ 0 with the initial subflow gone too: skipped (the list order of the joins is the
 *     kernel's; the option could go out on the dying subflow).
 *
 *   victims  the established subflows of the dead path, as the path manager follows them
 *   result   per connection, each local id of a victim that no other established subflow of that
 *            connection uses, with when to send it; connections left without any other
 *            established subflow are skipped (no path to carry the option, and the connection
 *            ends anyway)
 */
export interface Withdrawal {
  readonly token: number;
  readonly locId: number;
  /** Send it before the box destroys the dying subflows, or after (see above). */
  readonly when: 'before' | 'after';
}

export interface WithdrawalPlan {
  readonly withdraw: Withdrawal[];
  /** Local ids not withdrawn because a surviving subflow shares them (token:id). */
  readonly shared: string[];
  /** Local ids not withdrawn because the option could leave on the dying subflow: id 0, or the initial subflow gone too (token:id). */
  readonly unordered: string[];
}

const sfKey = (s: Pick<SubflowView, 'saddr' | 'sport' | 'daddr' | 'dport'>): string => `${s.saddr}|${s.sport}|${s.daddr}|${s.dport}`;

export function planWithdrawals(victims: readonly SubflowView[], session: (token: number) => PmConnectionView | undefined): WithdrawalPlan {
  const withdraw: Withdrawal[] = [];
  const shared: string[] = [];
  const unordered: string[] = [];
  const canon = (a: string): string => canonicalAddress(a) ?? a;
  const byToken = new Map<number, SubflowView[]>();
  for (const v of victims) byToken.set(v.token, [...(byToken.get(v.token) ?? []), v]);
  for (const [token, vs] of byToken) {
    const sess = session(token);
    if (sess === undefined) continue;
    const dead = new Set(vs.map(sfKey));
    const survivors = sess.subflows.filter((s) => s.state === 'established' && !dead.has(sfKey(s)));
    if (survivors.length === 0) continue;
    const used = new Set(survivors.map((s) => s.locId));
    const initialSurvives = survivors.some((s) => s.sport === sess.sport && s.dport === sess.dport && canon(s.saddr) === canon(sess.saddr) && canon(s.daddr) === canon(sess.daddr));
    for (const id of new Set(vs.map((v) => v.locId))) {
      if (used.has(id)) shared.push(`${token}:${id}`);
      else if (id !== 0 && initialSurvives) withdraw.push({ token, locId: id, when: 'before' });
      else unordered.push(`${token}:${id}`);
    }
  }
  return { withdraw, shared, unordered };
}
