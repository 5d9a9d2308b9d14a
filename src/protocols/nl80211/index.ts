import { DuocellError } from '../../core/errors.js';
import { attr, Attrs, decodeGenl, macToString, type AttrOut } from '../netlink/index.js';

/**
 * nl80211 (generic netlink family "nl80211"), pure: the parts duocell reads — interfaces,
 * stations (link quality of our uplink in station mode; the UEs we serve in AP mode) and scan
 * results. Numbers from include/uapi/linux/nl80211.h; checked against the captured vectors in
 * /work/shared/vectors (pyroute2 and wl-nl80211 test captures).
 */

export const NL80211_NAME = 'nl80211';

export const Cmd = {
  GET_WIPHY: 1,
  GET_INTERFACE: 5,
  NEW_INTERFACE: 7,
  DEL_INTERFACE: 8,
  GET_STATION: 17,
  NEW_STATION: 19,
  DEL_STATION: 20,
  GET_SCAN: 32,
  TRIGGER_SCAN: 33,
  NEW_SCAN_RESULTS: 34,
  SCAN_ABORTED: 35,
  AUTHENTICATE: 37,
  ASSOCIATE: 38,
  DEAUTHENTICATE: 39,
  DISASSOCIATE: 40,
  CONNECT: 46,
  ROAM: 47,
  DISCONNECT: 48,
} as const;

/** The multicast group of connection events (authenticate, associate, connect, disconnect…). */
export const NL80211_MLME_GROUP = 'mlme';

export const Attr = {
  WIPHY: 1,
  WIPHY_NAME: 2,
  IFINDEX: 3,
  IFNAME: 4,
  IFTYPE: 5,
  MAC: 6,
  STA_INFO: 21,
  WIPHY_FREQ: 38,
  SCAN_FREQUENCIES: 44,
  SCAN_SSIDS: 45,
  GENERATION: 46,
  BSS: 47,
  FRAME: 51,
  SSID: 52,
  REASON_CODE: 54,
  TIMED_OUT: 65,
  DISCONNECTED_BY_AP: 71,
  STATUS_CODE: 72,
  WIPHY_TX_POWER_LEVEL: 98,
  WDEV: 153,
  SCAN_FLAGS: 158,
  CHANNEL_WIDTH: 159,
  CENTER_FREQ1: 160,
} as const;

export const BssAttr = {
  BSSID: 1,
  FREQUENCY: 2,
  TSF: 3,
  BEACON_INTERVAL: 4,
  CAPABILITY: 5,
  INFORMATION_ELEMENTS: 6,
  SIGNAL_MBM: 7,
  SIGNAL_UNSPEC: 8,
  STATUS: 9,
  SEEN_MS_AGO: 10,
  BEACON_IES: 11,
  CHAN_WIDTH: 12,
  BEACON_TSF: 13,
  PRESP_DATA: 14,
  LAST_SEEN_BOOTTIME: 15,
  FREQUENCY_OFFSET: 20,
  USE_FOR: 23,
} as const;

export const StaAttr = {
  INACTIVE_TIME: 1,
  RX_BYTES: 2,
  TX_BYTES: 3,
  SIGNAL: 7,
  TX_BITRATE: 8,
  RX_PACKETS: 9,
  TX_PACKETS: 10,
  TX_RETRIES: 11,
  TX_FAILED: 12,
  SIGNAL_AVG: 13,
  RX_BITRATE: 14,
  BSS_PARAM: 15,
  CONNECTED_TIME: 16,
  STA_FLAGS: 17,
  BEACON_LOSS: 18,
  RX_BYTES64: 23,
  TX_BYTES64: 24,
  CHAIN_SIGNAL: 25,
  CHAIN_SIGNAL_AVG: 26,
  EXPECTED_THROUGHPUT: 27,
  BEACON_SIGNAL_AVG: 30,
  ACK_SIGNAL: 34,
} as const;

export const RateAttr = {
  BITRATE: 1,
  MCS: 2,
  WIDTH_40: 3,
  SHORT_GI: 4,
  BITRATE32: 5,
  VHT_MCS: 6,
  VHT_NSS: 7,
  WIDTH_80: 8,
  WIDTH_80P80: 9,
  WIDTH_160: 10,
  HE_MCS: 13,
  HE_NSS: 14,
  WIDTH_320: 18,
  EHT_MCS: 19,
  EHT_NSS: 20,
} as const;

const IFTYPES = ['unspecified', 'adhoc', 'station', 'ap', 'ap_vlan', 'wds', 'monitor', 'mesh_point', 'p2p_client', 'p2p_go', 'p2p_device', 'ocb', 'nan'] as const;
export type IfType = (typeof IFTYPES)[number] | 'unknown';

function malformed(message: string): DuocellError {
  return new DuocellError('DC_NETLINK_MALFORMED', message, { origin: 'local' });
}

/** u64 attributes (WDEV, TSF) as numbers when exact, else as decimal strings. */
function u64(a: Attrs, t: number): number | string | undefined {
  const v = a.u64(t);
  if (v === undefined) return undefined;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

// ---------------------------------------------------------------------------------------------
// Requests (genl attributes; the driver adds the headers)

export const encode = {
  getInterface(ifindex?: number): AttrOut[] {
    return ifindex === undefined ? [] : [attr.u32(Attr.IFINDEX, ifindex)];
  },
  /** One station by MAC (station mode: the AP we are associated to), or all (dump, AP mode). */
  getStation(ifindex: number, mac?: string): AttrOut[] {
    const out = [attr.u32(Attr.IFINDEX, ifindex)];
    if (mac !== undefined) out.push(attr.binary(Attr.MAC, macToBuffer(mac)));
    return out;
  },
  getScan(ifindex: number): AttrOut[] {
    return [attr.u32(Attr.IFINDEX, ifindex)];
  },
};

export function macToBuffer(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new DuocellError('DC_NETLINK_INVALID_ARG', `not a MAC address: ${JSON.stringify(mac)}`, { origin: 'local' });
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

// ---------------------------------------------------------------------------------------------
// Interfaces

export interface WlanInterface {
  readonly ifindex: number;
  readonly ifname: string;
  readonly wiphy?: number;
  readonly iftype: IfType;
  readonly wdev?: number | string;
  readonly mac?: string;
  readonly generation?: number;
  readonly ssid?: string;
  readonly frequencyMhz?: number;
  readonly txPowerDbm?: number;
}

export function decodeInterface(payload: Buffer): WlanInterface {
  const g = decodeGenl(payload);
  const a = Attrs.decode(g.attrs);
  const t = a.u32(Attr.IFTYPE);
  const mac = a.binary(Attr.MAC, 6);
  const ssid = a.binary(Attr.SSID);
  const wiphy = a.u32(Attr.WIPHY);
  const wdev = u64(a, Attr.WDEV);
  const gen = a.u32(Attr.GENERATION);
  const freq = a.u32(Attr.WIPHY_FREQ);
  const txp = a.u32(Attr.WIPHY_TX_POWER_LEVEL);
  return {
    ifindex: a.need(Attr.IFINDEX, a.u32),
    ifname: a.need(Attr.IFNAME, a.string),
    iftype: t === undefined ? 'unknown' : (IFTYPES[t] ?? 'unknown'),
    ...(wiphy === undefined ? {} : { wiphy }),
    ...(wdev === undefined ? {} : { wdev }),
    ...(mac === undefined ? {} : { mac: macToString(mac) }),
    ...(gen === undefined ? {} : { generation: gen }),
    ...(ssid === undefined ? {} : { ssid: ssid.toString('utf8') }),
    ...(freq === undefined ? {} : { frequencyMhz: freq }),
    ...(txp === undefined ? {} : { txPowerDbm: txp / 100 }),
  };
}

// ---------------------------------------------------------------------------------------------
// Stations

export interface Bitrate {
  /** Mbit/s (the kernel reports units of 100 kbit/s). */
  readonly mbps: number;
  readonly mcs?: number;
  readonly vhtMcs?: number;
  readonly heMcs?: number;
  readonly nss?: number;
  readonly widthMhz?: number;
  readonly shortGi?: boolean;
}

export interface StationInfo {
  readonly ifindex: number;
  readonly mac: string;
  readonly generation?: number;
  readonly inactiveMs?: number;
  readonly connectedSeconds?: number;
  readonly rxBytes?: number;
  readonly txBytes?: number;
  readonly rxPackets?: number;
  readonly txPackets?: number;
  readonly txRetries?: number;
  readonly txFailed?: number;
  readonly beaconLoss?: number;
  readonly signalDbm?: number;
  readonly signalAvgDbm?: number;
  readonly chainSignalDbm?: number[];
  readonly ackSignalDbm?: number;
  readonly txBitrate?: Bitrate;
  readonly rxBitrate?: Bitrate;
  readonly expectedThroughputKbps?: number;
}

function decodeRate(a: Attrs | undefined): Bitrate | undefined {
  if (a === undefined) return undefined;
  const r32 = a.u32(RateAttr.BITRATE32);
  const r16 = a.u16(RateAttr.BITRATE);
  const units = r32 ?? r16;
  if (units === undefined) return undefined;
  const width = a.flag(RateAttr.WIDTH_320) ? 320 : a.flag(RateAttr.WIDTH_160) || a.flag(RateAttr.WIDTH_80P80) ? 160 : a.flag(RateAttr.WIDTH_80) ? 80 : a.flag(RateAttr.WIDTH_40) ? 40 : undefined;
  const mcs = a.u8(RateAttr.MCS);
  const vht = a.u8(RateAttr.VHT_MCS);
  const he = a.u8(RateAttr.HE_MCS);
  const nss = a.u8(RateAttr.EHT_NSS) ?? a.u8(RateAttr.HE_NSS) ?? a.u8(RateAttr.VHT_NSS);
  return {
    mbps: units / 10,
    ...(mcs === undefined ? {} : { mcs }),
    ...(vht === undefined ? {} : { vhtMcs: vht }),
    ...(he === undefined ? {} : { heMcs: he }),
    ...(nss === undefined ? {} : { nss }),
    ...(width === undefined ? {} : { widthMhz: width }),
    ...(a.flag(RateAttr.SHORT_GI) ? { shortGi: true } : {}),
  };
}

export function decodeStation(payload: Buffer): StationInfo {
  const g = decodeGenl(payload);
  if (g.cmd !== Cmd.NEW_STATION) throw malformed(`nl80211 station message with command ${g.cmd}`);
  const a = Attrs.decode(g.attrs);
  const mac = a.need(Attr.MAC, (t) => a.binary(t, 6));
  const s = a.nested(Attr.STA_INFO);
  const gen = a.u32(Attr.GENERATION);
  const base = { ifindex: a.need(Attr.IFINDEX, a.u32), mac: macToString(mac), ...(gen === undefined ? {} : { generation: gen }) };
  if (s === undefined) return base;
  const chain = s.nested(StaAttr.CHAIN_SIGNAL)?.list.map((x) => (x.value.length === 1 ? x.value.readInt8(0) : NaN)).filter((x) => !Number.isNaN(x));
  const tx = decodeRate(s.nested(StaAttr.TX_BITRATE));
  const rx = decodeRate(s.nested(StaAttr.RX_BITRATE));
  const o: Record<string, unknown> = { ...base };
  const put = (k: string, v: unknown): void => {
    if (v !== undefined) o[k] = v;
  };
  put('inactiveMs', s.u32(StaAttr.INACTIVE_TIME));
  put('connectedSeconds', s.u32(StaAttr.CONNECTED_TIME));
  put('rxBytes', s.u64n(StaAttr.RX_BYTES64) ?? s.u32(StaAttr.RX_BYTES));
  put('txBytes', s.u64n(StaAttr.TX_BYTES64) ?? s.u32(StaAttr.TX_BYTES));
  put('rxPackets', s.u32(StaAttr.RX_PACKETS));
  put('txPackets', s.u32(StaAttr.TX_PACKETS));
  put('txRetries', s.u32(StaAttr.TX_RETRIES));
  put('txFailed', s.u32(StaAttr.TX_FAILED));
  put('beaconLoss', s.u32(StaAttr.BEACON_LOSS));
  put('signalDbm', s.s8(StaAttr.SIGNAL));
  put('signalAvgDbm', s.s8(StaAttr.SIGNAL_AVG));
  put('chainSignalDbm', chain);
  put('ackSignalDbm', s.s8(StaAttr.ACK_SIGNAL));
  put('txBitrate', tx);
  put('rxBitrate', rx);
  put('expectedThroughputKbps', s.u32(StaAttr.EXPECTED_THROUGHPUT));
  return o as unknown as StationInfo;
}

// ---------------------------------------------------------------------------------------------
// Scan results

export interface InformationElement {
  readonly id: number;
  readonly data: Buffer;
}

export interface Bss {
  readonly ifindex: number;
  readonly generation?: number;
  readonly wdev?: number | string;
  readonly bssid: string;
  readonly frequencyMhz?: number;
  readonly tsf?: number | string;
  readonly beaconTsf?: number | string;
  readonly beaconInterval?: number;
  readonly capability?: number;
  readonly signalDbm?: number;
  /** SIGNAL_UNSPEC: 0-100, for drivers without dBm. */
  readonly signalPercent?: number;
  readonly seenMsAgo?: number;
  readonly status?: 'authenticated' | 'associated' | 'ibss_joined';
  readonly ssid?: string;
  readonly channel?: number;
  readonly chanWidth?: number;
  readonly useFor?: number;
  readonly ies: InformationElement[];
}

/** Split 802.11 information elements (id u8, len u8, data). Truncated trailing element: malformed. */
export function decodeIes(b: Buffer): InformationElement[] {
  const out: InformationElement[] = [];
  let off = 0;
  while (off < b.length) {
    if (b.length - off < 2) throw malformed('information element header cut short');
    const id = b[off]!;
    const len = b[off + 1]!;
    if (off + 2 + len > b.length) throw malformed(`information element ${id} length ${len} runs past the end`);
    out.push({ id, data: b.subarray(off + 2, off + 2 + len) });
    off += 2 + len;
  }
  return out;
}

const BSS_STATUS = ['authenticated', 'associated', 'ibss_joined'] as const;

export function decodeScanResult(payload: Buffer): Bss {
  const g = decodeGenl(payload);
  if (g.cmd !== Cmd.NEW_SCAN_RESULTS) throw malformed(`nl80211 scan message with command ${g.cmd}`);
  const a = Attrs.decode(g.attrs);
  const b = a.nested(Attr.BSS);
  if (b === undefined) throw malformed('scan result without NL80211_ATTR_BSS');
  const iesRaw = b.binary(BssAttr.INFORMATION_ELEMENTS) ?? b.binary(BssAttr.BEACON_IES);
  const ies = iesRaw === undefined ? [] : decodeIes(iesRaw);
  const ssidIe = ies.find((e) => e.id === 0);
  const ds = ies.find((e) => e.id === 3 && e.data.length >= 1);
  const ht = ies.find((e) => e.id === 61 && e.data.length >= 1);
  const mbm = b.s32(BssAttr.SIGNAL_MBM);
  const status = b.u32(BssAttr.STATUS);
  const o: Record<string, unknown> = { ifindex: a.need(Attr.IFINDEX, a.u32), bssid: macToString(b.need(BssAttr.BSSID, (t) => b.binary(t, 6))) };
  const put = (k: string, v: unknown): void => {
    if (v !== undefined) o[k] = v;
  };
  put('generation', a.u32(Attr.GENERATION));
  put('wdev', u64(a, Attr.WDEV));
  put('frequencyMhz', b.u32(BssAttr.FREQUENCY));
  put('tsf', u64(b, BssAttr.TSF));
  put('beaconTsf', u64(b, BssAttr.BEACON_TSF));
  put('beaconInterval', b.u16(BssAttr.BEACON_INTERVAL));
  put('capability', b.u16(BssAttr.CAPABILITY));
  put('signalDbm', mbm === undefined ? undefined : mbm / 100);
  put('signalPercent', b.u8(BssAttr.SIGNAL_UNSPEC));
  put('seenMsAgo', b.u32(BssAttr.SEEN_MS_AGO));
  put('status', status === undefined ? undefined : BSS_STATUS[status]);
  put('ssid', ssidIe?.data.toString('utf8'));
  put('channel', ds?.data[0] ?? ht?.data[0]);
  put('chanWidth', b.u32(BssAttr.CHAN_WIDTH));
  put('useFor', b.u32(BssAttr.USE_FOR));
  o.ies = ies;
  return o as unknown as Bss;
}

// ---------------------------------------------------------------------------------------------
// Connection events (group "mlme")

export type LinkEventKind = 'authenticate' | 'associate' | 'connect' | 'roam' | 'deauthenticate' | 'disassociate' | 'disconnect';

export interface LinkEvent {
  readonly kind: LinkEventKind;
  readonly ifindex: number;
  /** The link is lost (deauthenticate, disassociate, disconnect) or gained. */
  readonly lost: boolean;
  /** 802.11 reason code (losses): from the frame for (de)authentication/disassociation, else the attribute. */
  readonly reasonCode?: number;
  /** 802.11 status code (connect): 0 is success. */
  readonly statusCode?: number;
  /** DISCONNECT: the AP ended it (else we did). */
  readonly byAp?: boolean;
  readonly timedOut?: boolean;
}

const EVENT_KINDS: Record<number, LinkEventKind> = {
  [Cmd.AUTHENTICATE]: 'authenticate',
  [Cmd.ASSOCIATE]: 'associate',
  [Cmd.CONNECT]: 'connect',
  [Cmd.ROAM]: 'roam',
  [Cmd.DEAUTHENTICATE]: 'deauthenticate',
  [Cmd.DISASSOCIATE]: 'disassociate',
  [Cmd.DISCONNECT]: 'disconnect',
};

/**
 * One mlme-group notification, or undefined for commands duocell does not follow (e.g.
 * UNPROT_DEAUTHENTICATE, a sent frame's TX status). Required: IFINDEX.
 * For deauthentication/disassociation the kernel passes the management frame: 24-octet header,
 * then the 2-octet reason code (little-endian).
 */
export function decodeLinkEvent(payload: Buffer): LinkEvent | undefined {
  const g = decodeGenl(payload);
  const kind = EVENT_KINDS[g.cmd];
  if (kind === undefined) return undefined;
  const a = Attrs.decode(g.attrs);
  const ifindex = a.need(Attr.IFINDEX, a.u32);
  const lost = kind === 'deauthenticate' || kind === 'disassociate' || kind === 'disconnect';
  const o: Record<string, unknown> = { kind, ifindex, lost };
  const frame = a.binary(Attr.FRAME);
  if (lost && frame !== undefined && frame.length >= 26) o.reasonCode = frame.readUInt16LE(24);
  const reason = a.u16(Attr.REASON_CODE);
  if (reason !== undefined && o.reasonCode === undefined) o.reasonCode = reason;
  const status = a.u16(Attr.STATUS_CODE);
  if (status !== undefined) o.statusCode = status;
  if (kind === 'disconnect') o.byAp = a.flag(Attr.DISCONNECTED_BY_AP);
  if (a.flag(Attr.TIMED_OUT)) o.timedOut = true;
  return o as unknown as LinkEvent;
}
