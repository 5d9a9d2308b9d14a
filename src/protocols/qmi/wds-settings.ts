import { DuocellError } from '../../core/errors.js';
import type { Tlv } from './frame.js';
import { ipv6ToString } from './schema.js';

/**
 * A typed decoder for the answer to WDS Get Current Settings (service 0x01, message 0x002D):
 * what duocell needs to configure the data interface, read straight from the response TLVs
 * (ids and layouts as in libqmi's data/qmi-service-wds.json):
 *
 *   0x14 APN Name                  string (rest of TLV)
 *   0x15 IPv4 Primary DNS          u32, little-endian       0x16 IPv4 Secondary DNS  (same)
 *   0x1E IPv4 Address              u32, little-endian
 *   0x20 IPv4 Gateway Address      u32, little-endian
 *   0x21 IPv4 Gateway Subnet Mask  u32, little-endian (contiguous mask → prefix length)
 *   0x25 IPv6 Address              16 bytes network order + u8 prefix length
 *   0x26 IPv6 Gateway Address      16 bytes network order + u8 prefix length
 *   0x27 IPv6 Primary DNS          16 bytes                 0x28 IPv6 Secondary DNS  (same)
 *   0x29 MTU                       u32, little-endian
 *   0x2B IP Family                 u8: 4 or 6
 *
 * Every TLV is checked for its exact size (DC_QMI_TLV_OVERFLOW names it); values that cannot be
 * right (a non-contiguous mask, a prefix length beyond the family, an MTU outside 68…65535) are
 * refused with DC_QMI_FRAME_INVALID. A family without an address is absent; 0.0.0.0 and :: count
 * as "no value", as the modem sends them for a family that is not up.
 */

export interface WdsIpv4Settings {
  readonly address: string;
  readonly prefixLength: number;
  readonly gateway?: string;
  readonly dns: string[];
}

export interface WdsIpv6Settings {
  readonly address: string;
  readonly prefixLength: number;
  readonly gateway?: string;
  readonly dns: string[];
}

export interface WdsCurrentSettings {
  readonly apn?: string;
  readonly ipFamily?: 4 | 6;
  readonly mtu?: number;
  readonly ipv4?: WdsIpv4Settings;
  readonly ipv6?: WdsIpv6Settings;
}

/** The Requested Settings mask duocell sends: DNS, granted QoS off, IP address, gateway, MTU, family. */
export const WDS_CURRENT_SETTINGS_MASK = 0x0000e310;

const TLV = { apn: 0x14, dns4a: 0x15, dns4b: 0x16, addr4: 0x1e, gw4: 0x20, mask4: 0x21, addr6: 0x25, gw6: 0x26, dns6a: 0x27, dns6b: 0x28, mtu: 0x29, family: 0x2b } as const;
const NAMES: Record<number, string> = {
  0x14: 'APN Name', 0x15: 'IPv4 Primary DNS Address', 0x16: 'IPv4 Secondary DNS Address', 0x1e: 'IPv4 Address',
  0x20: 'IPv4 Gateway Address', 0x21: 'IPv4 Gateway Subnet Mask', 0x25: 'IPv6 Address', 0x26: 'IPv6 Gateway Address',
  0x27: 'IPv6 Primary DNS Address', 0x28: 'IPv6 Secondary DNS Address', 0x29: 'MTU', 0x2b: 'IP Family',
};

function sized(t: Tlv, n: number): Buffer {
  if (t.value.length !== n)
    throw new DuocellError('DC_QMI_TLV_OVERFLOW', `WDS Get Current Settings: TLV 0x${t.type.toString(16)} (${NAMES[t.type]}) has ${t.value.length} bytes, expected ${n}`, { tlv: t.type });
  return t.value;
}

function invalid(what: string): DuocellError {
  return new DuocellError('DC_QMI_FRAME_INVALID', `WDS Get Current Settings: ${what}`);
}

/** libqmi's IPv4 TLVs: a u32 in little-endian whose value, read as a number, is the address. */
function ipv4(t: Tlv): string | undefined {
  const v = sized(t, 4).readUInt32LE(0);
  if (v === 0) return undefined;
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join('.');
}

function ipv6(b: Buffer): string | undefined {
  if (b.every((x) => x === 0)) return undefined;
  return ipv6ToString(b);
}

function maskToPrefix(t: Tlv): number {
  const m = sized(t, 4).readUInt32LE(0);
  const inv = ~m >>> 0;
  // contiguous: the inverted mask is 2^k - 1
  if ((inv & (inv + 1)) !== 0) throw invalid(`subnet mask 0x${m.toString(16).padStart(8, '0')} is not contiguous`);
  return 32 - Math.log2(inv + 1);
}

export function decodeWdsCurrentSettings(tlvs: readonly Tlv[]): WdsCurrentSettings {
  const by = new Map<number, Tlv>();
  for (const t of tlvs) if (!by.has(t.type)) by.set(t.type, t);
  const get = (id: number): Tlv | undefined => by.get(id);
  let apn: string | undefined;
  const apnT = get(TLV.apn);
  if (apnT) apn = apnT.value.toString('latin1');
  let ipFamily: 4 | 6 | undefined;
  const famT = get(TLV.family);
  if (famT) {
    const f = sized(famT, 1)[0]!;
    if (f !== 4 && f !== 6) throw invalid(`IP family ${f} (expected 4 or 6)`);
    ipFamily = f;
  }
  let mtu: number | undefined;
  const mtuT = get(TLV.mtu);
  if (mtuT) {
    const m = sized(mtuT, 4).readUInt32LE(0);
    if (m !== 0) {
      if (m < 68 || m > 65535) throw invalid(`MTU ${m} outside 68…65535`);
      mtu = m;
    }
  }
  let v4: WdsIpv4Settings | undefined;
  const a4 = get(TLV.addr4) === undefined ? undefined : ipv4(get(TLV.addr4)!);
  if (a4 !== undefined) {
    const maskT = get(TLV.mask4);
    const gwT = get(TLV.gw4);
    const gateway = gwT === undefined ? undefined : ipv4(gwT);
    const dns = [get(TLV.dns4a), get(TLV.dns4b)].map((t) => (t === undefined ? undefined : ipv4(t))).filter((x): x is string => x !== undefined);
    v4 = { address: a4, prefixLength: maskT === undefined ? 32 : maskToPrefix(maskT), ...(gateway === undefined ? {} : { gateway }), dns };
  }
  let v6: WdsIpv6Settings | undefined;
  const a6T = get(TLV.addr6);
  if (a6T !== undefined) {
    const b = sized(a6T, 17);
    const address = ipv6(b.subarray(0, 16));
    const prefixLength = b[16]!;
    if (prefixLength > 128) throw invalid(`IPv6 prefix length ${prefixLength}`);
    if (address !== undefined) {
      const gwT = get(TLV.gw6);
      const gateway = gwT === undefined ? undefined : ipv6(sized(gwT, 17).subarray(0, 16));
      if (gwT !== undefined && gwT.value[16]! > 128) throw invalid(`IPv6 gateway prefix length ${gwT.value[16]}`);
      const dns = [get(TLV.dns6a), get(TLV.dns6b)].map((t) => (t === undefined ? undefined : ipv6(sized(t, 16)))).filter((x): x is string => x !== undefined);
      v6 = { address, prefixLength, ...(gateway === undefined ? {} : { gateway }), dns };
    }
  }
  return { ...(apn === undefined ? {} : { apn }), ...(ipFamily === undefined ? {} : { ipFamily }), ...(mtu === undefined ? {} : { mtu }), ...(v4 ? { ipv4: v4 } : {}), ...(v6 ? { ipv6: v6 } : {}) };
}
