import { DuocellError } from '../../core/errors.js';
import { decodeFamily, encodeGenl, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, getFamilyAttrs, type GenlFamily } from '../../protocols/netlink/index.js';
import { NetlinkChannel } from './channel.js';
import { NETLINK_GENERIC, openKernelTransport, type NetlinkTransport } from './transport.js';

/** Open a generic-netlink channel (kernel socket unless a transport is given). */
export function openGenl(transport?: NetlinkTransport, opts: { timeoutMs?: number } = {}): NetlinkChannel {
  return new NetlinkChannel(transport ?? openKernelTransport(NETLINK_GENERIC), opts);
}

/**
 * Resolve a generic-netlink family by name through nlctrl. A family the kernel does not have
 * (ENOENT) is DC_NETLINK_FAMILY_MISSING: e.g. nl80211 without cfg80211, mptcp_pm without MPTCP.
 */
export async function resolveFamily(ch: NetlinkChannel, name: string): Promise<GenlFamily> {
  let replies;
  try {
    replies = await ch.request(GENL_ID_CTRL, encodeGenl(CTRL_CMD_GETFAMILY, 1, getFamilyAttrs(name)), { what: `nlctrl GETFAMILY ${name}` });
  } catch (e) {
    if (e instanceof DuocellError && e.code === 'DC_NETLINK_ERRNO' && e.errno === 2) {
      throw new DuocellError('DC_NETLINK_FAMILY_MISSING', `generic netlink family ${name} is not registered in this kernel`, { origin: 'kernel', errno: 2, family: name });
    }
    throw e;
  }
  const m = replies.find((r) => r.type === GENL_ID_CTRL);
  if (m === undefined) throw new DuocellError('DC_NETLINK_MALFORMED', `nlctrl sent no family description for ${name}`);
  return decodeFamily(m.payload);
}
