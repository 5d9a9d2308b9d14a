import { addressFamily, commonPrefixBits, sameAddress } from '../../core/net.js';
import type { PmServiceOptions } from './types.js';

/**
 * Userspace PM: the subflows of the box's own connections (to a concentrator, an M-server): one
 * from each other uplink address of the connection's family, to the address the peer announced
 * nearest to it if it announced any (a concentrator refusing joins to its shared address), else
 * to the connection's remote address.
 */
export const planSubflows: NonNullable<PmServiceOptions['planSubflows']> = (sess, up) => {
  if (sess.serverSide) return [];
  // families by value: a dual-stack socket's IPv4 peer is reported IPv4-mapped (`::ffff:a47:1`)
  const fam = addressFamily(sess.daddr);
  const announced = Object.entries(sess.announced)
    .filter(([, a]) => addressFamily(a) === fam)
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
      .filter((a) => addressFamily(a) === fam && !sameAddress(a, sess.saddr))
      .map((address) => {
        const remote = nearest(address);
        return { path: p, address, ...(remote === undefined ? {} : { remote }) };
      }),
  );
};
