import { DuocellError } from '../../core/errors.js';
import type { Tlv } from './frame.js';
import { messageByKey, NAS_RADIO_INTERFACE } from './messages.js';
import { decodeTlvList, type QmiObject, type QmiValue } from './schema.js';

/**
 * Typed decoders for the QMI replies and indications the modem manager acts on. Each one reads
 * a message's TLVs through its description in messages.ts (the one generic TLV reader) and then
 * checks the shape it hands on, so nobody downstream casts a QmiObject:
 *
 *   TLVs ──decodeTlvList(def.output)──► QmiObject ──checked reads──► typed reply
 *
 * Errors, all local and stable (the fuzz test keeps them to this set):
 *   DC_QMI_TLV_OVERFLOW   a TLV, or a field inside it, is shorter than its layout (truncated)
 *   DC_QMI_TLV_MISSING    a TLV the caller cannot do without is absent
 *   DC_QMI_FRAME_INVALID  a TLV decodes but its value cannot be right (e.g. IPv6 prefix > 128)
 * The Result TLV (0x02) of a response is not looked at here (the client checks it first).
 * Unknown enum numbers are kept as numbers: newer firmware adds values, and that is no fault.
 */

export const REPLY_ERROR_CODES = ['DC_QMI_TLV_OVERFLOW', 'DC_QMI_TLV_MISSING', 'DC_QMI_FRAME_INVALID'] as const;

const RESULT_TLV = 0x02;

/** The generic decode of `key`'s output TLVs (Result TLV dropped for a response). */
function valuesOf(key: string, tlvs: readonly Tlv[]): QmiObject {
  const def = messageByKey(key);
  if (def === undefined) throw new DuocellError('DC_QMI_UNKNOWN_MESSAGE', `no QMI message described as ${key}`);
  const own = def.indication ? tlvs : tlvs.filter((t) => t.type !== RESULT_TLV);
  return decodeTlvList(def.output, own, `${key}${def.indication ? ' indication' : ' response'}`).values;
}

function invalid(where: string, what: string): DuocellError {
  return new DuocellError('DC_QMI_FRAME_INVALID', `${where}: ${what}`);
}

function missing(where: string, what: string): DuocellError {
  return new DuocellError('DC_QMI_TLV_MISSING', `${where}: ${what} missing`);
}

// checked reads of the generic decoder's output (the schema fixes the shape; these prove it)

function num(v: QmiValue | undefined, where: string): number {
  if (typeof v !== 'number') throw invalid(where, `expected a number, got ${typeof v}`);
  return v;
}

function optNum(v: QmiValue | undefined, where: string): number | undefined {
  return v === undefined ? undefined : num(v, where);
}

function optStr(v: QmiValue | undefined, where: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(where, `expected a string, got ${typeof v}`);
  return v;
}

function obj(v: QmiValue | undefined, where: string): QmiObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(where, 'expected a struct');
  return v;
}

function optObj(v: QmiValue | undefined, where: string): QmiObject | undefined {
  return v === undefined ? undefined : obj(v, where);
}

function arr(v: QmiValue | undefined, where: string): QmiValue[] {
  if (!Array.isArray(v)) throw invalid(where, 'expected an array');
  return v;
}

// ------------------------------------------------------------------------------------------
// CTL

export interface CtlAllocation {
  readonly service: number;
  readonly cid: number;
}

/** CTL Allocate CID response: 0x01 Allocation Info {u8 service, u8 cid} (required). */
export function decodeCtlAllocateCid(tlvs: readonly Tlv[]): CtlAllocation {
  const w = 'CTL Allocate CID';
  const v = valuesOf('ctl.allocateCid', tlvs);
  const a = optObj(v.allocation_info, `${w} allocation info`);
  if (a === undefined) throw missing(w, 'TLV 0x01 Allocation Info');
  return { service: num(a.service, `${w} service`), cid: num(a.cid, `${w} cid`) };
}

// ------------------------------------------------------------------------------------------
// DMS

export interface DmsDeviceInfo {
  readonly model?: string;
  readonly revision?: string;
  readonly imei?: string;
}

export function decodeDmsModel(tlvs: readonly Tlv[]): string | undefined {
  return optStr(valuesOf('dms.getModel', tlvs).model, 'DMS Get Model');
}

export function decodeDmsRevision(tlvs: readonly Tlv[]): string | undefined {
  return optStr(valuesOf('dms.getRevision', tlvs).revision, 'DMS Get Revision');
}

export function decodeDmsIds(tlvs: readonly Tlv[]): { readonly imei?: string } {
  const imei = optStr(valuesOf('dms.getIds', tlvs).imei, 'DMS Get IDs IMEI');
  return imei === undefined ? {} : { imei };
}

/** DMS Get Operating Mode: 0x01 mode (u8; 0 online). Undefined when the TLV is absent. */
export function decodeDmsOperatingMode(tlvs: readonly Tlv[]): number | undefined {
  return optNum(valuesOf('dms.getOperatingMode', tlvs).mode, 'DMS Get Operating Mode');
}

/** PIN state numbers shared by DMS UIM Get PIN Status and UIM Get Card Status. */
export const PIN_STATE = { notInitialized: 0, enabledNotVerified: 1, enabledVerified: 2, disabled: 3, blocked: 4, permanentlyBlocked: 5 } as const;

export interface PinStatus {
  /** DMS/UIM PIN state number (PIN_STATE). */
  readonly status: number;
  readonly verifyRetries: number;
  readonly unblockRetries: number;
}

function pinStatus(v: QmiValue | undefined, where: string): PinStatus | undefined {
  const p = optObj(v, where);
  if (p === undefined) return undefined;
  return { status: num(p.current_status, `${where} status`), verifyRetries: num(p.verify_retries_left, `${where} retries`), unblockRetries: num(p.unblock_retries_left, `${where} unblock retries`) };
}

/** DMS UIM Get PIN Status: 0x11 PIN1, 0x12 PIN2 (each optional: a SIM without PIN reports none). */
export function decodeDmsPinStatus(tlvs: readonly Tlv[]): { readonly pin1?: PinStatus; readonly pin2?: PinStatus } {
  const v = valuesOf('dms.uimGetPinStatus', tlvs);
  const pin1 = pinStatus(v.pin1_status, 'DMS UIM Get PIN Status PIN1');
  const pin2 = pinStatus(v.pin2_status, 'DMS UIM Get PIN Status PIN2');
  return { ...(pin1 ? { pin1 } : {}), ...(pin2 ? { pin2 } : {}) };
}

/** Retries left after a failed verify: DMS 0x10 Pin Retries Status or UIM 0x10 Retries Remaining. */
export function decodePinRetries(key: 'dms.uimVerifyPin' | 'uim.verifyPin', tlvs: readonly Tlv[]): { readonly verifyRetries?: number; readonly unblockRetries?: number } {
  const v = valuesOf(key, tlvs);
  const r = optObj(key === 'dms.uimVerifyPin' ? v.pin_retries_status : v.retries_remaining, `${key} retries`);
  if (r === undefined) return {};
  return { verifyRetries: num(r.verify_retries_left, `${key} verify retries`), unblockRetries: num(r.unblock_retries_left, `${key} unblock retries`) };
}

export const DATA_FORMAT = { '802-3': 1, 'raw-ip': 2 } as const;

/** WDA Set Data Format response: 0x11 link layer protocol (1 802.3, 2 raw IP), if the modem says. */
export function decodeWdaDataFormat(tlvs: readonly Tlv[]): { readonly linkLayer?: number } {
  const l = optNum(valuesOf('wda.setDataFormat', tlvs).link_layer_protocol, 'WDA Set Data Format link layer');
  return l === undefined ? {} : { linkLayer: l };
}

// ------------------------------------------------------------------------------------------
// UIM

export const UIM_CARD_PRESENT = 1;

export interface UimApplication {
  readonly pin1: PinStatus;
}

export interface UimCard {
  /** 0 absent, 1 present, 2 error */
  readonly state: number;
  readonly applications: readonly UimApplication[];
}

/** UIM Get Card Status: 0x10 Card Status (cards, each with its applications' PIN1 state). */
export function decodeUimCardStatus(tlvs: readonly Tlv[]): { readonly cards: readonly UimCard[] } {
  const w = 'UIM Get Card Status';
  const cs = optObj(valuesOf('uim.getCardStatus', tlvs).card_status, w);
  if (cs === undefined) return { cards: [] };
  const cards = arr(cs.cards, `${w} cards`).map((c, i) => {
    const card = obj(c, `${w} card ${i}`);
    const applications = arr(card.applications, `${w} card ${i} applications`).map((a, j) => {
      const app = obj(a, `${w} card ${i} application ${j}`);
      const at = `${w} card ${i} application ${j}`;
      return { pin1: { status: num(app.pin1_state, `${at} PIN1 state`), verifyRetries: num(app.pin1_retries, `${at} PIN1 retries`), unblockRetries: num(app.puk1_retries, `${at} PUK1 retries`) } };
    });
    return { state: num(card.card_state, `${w} card ${i} state`), applications };
  });
  return { cards };
}

// ------------------------------------------------------------------------------------------
// NAS

/** NAS registration state numbers (Serving System TLV 0x01). */
export const NAS_REG = { notRegistered: 0, registered: 1, searching: 2, denied: 3, unknown: 4 } as const;

export interface NasServingSystem {
  /** NAS_REG number */
  readonly registrationState: number;
  readonly registered: boolean;
  readonly csAttach: number;
  readonly psAttach: number;
  /** Radio interfaces in use, by libqmi nickname ('lte', '5gnr', …; 'unknown' for new numbers). */
  readonly radioInterfaces: readonly string[];
  /** Roaming Indicator TLV 0x10: true when 0 ("on"). */
  readonly roaming: boolean;
  readonly plmn?: { readonly mcc: number; readonly mnc: number; readonly description: string };
  readonly lac?: number;
  readonly cellId?: number;
}

/**
 * NAS Get Serving System response and Serving System indication (same TLVs). Undefined when
 * TLV 0x01 (Serving System) is absent: such a message says nothing about registration.
 */
export function decodeNasServingSystem(tlvs: readonly Tlv[], indication = false): NasServingSystem | undefined {
  const w = indication ? 'NAS Serving System indication' : 'NAS Get Serving System';
  const v = valuesOf(indication ? 'nas.servingSystemIndication' : 'nas.getServingSystem', tlvs);
  const ss = optObj(v.serving_system, `${w} serving system`);
  if (ss === undefined) return undefined;
  const registrationState = num(ss.registration_state, `${w} registration state`);
  const radioInterfaces = arr(ss.radio_interfaces, `${w} radio interfaces`).map((x) => (NAS_RADIO_INTERFACE as Record<number, string>)[num(x, `${w} radio interface`)] ?? 'unknown');
  const p = optObj(v.current_plmn, `${w} current PLMN`);
  const plmn = p === undefined ? undefined : { mcc: num(p.mcc, `${w} MCC`), mnc: num(p.mnc, `${w} MNC`), description: optStr(p.description, `${w} PLMN description`) ?? '' };
  const lac = optNum(v.lac_3gpp, `${w} LAC`);
  const cellId = optNum(v.cid_3gpp, `${w} CID`);
  return {
    registrationState,
    registered: registrationState === NAS_REG.registered,
    csAttach: num(ss.cs_attach_state, `${w} CS attach`),
    psAttach: num(ss.ps_attach_state, `${w} PS attach`),
    radioInterfaces,
    roaming: optNum(v.roaming_indicator, `${w} roaming indicator`) === 0,
    ...(plmn ? { plmn } : {}),
    ...(lac === undefined ? {} : { lac }),
    ...(cellId === undefined ? {} : { cellId }),
  };
}

export interface NasSignalInfo {
  /** dBm / dB as the modem gives them; SNR in tenths of dB as on the wire. */
  readonly lte?: { readonly rssi: number; readonly rsrq: number; readonly rsrp: number; readonly snrTenths: number };
  readonly nr5g?: { readonly rsrp: number; readonly snrTenths: number };
}

/** NAS Get Signal Info response and Signal Info indication: 0x14 LTE, 0x17 5G NR. */
export function decodeNasSignalInfo(tlvs: readonly Tlv[], indication = false): NasSignalInfo {
  const w = indication ? 'NAS Signal Info indication' : 'NAS Get Signal Info';
  const v = valuesOf(indication ? 'nas.signalInfoIndication' : 'nas.getSignalInfo', tlvs);
  const l = optObj(v.lte_signal_strength, `${w} LTE`);
  const n = optObj(v['5g_signal_strength'], `${w} 5G`);
  return {
    ...(l ? { lte: { rssi: num(l.rssi, `${w} LTE RSSI`), rsrq: num(l.rsrq, `${w} LTE RSRQ`), rsrp: num(l.rsrp, `${w} LTE RSRP`), snrTenths: num(l.snr, `${w} LTE SNR`) } } : {}),
    ...(n ? { nr5g: { rsrp: num(n.rsrp, `${w} 5G RSRP`), snrTenths: num(n.snr, `${w} 5G SNR`) } } : {}),
  };
}

// ------------------------------------------------------------------------------------------
// WDS

export const WDS_STATUS = { disconnected: 1, connected: 2, suspended: 3, authenticating: 4 } as const;

export interface WdsStartNetwork {
  readonly packetDataHandle?: number;
  readonly callEndReason?: number;
  readonly verbose?: { readonly type: number; readonly reason: number };
}

/** WDS Start Network response (also a failed one): 0x01 handle, 0x10 call end reason, 0x11 verbose. */
export function decodeWdsStartNetwork(tlvs: readonly Tlv[]): WdsStartNetwork {
  const w = 'WDS Start Network';
  const v = valuesOf('wds.startNetwork', tlvs);
  const h = optNum(v.packet_data_handle, `${w} handle`);
  const c = optNum(v.call_end_reason, `${w} call end reason`);
  const vb = optObj(v.verbose_call_end_reason, `${w} verbose call end reason`);
  return {
    ...(h === undefined ? {} : { packetDataHandle: h }),
    ...(c === undefined ? {} : { callEndReason: c }),
    ...(vb ? { verbose: { type: num(vb.type, `${w} verbose type`), reason: num(vb.reason, `${w} verbose reason`) } } : {}),
  };
}

/** WDS Get Packet Service Status response: 0x01 connection status (undefined when absent: not connected). */
export function decodeWdsPacketServiceStatus(tlvs: readonly Tlv[]): number | undefined {
  return optNum(valuesOf('wds.getPacketServiceStatus', tlvs).connection_status, 'WDS Get Packet Service Status');
}

export interface WdsPacketServiceIndication {
  readonly status: number;
  readonly reconfigurationRequired: boolean;
  readonly callEndReason?: number;
}

/** WDS Packet Service Status indication. Undefined without TLV 0x01 (nothing to act on). */
export function decodeWdsPacketServiceIndication(tlvs: readonly Tlv[]): WdsPacketServiceIndication | undefined {
  const w = 'WDS Packet Service Status indication';
  const v = valuesOf('wds.packetServiceStatusIndication', tlvs);
  const cs = optObj(v.connection_status, `${w} connection status`);
  if (cs === undefined) return undefined;
  const c = optNum(v.call_end_reason, `${w} call end reason`);
  return { status: num(cs.status, `${w} status`), reconfigurationRequired: num(cs.reconfiguration_required, `${w} reconfiguration`) !== 0, ...(c === undefined ? {} : { callEndReason: c }) };
}
