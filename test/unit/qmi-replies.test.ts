import t from 'tap';
import { isDuocellError } from '../../src/core/errors.js';
import {
  decodeCtlAllocateCid,
  decodeDmsIds,
  decodeDmsModel,
  decodeDmsOperatingMode,
  decodeDmsPinStatus,
  decodeNasServingSystem,
  decodeNasSignalInfo,
  decodePinRetries,
  decodeUimCardStatus,
  decodeWdaDataFormat,
  decodeWdsPacketServiceIndication,
  decodeWdsPacketServiceStatus,
  decodeWdsStartNetwork,
  encodeIndication,
  encodeResponse,
  decodeBytes,
  REPLY_ERROR_CODES,
  type Tlv,
} from '../../src/protocols/qmi/index.js';
import { DECODERS, fuzz } from '../../bench/fuzz/qmi-replies.js';

/**
 * The typed QMI reply decoders (protocols/qmi/replies.ts): replies built by the generic encoder
 * from libqmi's TLV descriptions, hand-made bytes with a comment per field, and truncated or
 * garbage TLVs, which must give one stable code.
 */

const a = { client: 1, tid: 9 };
const resp = (key: string, values: Record<string, unknown>, error = 0): Tlv[] => decodeBytes(encodeResponse(key, a, values, error)).frame.tlvs;
const ind = (key: string, values: Record<string, unknown>): Tlv[] => decodeBytes(encodeIndication(key, 1, values)).frame.tlvs;
const tlv = (type: number, hex: string): Tlv => ({ type, value: Buffer.from(hex.replace(/\s+/g, ''), 'hex') });

function code(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return isDuocellError(e) ? e.code : `not a DuocellError: ${String(e)}`;
  }
}

t.test('NAS serving system: registered on LTE, home, PLMN, TAC and cell id', async (t) => {
  const ss = decodeNasServingSystem(
    resp('nas.getServingSystem', {
      serving_system: { registration_state: 1, cs_attach_state: 1, ps_attach_state: 1, selected_network: 2, radio_interfaces: [8] },
      roaming_indicator: 1,
      current_plmn: { mcc: 262, mnc: 1, description: 'Telekom.de' },
      lac_3gpp: 0x1a2b,
      cid_3gpp: 0x01b3c4d5,
    }),
  );
  t.same(ss, { registrationState: 1, registered: true, csAttach: 1, psAttach: 1, radioInterfaces: ['lte'], roaming: false, plmn: { mcc: 262, mnc: 1, description: 'Telekom.de' }, lac: 0x1a2b, cellId: 0x01b3c4d5 });
});

t.test('NAS serving system indication, hand-made bytes: not registered, searching, roaming indicator on', async (t) => {
  const tlvs = [
    // 0x01 Serving System: reg state 2 (searching), CS 2 (detached), PS 2, network 2 (3GPP), 1 radio interface: 0x0c (5G NR)
    tlv(0x01, '02 02 02 02 01 0c'),
    // 0x10 Roaming Indicator: 0 (on)
    tlv(0x10, '00'),
  ];
  const ss = decodeNasServingSystem(tlvs, true);
  t.equal(ss?.registered, false);
  t.equal(ss?.registrationState, 2);
  t.same(ss?.radioInterfaces, ['5gnr']);
  t.equal(ss?.roaming, true);
  t.equal(ss?.plmn, undefined);
  t.equal(decodeNasServingSystem([tlv(0x10, '01')], true), undefined, 'no Serving System TLV: says nothing about registration');
  t.same(decodeNasServingSystem([tlv(0x01, '01 01 01 02 01 63')])?.radioInterfaces, ['unknown'], 'an unknown radio interface number is named unknown, not refused');
});

t.test('truncated and garbage TLVs give one stable code each', async (t) => {
  const cut = [tlv(0x01, '01 01 01 02 03 08')]; // says 3 radio interfaces, carries 1
  t.equal(code(() => decodeNasServingSystem(cut)), 'DC_QMI_TLV_OVERFLOW');
  t.equal(code(() => decodeNasServingSystem(cut)), 'DC_QMI_TLV_OVERFLOW', 'the same again');
  t.equal(code(() => decodeNasServingSystem([tlv(0x12, '06 01 01 00 09 41')])), 'DC_QMI_TLV_OVERFLOW', 'PLMN description longer than its TLV');
  t.equal(code(() => decodeNasSignalInfo([tlv(0x14, 'c0 f6 a5')])), 'DC_QMI_TLV_OVERFLOW', 'LTE signal cut after RSRQ');
  t.equal(code(() => decodeDmsPinStatus([tlv(0x11, '01 03')])), 'DC_QMI_TLV_OVERFLOW', 'PIN1 status without unblock retries');
  t.equal(code(() => decodeUimCardStatus([tlv(0x10, 'ff')])), 'DC_QMI_TLV_OVERFLOW', 'card status garbage');
  t.equal(code(() => decodeCtlAllocateCid([tlv(0x01, '01')])), 'DC_QMI_TLV_OVERFLOW', 'allocation info without the cid');
  t.equal(code(() => decodeCtlAllocateCid([])), 'DC_QMI_TLV_MISSING', 'allocation info absent');
  t.equal(code(() => decodeWdsStartNetwork([tlv(0x01, '01 02')])), 'DC_QMI_TLV_OVERFLOW', 'packet data handle of 2 bytes');
  t.equal(code(() => decodeWdsPacketServiceIndication([tlv(0x01, '02')])), 'DC_QMI_TLV_OVERFLOW', 'connection status without the reconfiguration byte');
  t.equal(code(() => decodeWdaDataFormat([tlv(0x11, '02 00')])), 'DC_QMI_TLV_OVERFLOW', 'link layer protocol of 2 bytes');
  t.equal(code(() => decodeDmsOperatingMode([tlv(0x01, '')])), 'DC_QMI_TLV_OVERFLOW', 'empty mode TLV');
  t.ok(REPLY_ERROR_CODES.includes('DC_QMI_TLV_OVERFLOW'));
});

t.test('NAS signal info: LTE and 5G NR, SNR in tenths of a dB', async (t) => {
  const s = decodeNasSignalInfo(resp('nas.getSignalInfo', { lte_signal_strength: { rssi: -64, rsrq: -9, rsrp: -95, snr: 123 }, '5g_signal_strength': { rsrp: -88, snr: 150 } }));
  t.same(s, { lte: { rssi: -64, rsrq: -9, rsrp: -95, snrTenths: 123 }, nr5g: { rsrp: -88, snrTenths: 150 } });
  t.same(decodeNasSignalInfo(ind('nas.signalInfoIndication', {}), true), {}, 'no signal TLVs: nothing');
});

t.test('SIM: DMS PIN status, UIM card status, retries after a wrong PIN', async (t) => {
  t.same(decodeDmsPinStatus(resp('dms.uimGetPinStatus', { pin1_status: { current_status: 1, verify_retries_left: 3, unblock_retries_left: 10 } })), {
    pin1: { status: 1, verifyRetries: 3, unblockRetries: 10 },
  });
  t.same(decodeDmsPinStatus(resp('dms.uimGetPinStatus', {})), {}, 'no PIN TLVs');
  const app = {
    type: 2, state: 7, personalization_state: 0, personalization_feature: 0, personalization_retries: 0, personalization_unblock_retries: 0,
    application_identifier_value: 'a0000000871002', upin_replaces_pin1: 0, pin1_state: 1, pin1_retries: 2, puk1_retries: 10, pin2_state: 1, pin2_retries: 3, puk2_retries: 10,
  };
  const cs = decodeUimCardStatus(
    resp('uim.getCardStatus', {
      card_status: { index_gw_primary: 0, index_1x_primary: 0xffff, index_gw_secondary: 0xffff, index_1x_secondary: 0xffff, cards: [{ card_state: 1, upin_state: 0, upin_retries: 0, upuk_retries: 0, error_code: 0, applications: [app] }] },
    }),
  );
  t.same(cs, { cards: [{ state: 1, applications: [{ pin1: { status: 1, verifyRetries: 2, unblockRetries: 10 } }] }] });
  t.same(decodeUimCardStatus(resp('uim.getCardStatus', {})), { cards: [] });
  t.same(decodePinRetries('dms.uimVerifyPin', resp('dms.uimVerifyPin', { pin_retries_status: { verify_retries_left: 2, unblock_retries_left: 10 } }, 12)), { verifyRetries: 2, unblockRetries: 10 });
  t.same(decodePinRetries('uim.verifyPin', resp('uim.verifyPin', { retries_remaining: { verify_retries_left: 1, unblock_retries_left: 9 } }, 12)), { verifyRetries: 1, unblockRetries: 9 });
  t.same(decodePinRetries('uim.verifyPin', resp('uim.verifyPin', {}, 12)), {});
});

t.test('DMS, CTL, WDA, WDS replies', async (t) => {
  t.equal(decodeDmsModel(resp('dms.getModel', { model: 'RM520N-GL' })), 'RM520N-GL');
  t.same(decodeDmsIds(resp('dms.getIds', { imei: '867698040000001', esn: '0' })), { imei: '867698040000001' });
  t.equal(decodeDmsOperatingMode(resp('dms.getOperatingMode', { mode: 1 })), 1);
  t.equal(decodeDmsOperatingMode(resp('dms.getOperatingMode', {})), undefined);
  t.same(decodeCtlAllocateCid(resp('ctl.allocateCid', { allocation_info: { service: 1, cid: 5 } })), { service: 1, cid: 5 });
  t.same(decodeWdaDataFormat(resp('wda.setDataFormat', { link_layer_protocol: 2 })), { linkLayer: 2 });
  t.same(decodeWdsStartNetwork(resp('wds.startNetwork', { packet_data_handle: 0x8a01 })), { packetDataHandle: 0x8a01 });
  t.same(decodeWdsStartNetwork(resp('wds.startNetwork', { call_end_reason: 3, verbose_call_end_reason: { type: 6, reason: 33 } }, 14)), { callEndReason: 3, verbose: { type: 6, reason: 33 } }, 'a failed start: reasons');
  t.equal(decodeWdsPacketServiceStatus(resp('wds.getPacketServiceStatus', { connection_status: 2 })), 2);
  t.equal(decodeWdsPacketServiceStatus(resp('wds.getPacketServiceStatus', {})), undefined);
  t.same(decodeWdsPacketServiceIndication(ind('wds.packetServiceStatusIndication', { connection_status: { status: 1, reconfiguration_required: 0 }, call_end_reason: 2 })), {
    status: 1,
    reconfigurationRequired: false,
    callEndReason: 2,
  });
  t.equal(decodeWdsPacketServiceIndication(ind('wds.packetServiceStatusIndication', {})), undefined);
});

t.test('every typed decoder takes well-formed replies and refuses bent ones with a reply code (fuzz, 30k)', async (t) => {
  const res = fuzz(30_000, 7);
  t.equal(res.iterations, 30_000);
  t.comment(`outcomes: ${JSON.stringify(res.outcomes)}`);
  const codes = Object.keys(res.outcomes).filter((k) => k.startsWith('DC_'));
  t.ok(codes.every((c) => (REPLY_ERROR_CODES as readonly string[]).includes(c)), `only reply codes: ${codes.join(', ')}`);
  t.ok((res.outcomes.DC_QMI_TLV_OVERFLOW ?? 0) > 1000, `truncation is reached (${res.outcomes.DC_QMI_TLV_OVERFLOW})`);
  t.ok((res.outcomes['ok:well-formed'] ?? 0) > 3000, `well-formed replies decode (${res.outcomes['ok:well-formed']})`);
  t.ok((res.outcomes['ok:bent'] ?? 0) > 1000, `harmless bends decode (${res.outcomes['ok:bent']})`);
  t.equal(DECODERS.length, 18, 'every decoder is in the fuzz list');
});
