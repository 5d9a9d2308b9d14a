import t from 'tap';
import { readFileSync } from 'node:fs';
import { decodeBytes, decodeFrame, printable, QmiStreamParser, encodeFrame } from '../../src/protocols/qmi/index.js';
import { isDuocellError } from '../../src/core/errors.js';

interface Vector {
  name: string;
  hex: string;
  meaning: string;
  expect?: string;
  libqmi_1_32_2_printable: string;
}
const vectors = (JSON.parse(readFileSync(new URL('../fixtures/vectors/qmi-vectors.json', import.meta.url), 'utf8')) as { vectors: Vector[] }).vectors;

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isDuocellError(e) ? e.code : `not a DuocellError: ${String(e)}`;
  }
  return undefined;
}

t.test('all 28 vectors: good ones print exactly as libqmi, broken ones are rejected', async (t) => {
  t.equal(vectors.length, 28);
  for (const v of vectors) {
    const buf = Buffer.from(v.hex, 'hex');
    if (v.expect === 'incomplete') {
      t.equal(code(() => decodeFrame(buf)), 'DC_QMI_FRAME_TRUNCATED', `${v.name}: truncated frame rejected`);
      const p = new QmiStreamParser();
      t.same(p.push(buf), [], `${v.name}: stream parser yields nothing and waits`);
      t.equal(p.buffered, buf.length);
      continue;
    }
    if (v.expect === 'tlv-overflow') {
      t.ok(decodeFrame(buf), `${v.name}: the frame itself is well formed`);
      let err: unknown;
      try {
        decodeBytes(buf);
      } catch (e) {
        err = e;
      }
      t.ok(isDuocellError(err, 'DC_QMI_TLV_OVERFLOW'), `${v.name}: rejected with DC_QMI_TLV_OVERFLOW`);
      t.match((err as Error).message, /TLV 0x21 "Detailed Service Status".*overflow/, 'the message names the TLV');
      t.equal((err as { origin?: string }).origin, 'local');
      continue;
    }
    t.equal(v.expect, undefined);
    const msg = decodeBytes(buf);
    const mine = printable(msg.frame).split('\n');
    const theirs = v.libqmi_1_32_2_printable.split('\n');
    t.equal(mine.length, theirs.length, `${v.name}: same number of printable lines`);
    let same = 0;
    for (let i = 0; i < theirs.length; i++) {
      if (theirs[i]!.includes('###')) continue; // libqmi masks personal info (IMEI, MEID, PIN)
      if (mine[i] !== theirs[i]) t.equal(mine[i], theirs[i], `${v.name} line ${i + 1}`);
      else same++;
    }
    t.ok(same > 8, `${v.name}: ${same} printable lines identical to libqmi`);
    // re-encoding the decoded frame gives the same bytes
    t.equal(encodeFrame(msg.frame).toString('hex'), v.hex, `${v.name}: frame round-trips`);
  }
});

const byName = (n: string): Buffer => Buffer.from(vectors.find((v) => v.name === n)!.hex, 'hex');

t.test('decoded values (what the drivers use)', async (t) => {
  const cid = decodeBytes(byName('ctl_allocate_cid_response_wds_cid1'));
  t.same(cid.values.allocation_info, { service: 1, cid: 1 });
  t.equal(cid.result?.ok, true);
  const ids = decodeBytes(byName('dms_get_ids_response'));
  t.same(ids.values, { imei_software_version: 'B', meid: '35922505003997', esn: '80997874', imei: '359225050039973' });
  t.equal(decodeBytes(byName('dms_get_model_response_trailing_tab')).values.model, 'EM12-AW');
  const pin = decodeBytes(byName('dms_uim_get_pin_status_response'));
  t.same(pin.values.pin1_status, { current_status: 1, verify_retries_left: 3, unblock_retries_left: 10 });
  const verify = decodeBytes(byName('dms_uim_verify_pin_request_1234'));
  t.same(verify.values.info, { pin_id: 1, pin: '1234' });
  const ss = decodeBytes(byName('nas_get_serving_system_response_gsm7_plmn'));
  t.same(ss.values.current_plmn, { mcc: 222, mnc: 50, description: 'Iliad' }, 'GSM-7 packed network name');
  t.equal(ss.values.cid_3gpp, 0x01135acf);
  t.same(ss.unknown, [{ type: 0x28, hex: '00' }]);
  const si = decodeBytes(byName('nas_get_system_info_response_lte'));
  const lte = si.values.lte_system_info_v2 as Record<string, unknown>;
  t.equal(lte.mcc, '530');
  t.equal(lte.mnc, '24');
  t.equal(lte.tac, 63001);
  t.equal(lte.cid, 1616133);
  const fail = decodeBytes(byName('wds_start_network_response_call_failed'));
  t.same(fail.result, { status: 1, error: 14, errorName: 'CallFailed', ok: false });
  t.same(fail.values.verbose_call_end_reason, { type: 6, reason: 33 });
  t.equal(decodeBytes(byName('wds_start_network_response_ok')).values.packet_data_handle, 0x8217e4a0);
  const ind = decodeBytes(byName('wds_packet_service_status_indication_disconnected'));
  t.equal(ind.key, 'wds.packetServiceStatusIndication');
  t.same(ind.values.connection_status, { status: 1, reconfiguration_required: 0 });
  const sig = decodeBytes(byName('nas_get_signal_info_response_lte_5g'));
  t.same(sig.values.lte_signal_strength, { rssi: -65, rsrq: -9, rsrp: -95, snr: 120 });
  t.equal(sig.values['5g_signal_strength_extended'], -11);
  const generic = decodeBytes(byName('dms_response_error_internal'));
  t.equal(generic.key, undefined, 'message 0xffff is not described');
  t.same(generic.result, { status: 1, error: 3, errorName: 'Internal', ok: false });
});

t.test('stream parser: every split point, garbage before/between, false starts', async (t) => {
  const good = vectors.filter((v) => v.expect === undefined).map((v) => Buffer.from(v.hex, 'hex'));
  const stream = Buffer.concat(good);
  for (let i = 0; i <= stream.length; i += 1) {
    const p = new QmiStreamParser();
    const items = [...p.push(stream.subarray(0, i)), ...p.push(stream.subarray(i))];
    if (items.length !== good.length || items.some((x) => !('frame' in x))) t.fail(`split at ${i}: ${items.length} items`);
  }
  t.pass(`all ${stream.length + 1} split points give ${good.length} frames`);
  // garbage (including fake 0x01 markers) before and between frames
  const junk = Buffer.from('01ff7f0100000002010203410a0d01', 'hex');
  const mixed = Buffer.concat(good.flatMap((g) => [junk, g]));
  const p = new QmiStreamParser();
  const items: ReturnType<QmiStreamParser['push']> = [];
  for (let i = 0; i < mixed.length; i += 7) items.push(...p.push(mixed.subarray(i, i + 7)));
  const frames = items.filter((x) => 'frame' in x);
  t.equal(frames.length, good.length, 'every frame recovered after garbage');
  t.ok(p.skipped >= junk.length * good.length - 16, 'garbage counted as skipped');
  // a stream of pure garbage keeps the buffer bounded
  const q = new QmiStreamParser();
  for (let i = 0; i < 3000; i++) {
    q.push(Buffer.from([0x01, 0xff, 0xff, 0x80, 0x03, 0x01, i & 0xff, 0x02, 0x03]));
    if (q.buffered > 0x10000 + 16) t.fail('buffer grew unbounded');
  }
  t.ok(q.buffered <= 0x10001 + 9, `buffer bounded (${q.buffered})`);
});

t.test('frame-level rejections carry codes', async (t) => {
  t.equal(code(() => decodeFrame(Buffer.from('02', 'hex'))), 'DC_QMI_FRAME_INVALID');
  t.equal(code(() => decodeFrame(Buffer.from('010c00', 'hex'))), 'DC_QMI_FRAME_TRUNCATED');
  t.equal(code(() => decodeFrame(Buffer.from('010200', 'hex'))), 'DC_QMI_FRAME_INVALID', 'length too short for any header (found by the fuzzer)');
  t.equal(code(() => decodeFrame(Buffer.from('010c0000020100010025000000ff', 'hex'))), 'DC_QMI_FRAME_INVALID', 'trailing byte');
  t.equal(code(() => decodeFrame(Buffer.from('010c0040020100010025000000', 'hex'))), 'DC_QMI_FRAME_INVALID', 'bad QMUX flags');
  t.equal(code(() => decodeFrame(Buffer.from('010c0000020108010025000000', 'hex'))), 'DC_QMI_FRAME_INVALID', 'bad SDU flags');
  t.equal(code(() => decodeFrame(Buffer.from('010c0000020100010025000100', 'hex'))), 'DC_QMI_FRAME_INVALID', 'tlv length mismatch');
  t.equal(code(() => decodeFrame(Buffer.from('010f0000020100010025000300100500', 'hex'))), 'DC_QMI_TLV_OVERFLOW', 'TLV past the message');
  // a response without a Result TLV
  t.equal(code(() => decodeBytes(Buffer.from('010c0080020102010022000000', 'hex'))), 'DC_QMI_TLV_MISSING');
});
