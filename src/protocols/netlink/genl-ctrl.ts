import { DuocellError } from '../../core/errors.js';
import { attr, Attrs, type AttrOut } from './attrs.js';
import { decodeGenl } from './message.js';

/**
 * The generic-netlink controller (nlctrl, fixed id 0x10): resolves a family name into its
 * numeric id, version and multicast groups. Pure encode/decode.
 */

export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;

export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_HDRSIZE = 4;
export const CTRL_ATTR_MAXATTR = 5;
export const CTRL_ATTR_OPS = 6;
export const CTRL_ATTR_MCAST_GROUPS = 7;
export const CTRL_ATTR_MCAST_GRP_NAME = 1;
export const CTRL_ATTR_MCAST_GRP_ID = 2;

const NAMES: Record<number, string> = {
  1: 'CTRL_ATTR_FAMILY_ID', 2: 'CTRL_ATTR_FAMILY_NAME', 3: 'CTRL_ATTR_VERSION', 4: 'CTRL_ATTR_HDRSIZE',
  5: 'CTRL_ATTR_MAXATTR', 6: 'CTRL_ATTR_OPS', 7: 'CTRL_ATTR_MCAST_GROUPS',
};

export interface GenlFamily {
  readonly id: number;
  readonly name: string;
  readonly version: number;
  readonly maxAttr: number;
  /** Multicast group name → id. */
  readonly groups: Readonly<Record<string, number>>;
}

export function getFamilyAttrs(name: string): AttrOut[] {
  return [attr.string(CTRL_ATTR_FAMILY_NAME, name)];
}

/** Decode a CTRL_CMD_NEWFAMILY reply payload (genl header onward). */
export function decodeFamily(payload: Buffer): GenlFamily {
  const g = decodeGenl(payload);
  if (g.cmd !== CTRL_CMD_NEWFAMILY) {
    throw new DuocellError('DC_NETLINK_MALFORMED', `nlctrl reply with command ${g.cmd}, expected NEWFAMILY`);
  }
  const a = Attrs.decode(g.attrs, NAMES);
  const groups: Record<string, number> = {};
  const mg = a.nested(CTRL_ATTR_MCAST_GROUPS);
  if (mg !== undefined) {
    for (const entry of mg.list) {
      const e = Attrs.decode(entry.value);
      const gname = e.string(CTRL_ATTR_MCAST_GRP_NAME);
      const gid = e.u32(CTRL_ATTR_MCAST_GRP_ID);
      if (gname !== undefined && gid !== undefined) groups[gname] = gid;
    }
  }
  return {
    id: a.need(CTRL_ATTR_FAMILY_ID, a.u16),
    name: a.need(CTRL_ATTR_FAMILY_NAME, a.string),
    version: a.u32(CTRL_ATTR_VERSION) ?? 1,
    maxAttr: a.u32(CTRL_ATTR_MAXATTR) ?? 0,
    groups,
  };
}
