import t from 'tap';
import { readFileSync } from 'node:fs';
import { decodeBytes, encodeRequest, encodeResponse, encodeIndication, unpackGsm7, decodeQmiString } from '../../src/protocols/qmi/index.js';
import { isDuocellError } from '../../src/core/errors.js';

const vectors = (JSON.parse(readFileSync(new URL('../fixtures/vectors/qmi-vectors.json', import.meta.url), 'utf8')) as { vectors: { name: string; hex: string }[] }).vectors;
const hexOf = (n: string): string => vectors.find((v) => v.name === n)!.hex;

t.test('the generic encoder produces the vectors byte for byte', async (t) => {
  const cases: [string, string, number, number, Record<string, unknown>][] = [
    ['ctl_allocate_cid_request_wds', 'ctl.allocateCid', 0, 1, { service: 'wds' }],
    ['ctl_release_cid_request_wds_cid1', 'ctl.releaseCid', 0, 1, { release_info: { service: 1, cid: 1 } }],
    ['ctl_sync_request', 'ctl.sync', 0, 2, {}],
    ['dms_get_ids_request', 'dms.getIds', 1, 1, {}],
    ['dms_uim_get_pin_status_request', 'dms.uimGetPinStatus', 1, 1, {}],
    ['dms_uim_verify_pin_request_1234', 'dms.uimVerifyPin', 1, 1, { info: { pin_id: 'pin', pin: '1234' } }],
    ['nas_get_serving_system_request', 'nas.getServingSystem', 1, 1, {}],
    ['wds_start_network_request_apn_ipv4', 'wds.startNetwork', 1, 3, { apn: 'internet', ip_family_preference: 'ipv4' }],
    ['wds_get_packet_service_status_request', 'wds.getPacketServiceStatus', 1, 4, {}],
    ['nas_get_signal_strength_request', 'nas.getSignalStrength', 2, 5, {}],
    ['nas_get_signal_info_request', 'nas.getSignalInfo', 2, 6, {}],
  ];
  for (const [vec, key, client, tid, values] of cases) t.equal(encodeRequest(key, { client, tid }, values).toString('hex'), hexOf(vec), vec);
  t.equal(encodeResponse('wds.startNetwork', { client: 1, tid: 3 }, { packet_data_handle: 0x8217e4a0 }).toString('hex'), hexOf('wds_start_network_response_ok'));
  t.equal(
    encodeIndication('wds.packetServiceStatusIndication', 1, { connection_status: { status: 'disconnected', reconfiguration_required: 0 }, call_end_reason: 2 }).toString('hex'),
    hexOf('wds_packet_service_status_indication_disconnected'),
  );
});

t.test('WDS current settings for each family round-trip', async (t) => {
  const v4 = {
    ipv4_address: '10.64.12.7',
    ipv4_gateway_address: '10.64.12.8',
    ipv4_gateway_subnet_mask: '255.255.255.252',
    ipv4_primary_dns_address: '10.0.0.53',
    ipv4_secondary_dns_address: '10.0.1.53',
    mtu: 1500,
    ip_family: 4,
  };
  const b = encodeResponse('wds.getCurrentSettings', { client: 3, tid: 9 }, v4);
  // libqmi reads IPv4 addresses as little-endian u32: 10.64.12.7 is stored 07 0c 40 0a
  t.ok(b.includes(Buffer.from('1e0400070c400a', 'hex')), 'IPv4 address TLV in libqmi byte order');
  t.same(decodeBytes(b).values, v4);
  const v6 = {
    ipv6_address: { address: '2001:db8:1:2::7', prefix_length: 64 },
    ipv6_gateway_address: { address: '2001:db8:1:2::1', prefix_length: 64 },
    ipv6_primary_dns_address: '2001:4860:4860::8888',
    mtu: 1428,
    ip_family: 6,
  };
  t.same(decodeBytes(encodeResponse('wds.getCurrentSettings', { client: 4, tid: 10 }, v6)).values, v6);
});

t.test('encoder refuses values that do not fit', async (t) => {
  const bad: [string, Record<string, unknown>, string][] = [
    ['ctl.allocateCid', { service: 300 }, 'DC_QMI_ENCODE'],
    ['ctl.allocateCid', { service: 'nosuch' }, 'DC_QMI_ENCODE'],
    ['ctl.allocateCid', {}, 'DC_QMI_TLV_MISSING'],
    ['wds.startNetwork', { apn: 7 }, 'DC_QMI_ENCODE'],
    ['wds.startNetwork', { nosuch: 1 }, 'DC_QMI_ENCODE'],
    ['nas.nosuch', {}, 'DC_QMI_UNKNOWN_MESSAGE'],
  ];
  for (const [key, v, c] of bad) {
    let e: unknown;
    try {
      encodeRequest(key, { client: 1, tid: 1 }, v);
    } catch (x) {
      e = x;
    }
    t.ok(isDuocellError(e, c as never), `${key} ${JSON.stringify(v)} → ${c}`);
  }
});

t.test('strings: UTF-8, trailing junk, GSM-7', async (t) => {
  t.equal(unpackGsm7(Buffer.from('49763a4c06', 'hex')), 'Iliad');
  t.equal(decodeQmiString(Buffer.from('T-Mobile\x00\x00')), 'T-Mobile');
  t.equal(decodeQmiString(Buffer.from('Telekom.de')), 'Telekom.de');
});
