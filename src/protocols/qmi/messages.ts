import type { Field, MessageDef, TlvDef } from './schema.js';

/**
 * The QMI messages duocell speaks, as data (names and layouts after libqmi's
 * data/qmi-service-{ctl,dms,nas,wds,uim}.json; field names are libqmi's, snake_case, so a
 * decode prints like libqmi's qmi_message_get_printable_full()).
 */

export const SERVICE = { CTL: 0x00, WDS: 0x01, DMS: 0x02, NAS: 0x03, QOS: 0x04, WMS: 0x05, PDS: 0x06, VOICE: 0x09, UIM: 0x0b, PBM: 0x0c, WDA: 0x1a } as const;

export const SERVICE_NAMES: Readonly<Record<number, string>> = {
  0x00: 'ctl', 0x01: 'wds', 0x02: 'dms', 0x03: 'nas', 0x04: 'qos', 0x05: 'wms', 0x06: 'pds', 0x07: 'auth', 0x08: 'at',
  0x09: 'voice', 0x0a: 'cat2', 0x0b: 'uim', 0x0c: 'pbm', 0x10: 'loc', 0x11: 'sar', 0x14: 'csd', 0x17: 'ts', 0x18: 'tmd',
  0x1a: 'wda', 0x1e: 'csvt', 0x22: 'coex', 0x24: 'pdc', 0x29: 'rfrpe', 0x2a: 'dsd', 0x2b: 'ssctl', 0xe0: 'cat', 0xe1: 'rms', 0xe2: 'oma',
};

/** QMI protocol error numbers (libqmi QmiProtocolError nicks, CamelCase as it prints them). */
export const QMI_ERRORS: Readonly<Record<number, string>> = {
  0: 'None', 1: 'MalformedMessage', 2: 'NoMemory', 3: 'Internal', 4: 'Aborted', 5: 'ClientIdsExhausted',
  6: 'UnabortableTransaction', 7: 'InvalidClientId', 8: 'NoThresholdsProvided', 9: 'InvalidHandle', 10: 'InvalidProfile',
  11: 'InvalidPinId', 12: 'IncorrectPin', 13: 'NoNetworkFound', 14: 'CallFailed', 15: 'OutOfCall', 16: 'NotProvisioned',
  17: 'MissingArgument', 19: 'ArgumentTooLong', 22: 'InvalidTransactionId', 23: 'DeviceInUse', 24: 'NetworkUnsupported',
  25: 'DeviceUnsupported', 26: 'NoEffect', 27: 'NoFreeProfile', 28: 'InvalidPdpType', 29: 'InvalidTechnologyPreference',
  30: 'InvalidProfileType', 31: 'InvalidServiceType', 32: 'InvalidRegisterAction', 33: 'InvalidPsAttachAction',
  34: 'AuthenticationFailed', 35: 'PinBlocked', 36: 'PinAlwaysBlocked', 37: 'UimUninitialized', 41: 'InvalidQosId',
  43: 'InterfaceNotFound', 45: 'InvalidDataFormat', 46: 'GeneralError', 47: 'UnknownError', 48: 'InvalidArgument',
  49: 'InvalidIndex', 50: 'NoEntry', 51: 'DeviceStorageFull', 52: 'DeviceNotReady', 53: 'NetworkNotReady',
  65: 'InsufficientResources', 71: 'InvalidQmiCommand', 68: 'InvalidOperation', 74: 'InvalidTransition', 82: 'InformationUnavailable',
  84: 'SimFileNotFound', 90: 'AccessDenied', 94: 'NotSupported',
};

// ------------------------------------------------------------------------------------------
// enums (libqmi nicknames)

const BOOL = { 0: 'no', 1: 'yes' } as const;
const u8 = (e?: Readonly<Record<number, string>>): Field => (e ? { t: 'u8', enum: e } : { t: 'u8' });
const u16 = (e?: Readonly<Record<number, string>>): Field => (e ? { t: 'u16', enum: e } : { t: 'u16' });
const u32 = (e?: Readonly<Record<number, string>>): Field => (e ? { t: 'u32', enum: e } : { t: 'u32' });
const i8 = (e?: Readonly<Record<number, string>>): Field => (e ? { t: 'i8', enum: e } : { t: 'i8' });
const i16: Field = { t: 'i16' };
const bool: Field = u8(BOOL);
const str: Field = { t: 'string' };
const str8: Field = { t: 'string', prefix: 'u8' };
const struct = (...fields: [string, Field][]): Field => ({ t: 'struct', fields });
const array = (of: Field, count: 'u8' | 'u16' = 'u8'): Field => ({ t: 'array', count, of });
const tlv = (type: number, name: string, title: string, field: Field, mandatory = false): TlvDef => ({ type, name, title, field, ...(mandatory ? { mandatory } : {}) });

export const NAS_RADIO_INTERFACE = { [-1]: 'unknown', 0: 'none', 1: 'cdma-1x', 2: 'cdma-1xevdo', 3: 'amps', 4: 'gsm', 5: 'umts', 8: 'lte', 9: 'td-scdma', 12: '5gnr' } as const;
export const NAS_REGISTRATION_STATE = { 0: 'not-registered', 1: 'registered', 2: 'not-registered-searching', 3: 'registration-denied', 4: 'unknown' } as const;
const NAS_ATTACH = { 0: 'unknown', 1: 'attached', 2: 'detached' } as const;
const NAS_NETWORK_TYPE = { 0: 'unknown', 1: '3gpp2', 2: '3gpp' } as const;
const NAS_ROAMING_INDICATOR = { 0: 'on', 1: 'off' } as const;
const NAS_ROAMING_STATUS = { 0: 'off', 1: 'on', 2: 'blink', 3: 'out-of-neighborhood', 4: 'out-of-building', 5: 'preferred-system', 6: 'available-system', 7: 'alliance-partner', 8: 'premium-partner', 9: 'full-service', 10: 'partial-service', 11: 'banner-on', 12: 'banner-off' } as const;
const NAS_DATA_CAPABILITY = { 0: 'none', 1: 'gprs', 2: 'edge', 3: 'hsdpa', 4: 'hsupa', 5: 'wcdma', 6: 'cdma', 7: 'evdo-rev-0', 8: 'evdo-rev-a', 9: 'gsm', 10: 'evdo-rev-b', 11: 'lte', 12: 'hsdpa-plus', 13: 'dc-hsdpa-plus' } as const;
export const NAS_SERVICE_STATUS = { 0: 'none', 1: 'limited', 2: 'available', 3: 'limited-regional', 4: 'power-save' } as const;
const NAS_SERVICE_CAPABILITY = { 0: 'none', 1: 'cs', 2: 'ps', 3: 'cs-ps', 4: 'camped' } as const;
const NAS_SERVICE_DOMAIN = { 0: 'none', 1: 'cs', 2: 'ps', 3: 'cs-ps', 4: 'unknown' } as const;
const NAS_CALL_BARRING = { 0: 'normal-only', 1: 'emergency-only', 2: 'no-calls', 3: 'all-calls', 0xffffffff: 'unknown' } as const;
const NAS_SIM_REJECT = { 0: 'unavailable', 1: 'available', 2: 'cs-invalid', 3: 'ps-invalid', 4: 'cs-ps-invalid' } as const;
const NAS_VOICE_DOMAIN = { 0: 'none', 1: 'ims', 2: '1x', 3: '3gpp' } as const;
const NAS_REG_RESTRICTION = { 0: 'unrestricted', 1: 'camped-only', 2: 'limited' } as const;
const NAS_LTE_REG_DOMAIN = { 0: 'not-applicable', 1: 'cs-only', 2: 'ps-only', 3: 'cs-ps', 4: 'limited-service' } as const;
const NAS_REJECT_CAUSE = { 0: 'none' } as const;

export const DMS_PIN_STATUS = { 0: 'not-initialized', 1: 'enabled-not-verified', 2: 'enabled-verified', 3: 'disabled', 4: 'blocked', 5: 'permanently-blocked', 6: 'unblocked', 7: 'changed' } as const;
const DMS_PIN_ID = { 1: 'pin', 2: 'pin2' } as const;
export const DMS_OPERATING_MODE = { 0: 'online', 1: 'low-power', 2: 'factory-test', 3: 'offline', 4: 'reset', 5: 'shutting-down', 6: 'persistent-low-power', 7: 'mode-only-low-power' } as const;

export const WDS_CONNECTION_STATUS = { 1: 'disconnected', 2: 'connected', 3: 'suspended', 4: 'authenticating' } as const;
export const WDS_IP_FAMILY = { 4: 'ipv4', 6: 'ipv6', 8: 'unspecified' } as const;
export const WDS_CALL_END_REASON = {
  1: 'generic-unspecified', 2: 'generic-client-end', 3: 'generic-no-service', 4: 'generic-fade', 5: 'generic-release-normal',
  6: 'generic-access-attempt-in-progress', 7: 'generic-access-failure', 8: 'generic-redirection-or-handoff', 9: 'generic-close-in-progress',
  10: 'generic-authentication-failed', 11: 'generic-internal-error',
} as const;
const WDS_VERBOSE_TYPE = { 1: 'mip', 2: 'internal', 3: 'cm', 6: '3gpp', 7: 'ppp', 8: 'ehrpd', 9: 'ipv6' } as const;
const WDS_AUTH = { 0: 'none', 1: 'pap', 2: 'chap', 3: 'both' } as const;
export const WDA_LINK_LAYER = { 0: 'unknown', 1: '802-3', 2: 'raw-ip' } as const;
const WDA_AGGREGATION = { 0: 'disabled', 1: 'tlp', 2: 'qc-ncm', 3: 'mbim', 4: 'rndis', 5: 'qmap', 8: 'qmapv4', 9: 'qmapv5' } as const;

export const UIM_CARD_STATE = { 0: 'absent', 1: 'present', 2: 'error' } as const;
export const UIM_PIN_STATE = { 0: 'not-initialized', 1: 'enabled-not-verified', 2: 'enabled-verified', 3: 'disabled', 4: 'blocked', 5: 'permanently-blocked' } as const;
const UIM_SESSION_TYPE = { 0: 'primary-gw-provisioning', 1: 'primary-1x-provisioning', 2: 'secondary-gw-provisioning', 6: 'card-slot-1' } as const;
const UIM_PIN_ID = { 1: 'pin1', 2: 'pin2', 3: 'upin', 4: 'hiddenkey' } as const;

// ------------------------------------------------------------------------------------------
// shared TLV layouts

const SERVICE_STATUS = struct(['service_status', u8(NAS_SERVICE_STATUS)], ['true_service_status', u8(NAS_SERVICE_STATUS)], ['preferred_data_path', bool]);

const SERVING_SYSTEM_TLVS: TlvDef[] = [
  tlv(0x01, 'serving_system', 'Serving System', struct(
    ['registration_state', u8(NAS_REGISTRATION_STATE)],
    ['cs_attach_state', u8(NAS_ATTACH)],
    ['ps_attach_state', u8(NAS_ATTACH)],
    ['selected_network', u8(NAS_NETWORK_TYPE)],
    ['radio_interfaces', array(i8(NAS_RADIO_INTERFACE))],
  )),
  tlv(0x10, 'roaming_indicator', 'Roaming Indicator', u8(NAS_ROAMING_INDICATOR)),
  tlv(0x11, 'data_service_capability', 'Data Service Capability', array(u8(NAS_DATA_CAPABILITY))),
  tlv(0x12, 'current_plmn', 'Current PLMN', struct(['mcc', u16()], ['mnc', u16()], ['description', str8])),
  tlv(0x15, 'roaming_indicator_list', 'Roaming Indicator List', array(struct(['radio_interface', i8(NAS_RADIO_INTERFACE)], ['roaming_indicator', u8(NAS_ROAMING_INDICATOR)]))),
  tlv(0x1b, 'daylight_saving_time_adjustment_3gpp', 'Daylight Saving Time Adjustment 3GPP', u8()),
  tlv(0x1c, 'lac_3gpp', 'LAC 3GPP', u16()),
  tlv(0x1d, 'cid_3gpp', 'CID 3GPP', u32()),
  tlv(0x21, 'detailed_service_status', 'Detailed Service Status', struct(
    ['status', u8(NAS_SERVICE_STATUS)],
    ['capability', u8(NAS_SERVICE_CAPABILITY)],
    ['hdr_status', u8(NAS_SERVICE_STATUS)],
    ['hdr_hybrid', bool],
    ['forbidden', bool],
  )),
  tlv(0x25, 'call_barring_status', 'Call Barring Status', struct(['cs_status', u32(NAS_CALL_BARRING)], ['ps_status', u32(NAS_CALL_BARRING)])),
  tlv(0x26, 'umts_primary_scrambling_code', 'UMTS Primary Scrambling Code', u16()),
  tlv(0x27, 'mnc_pcs_digit_include_status', 'MNC PCS Digit Include Status', struct(['mcc', u16()], ['mnc', u16()], ['includes_pcs_digit', bool])),
];

const SIGNAL_INFO_TLVS: TlvDef[] = [
  tlv(0x10, 'cdma_signal_strength', 'CDMA Signal Strength', struct(['rssi', i8()], ['ecio', i16])),
  tlv(0x11, 'hdr_signal_strength', 'HDR Signal Strength', struct(['rssi', i8()], ['ecio', i16], ['sinr', u8()], ['io', { t: 'i32' }])),
  tlv(0x12, 'gsm_signal_strength', 'GSM Signal Strength', i8()),
  tlv(0x13, 'wcdma_signal_strength', 'WCDMA Signal Strength', struct(['rssi', i8()], ['ecio', i16])),
  tlv(0x14, 'lte_signal_strength', 'LTE Signal Strength', struct(['rssi', i8()], ['rsrq', i8()], ['rsrp', i16], ['snr', i16])),
  tlv(0x15, 'tdma_signal_strength', 'TDMA Signal Strength', i8()),
  tlv(0x17, '5g_signal_strength', '5G Signal Strength', struct(['rsrp', i16], ['snr', i16])),
  tlv(0x18, '5g_signal_strength_extended', '5G Signal Strength Extended', i16),
];

const LTE_SYSTEM_INFO_V2 = struct(
  ['domain_valid', bool], ['domain', u8(NAS_SERVICE_DOMAIN)],
  ['service_capability_valid', bool], ['service_capability', u8(NAS_SERVICE_DOMAIN)],
  ['roaming_status_valid', bool], ['roaming_status', u8(NAS_ROAMING_STATUS)],
  ['forbidden_valid', bool], ['forbidden', bool],
  ['lac_valid', bool], ['lac', u16()],
  ['cid_valid', bool], ['cid', u32()],
  ['registration_reject_info_valid', bool], ['registration_reject_domain', u8(NAS_SERVICE_DOMAIN)], ['registration_reject_cause', u8(NAS_REJECT_CAUSE)],
  ['network_id_valid', bool], ['mcc', { t: 'string', size: 3 }], ['mnc', { t: 'string', size: 3 }],
  ['tac_valid', bool], ['tac', u16()],
);

const SYSTEM_INFO_TLVS: TlvDef[] = [
  tlv(0x12, 'gsm_service_status', 'GSM Service Status', SERVICE_STATUS),
  tlv(0x13, 'wcdma_service_status', 'WCDMA Service Status', SERVICE_STATUS),
  tlv(0x14, 'lte_service_status', 'LTE Service Status', SERVICE_STATUS),
  tlv(0x19, 'lte_system_info_v2', 'LTE System Info v2', LTE_SYSTEM_INFO_V2),
  tlv(0x1e, 'additional_lte_system_info', 'Additional LTE System Info', struct(['geo_system_index', u16()])),
  tlv(0x21, 'lte_voice_support', 'LTE Voice Support', bool),
  tlv(0x26, 'lte_embms_coverage_info_support', 'LTE eMBMS Coverage Info Support', bool),
  tlv(0x27, 'sim_reject_info', 'SIM Reject Info', u32(NAS_SIM_REJECT)),
  tlv(0x29, 'ims_voice_support', 'IMS Voice Support', bool),
  tlv(0x2a, 'lte_voice_domain', 'LTE Voice Domain', u32(NAS_VOICE_DOMAIN)),
  tlv(0x2f, 'network_selection_registration_restriction', 'Network Selection Registration Restriction', u32(NAS_REG_RESTRICTION)),
  tlv(0x31, 'lte_registration_domain', 'LTE Registration Domain', u32(NAS_LTE_REG_DOMAIN)),
  tlv(0x34, 'lte_embms_coverage_info_trace_id', 'LTE eMBMS Coverage Info Trace ID', u16()),
  tlv(0x44, 'lte_cell_access_status', 'LTE Cell Access Status', u32(NAS_CALL_BARRING)),
  tlv(0x4a, 'nr5g_service_status', 'NR5G Service Status', SERVICE_STATUS),
];

const PIN_STATUS = struct(['current_status', u8(DMS_PIN_STATUS)], ['verify_retries_left', u8()], ['unblock_retries_left', u8()]);
const CALL_END_TLVS: TlvDef[] = [
  tlv(0x10, 'call_end_reason', 'Call End Reason', u16(WDS_CALL_END_REASON)),
  tlv(0x11, 'verbose_call_end_reason', 'Verbose Call End Reason', struct(['type', u16(WDS_VERBOSE_TYPE)], ['reason', i16])),
];
const ALLOCATION_INFO = struct(['service', u8(SERVICE_NAMES)], ['cid', u8()]);

const msg = (service: number, id: number, key: string, title: string, input: TlvDef[], output: TlvDef[], indication = false): MessageDef => ({
  service, id, key, title, input, output, ...(indication ? { indication } : {}),
});

export const MESSAGES: readonly MessageDef[] = [
  // CTL
  msg(SERVICE.CTL, 0x0022, 'ctl.allocateCid', 'Allocate CID', [tlv(0x01, 'service', 'Service', u8(SERVICE_NAMES), true)], [tlv(0x01, 'allocation_info', 'Allocation Info', ALLOCATION_INFO)]),
  msg(SERVICE.CTL, 0x0023, 'ctl.releaseCid', 'Release CID', [tlv(0x01, 'release_info', 'Release Info', ALLOCATION_INFO, true)], [tlv(0x01, 'release_info', 'Release Info', ALLOCATION_INFO)]),
  msg(SERVICE.CTL, 0x0027, 'ctl.sync', 'Sync', [], []),
  msg(SERVICE.CTL, 0x0027, 'ctl.syncIndication', 'Sync', [], [], true),

  // DMS
  msg(SERVICE.DMS, 0x0021, 'dms.getManufacturer', 'Get Manufacturer', [], [tlv(0x01, 'manufacturer', 'Manufacturer', str)]),
  msg(SERVICE.DMS, 0x0022, 'dms.getModel', 'Get Model', [], [tlv(0x01, 'model', 'Model', str)]),
  msg(SERVICE.DMS, 0x0023, 'dms.getRevision', 'Get Revision', [], [tlv(0x01, 'revision', 'Revision', str)]),
  msg(SERVICE.DMS, 0x0025, 'dms.getIds', 'Get IDs', [], [
    tlv(0x10, 'esn', 'Esn', str), tlv(0x11, 'imei', 'Imei', str), tlv(0x12, 'meid', 'Meid', str), tlv(0x13, 'imei_software_version', 'Imei Software Version', str),
  ]),
  msg(SERVICE.DMS, 0x0028, 'dms.uimVerifyPin', 'UIM Verify PIN', [tlv(0x01, 'info', 'Info', struct(['pin_id', u8(DMS_PIN_ID)], ['pin', str8]), true)], [
    tlv(0x10, 'pin_retries_status', 'Pin Retries Status', struct(['verify_retries_left', u8()], ['unblock_retries_left', u8()])),
  ]),
  msg(SERVICE.DMS, 0x002b, 'dms.uimGetPinStatus', 'UIM Get PIN Status', [], [tlv(0x11, 'pin1_status', 'PIN1 Status', PIN_STATUS), tlv(0x12, 'pin2_status', 'PIN2 Status', PIN_STATUS)]),
  msg(SERVICE.DMS, 0x002d, 'dms.getOperatingMode', 'Get Operating Mode', [], [tlv(0x01, 'mode', 'Mode', u8(DMS_OPERATING_MODE))]),
  msg(SERVICE.DMS, 0x002e, 'dms.setOperatingMode', 'Set Operating Mode', [tlv(0x01, 'mode', 'Mode', u8(DMS_OPERATING_MODE), true)], []),

  // NAS
  msg(SERVICE.NAS, 0x0003, 'nas.registerIndications', 'Register Indications', [
    tlv(0x13, 'serving_system_events', 'Serving System Events', bool),
    tlv(0x18, 'system_info', 'System Info', bool),
    tlv(0x19, 'signal_info', 'Signal Info', bool),
  ], []),
  msg(SERVICE.NAS, 0x0020, 'nas.getSignalStrength', 'Get Signal Strength', [tlv(0x10, 'request_mask', 'Request Mask', u16())], [
    tlv(0x01, 'signal_strength', 'Signal Strength', struct(['strength', i8()], ['radio_interface', i8(NAS_RADIO_INTERFACE)])),
    tlv(0x10, 'strength_list', 'Strength List', array(struct(['strength', i8()], ['radio_interface', i8(NAS_RADIO_INTERFACE)]))),
    tlv(0x16, 'rsrq', 'RSRQ', struct(['rsrq', i8()], ['radio_interface', i8(NAS_RADIO_INTERFACE)])),
    tlv(0x17, 'lte_snr', 'LTE SNR', i16),
    tlv(0x18, 'lte_rsrp', 'LTE RSRP', i16),
  ]),
  msg(SERVICE.NAS, 0x0024, 'nas.getServingSystem', 'Get Serving System', [], SERVING_SYSTEM_TLVS),
  msg(SERVICE.NAS, 0x0024, 'nas.servingSystemIndication', 'Serving System', [], SERVING_SYSTEM_TLVS, true),
  msg(SERVICE.NAS, 0x004d, 'nas.getSystemInfo', 'Get System Info', [], SYSTEM_INFO_TLVS),
  msg(SERVICE.NAS, 0x004e, 'nas.systemInfoIndication', 'System Info', [], SYSTEM_INFO_TLVS, true),
  msg(SERVICE.NAS, 0x004f, 'nas.getSignalInfo', 'Get Signal Info', [], SIGNAL_INFO_TLVS),
  msg(SERVICE.NAS, 0x0051, 'nas.signalInfoIndication', 'Signal Info', [], SIGNAL_INFO_TLVS, true),

  // WDS
  msg(SERVICE.WDS, 0x0020, 'wds.startNetwork', 'Start Network', [
    tlv(0x14, 'apn', 'APN', str),
    tlv(0x16, 'authentication_preference', 'Authentication Preference', u8(WDS_AUTH)),
    tlv(0x17, 'username', 'Username', str),
    tlv(0x18, 'password', 'Password', str),
    tlv(0x19, 'ip_family_preference', 'IP Family Preference', u8(WDS_IP_FAMILY)),
    tlv(0x31, 'profile_index_3gpp', 'Profile Index 3GPP', u8()),
  ], [tlv(0x01, 'packet_data_handle', 'Packet Data Handle', u32()), ...CALL_END_TLVS]),
  msg(SERVICE.WDS, 0x0021, 'wds.stopNetwork', 'Stop Network', [
    tlv(0x01, 'packet_data_handle', 'Packet Data Handle', u32(), true),
    tlv(0x10, 'disable_autoconnect', 'Disable Autoconnect', bool),
  ], []),
  msg(SERVICE.WDS, 0x0022, 'wds.getPacketServiceStatus', 'Get Packet Service Status', [], [tlv(0x01, 'connection_status', 'Connection Status', u8(WDS_CONNECTION_STATUS))]),
  msg(SERVICE.WDS, 0x0022, 'wds.packetServiceStatusIndication', 'Packet Service Status', [], [
    tlv(0x01, 'connection_status', 'Connection Status', struct(['status', u8(WDS_CONNECTION_STATUS)], ['reconfiguration_required', bool])),
    ...CALL_END_TLVS,
    tlv(0x12, 'ip_family', 'IP Family', u8(WDS_IP_FAMILY)),
  ], true),
  msg(SERVICE.WDS, 0x002d, 'wds.getCurrentSettings', 'Get Current Settings', [tlv(0x10, 'requested_settings', 'Requested Settings', u32())], [
    tlv(0x10, 'profile_name', 'Profile Name', str),
    tlv(0x14, 'apn_name', 'APN Name', str),
    tlv(0x15, 'ipv4_primary_dns_address', 'IPv4 Primary DNS Address', { t: 'ipv4' }),
    tlv(0x16, 'ipv4_secondary_dns_address', 'IPv4 Secondary DNS Address', { t: 'ipv4' }),
    tlv(0x1e, 'ipv4_address', 'IPv4 Address', { t: 'ipv4' }),
    tlv(0x20, 'ipv4_gateway_address', 'IPv4 Gateway Address', { t: 'ipv4' }),
    tlv(0x21, 'ipv4_gateway_subnet_mask', 'IPv4 Gateway Subnet Mask', { t: 'ipv4' }),
    tlv(0x25, 'ipv6_address', 'IPv6 Address', struct(['address', { t: 'ipv6' }], ['prefix_length', u8()])),
    tlv(0x26, 'ipv6_gateway_address', 'IPv6 Gateway Address', struct(['address', { t: 'ipv6' }], ['prefix_length', u8()])),
    tlv(0x27, 'ipv6_primary_dns_address', 'IPv6 Primary DNS Address', { t: 'ipv6' }),
    tlv(0x28, 'ipv6_secondary_dns_address', 'IPv6 Secondary DNS Address', { t: 'ipv6' }),
    tlv(0x29, 'mtu', 'MTU', u32()),
    tlv(0x2b, 'ip_family', 'IP Family', u8(WDS_IP_FAMILY)),
  ]),
  msg(SERVICE.WDS, 0x004d, 'wds.setIpFamily', 'Set IP Family', [tlv(0x01, 'preference', 'Preference', u8(WDS_IP_FAMILY), true)], []),

  // WDA (data format of the network interface: raw IP or 802.3 framing, aggregation)
  msg(SERVICE.WDA, 0x0020, 'wda.setDataFormat', 'Set Data Format', [
    tlv(0x10, 'qos_format', 'QoS Format', bool),
    tlv(0x11, 'link_layer_protocol', 'Link Layer Protocol', u32(WDA_LINK_LAYER)),
    tlv(0x12, 'uplink_data_aggregation_protocol', 'Uplink Data Aggregation Protocol', u32(WDA_AGGREGATION)),
    tlv(0x13, 'downlink_data_aggregation_protocol', 'Downlink Data Aggregation Protocol', u32(WDA_AGGREGATION)),
  ], [
    tlv(0x10, 'qos_format', 'QoS Format', bool),
    tlv(0x11, 'link_layer_protocol', 'Link Layer Protocol', u32(WDA_LINK_LAYER)),
    tlv(0x12, 'uplink_data_aggregation_protocol', 'Uplink Data Aggregation Protocol', u32(WDA_AGGREGATION)),
    tlv(0x13, 'downlink_data_aggregation_protocol', 'Downlink Data Aggregation Protocol', u32(WDA_AGGREGATION)),
  ]),
  msg(SERVICE.WDA, 0x0021, 'wda.getDataFormat', 'Get Data Format', [], [
    tlv(0x10, 'qos_format', 'QoS Format', bool),
    tlv(0x11, 'link_layer_protocol', 'Link Layer Protocol', u32(WDA_LINK_LAYER)),
    tlv(0x12, 'uplink_data_aggregation_protocol', 'Uplink Data Aggregation Protocol', u32(WDA_AGGREGATION)),
    tlv(0x13, 'downlink_data_aggregation_protocol', 'Downlink Data Aggregation Protocol', u32(WDA_AGGREGATION)),
  ]),

  // UIM
  msg(SERVICE.UIM, 0x0026, 'uim.verifyPin', 'Verify PIN', [
    tlv(0x01, 'session', 'Session', struct(['session_type', u8(UIM_SESSION_TYPE)], ['application_identifier', { t: 'bytes', prefix: 'u8' }]), true),
    tlv(0x02, 'info', 'Info', struct(['pin_id', u8(UIM_PIN_ID)], ['pin', str8]), true),
  ], [tlv(0x10, 'retries_remaining', 'Retries Remaining', struct(['verify_retries_left', u8()], ['unblock_retries_left', u8()]))]),
  msg(SERVICE.UIM, 0x002f, 'uim.getCardStatus', 'Get Card Status', [], [
    tlv(0x10, 'card_status', 'Card Status', struct(
      ['index_gw_primary', u16()], ['index_1x_primary', u16()], ['index_gw_secondary', u16()], ['index_1x_secondary', u16()],
      ['cards', array(struct(
        ['card_state', u8(UIM_CARD_STATE)], ['upin_state', u8(UIM_PIN_STATE)], ['upin_retries', u8()], ['upuk_retries', u8()], ['error_code', u8()],
        ['applications', array(struct(
          ['type', u8()], ['state', u8()], ['personalization_state', u8()], ['personalization_feature', u8()],
          ['personalization_retries', u8()], ['personalization_unblock_retries', u8()],
          ['application_identifier_value', { t: 'bytes', prefix: 'u8' }], ['upin_replaces_pin1', bool],
          ['pin1_state', u8(UIM_PIN_STATE)], ['pin1_retries', u8()], ['puk1_retries', u8()],
          ['pin2_state', u8(UIM_PIN_STATE)], ['pin2_retries', u8()], ['puk2_retries', u8()],
        ))],
      ))],
    )),
  ]),
];

const byKey = new Map(MESSAGES.map((m) => [m.key, m]));

export type MessageKey = (typeof MESSAGES)[number]['key'];

export function messageByKey(key: string): MessageDef | undefined {
  return byKey.get(key);
}

export function findMessage(service: number, id: number, indication: boolean): MessageDef | undefined {
  return MESSAGES.find((m) => m.service === service && m.id === id && (m.indication ?? false) === indication);
}
