import { isDeepStrictEqual } from 'node:util';
import { pathToFileURL } from 'node:url';
import { DuocellError } from '../../src/core/errors.js';
import {
  decodeCtlAllocateCid,
  decodeDmsIds,
  decodeDmsModel,
  decodeDmsOperatingMode,
  decodeDmsPinStatus,
  decodeDmsRevision,
  decodeNasServingSystem,
  decodeNasSignalInfo,
  decodePinRetries,
  decodeUimCardStatus,
  decodeWdaDataFormat,
  decodeWdsCurrentSettings,
  decodeWdsPacketServiceIndication,
  decodeWdsPacketServiceStatus,
  decodeWdsStartNetwork,
  encodeTlvList,
  messageByKey,
  REPLY_ERROR_CODES,
  type Tlv,
} from '../../src/protocols/qmi/index.js';
import { rng } from './at.js';
import { randomValues } from './qmi.js';

/**
 * Fuzz the typed QMI reply decoders (protocols/qmi/replies.ts). Each iteration picks a decoder,
 * builds its message's TLVs from random values with the generic encoder, and then either keeps
 * them, or bends them: TLVs cut short, grown with garbage, replaced by noise, dropped,
 * duplicated, or a foreign TLV added. Checked: a decoder returns, or throws a DuocellError whose
 * code is one of REPLY_ERROR_CODES (truncated and garbage TLVs get the same code every time:
 * each input is decoded twice and both outcomes must agree); well-formed TLVs always decode.
 * Anything else is thrown as a bug.
 *
 *   node --import <ts loader> bench/fuzz/qmi-replies.ts [iterations=200000] [seed=1]
 */

export const DECODERS: readonly { readonly key: string; readonly decode: (tlvs: readonly Tlv[]) => unknown }[] = [
  { key: 'ctl.allocateCid', decode: decodeCtlAllocateCid },
  { key: 'dms.getModel', decode: decodeDmsModel },
  { key: 'dms.getRevision', decode: decodeDmsRevision },
  { key: 'dms.getIds', decode: decodeDmsIds },
  { key: 'dms.getOperatingMode', decode: decodeDmsOperatingMode },
  { key: 'dms.uimGetPinStatus', decode: decodeDmsPinStatus },
  { key: 'dms.uimVerifyPin', decode: (t) => decodePinRetries('dms.uimVerifyPin', t) },
  { key: 'uim.verifyPin', decode: (t) => decodePinRetries('uim.verifyPin', t) },
  { key: 'uim.getCardStatus', decode: decodeUimCardStatus },
  { key: 'wda.setDataFormat', decode: decodeWdaDataFormat },
  { key: 'nas.getServingSystem', decode: (t) => decodeNasServingSystem(t) },
  { key: 'nas.servingSystemIndication', decode: (t) => decodeNasServingSystem(t, true) },
  { key: 'nas.getSignalInfo', decode: (t) => decodeNasSignalInfo(t) },
  { key: 'nas.signalInfoIndication', decode: (t) => decodeNasSignalInfo(t, true) },
  { key: 'wds.startNetwork', decode: decodeWdsStartNetwork },
  { key: 'wds.getPacketServiceStatus', decode: decodeWdsPacketServiceStatus },
  { key: 'wds.packetServiceStatusIndication', decode: decodeWdsPacketServiceIndication },
  { key: 'wds.getCurrentSettings', decode: decodeWdsCurrentSettings },
];

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const noise = (r: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

function bend(r: () => number, tlvs: Tlv[]): Tlv[] {
  let out: Tlv[] = tlvs.map((t) => ({ type: t.type, value: Buffer.from(t.value) }));
  const n = 1 + int(r, 3);
  for (let i = 0; i < n; i++) {
    const k = r();
    const at = int(r, Math.max(1, out.length));
    const t = out[at];
    if (k < 0.3 && t) out[at] = { type: t.type, value: t.value.subarray(0, int(r, t.value.length)) }; // truncated
    else if (k < 0.45 && t) out[at] = { type: t.type, value: Buffer.concat([t.value, noise(r, 1 + int(r, 8))]) }; // grown
    else if (k < 0.6 && t) out[at] = { type: t.type, value: noise(r, int(r, 24)) }; // garbage
    else if (k < 0.7 && t && t.value.length > 0) t.value[int(r, t.value.length)] = int(r, 256); // one byte
    else if (k < 0.8 && t) out = out.filter((_, j) => j !== at); // dropped
    else if (k < 0.9 && t) out.push({ type: t.type, value: noise(r, int(r, 8)) }); // duplicated, garbage second
    else out.push({ type: int(r, 256), value: noise(r, int(r, 24)) }); // foreign or colliding type
  }
  return out;
}

type Outcome = { ok: unknown } | { code: string };

function outcome(decode: (tlvs: readonly Tlv[]) => unknown, tlvs: readonly Tlv[]): Outcome {
  try {
    return { ok: decode(tlvs) };
  } catch (e) {
    if (!(e instanceof DuocellError) || !(REPLY_ERROR_CODES as readonly string[]).includes(e.code)) throw new Error(`decoder threw something else: ${String(e)}`);
    return { code: e.code };
  }
}

export function fuzz(iterations: number, seed = 1): { iterations: number; outcomes: Record<string, number> } {
  const r = rng(seed);
  const outcomes: Record<string, number> = {};
  const count = (k: string): void => {
    outcomes[k] = (outcomes[k] ?? 0) + 1;
  };
  for (let i = 0; i < iterations; i++) {
    const d = DECODERS[int(r, DECODERS.length)]!;
    const def = messageByKey(d.key)!;
    const tlvs = encodeTlvList(def.output, randomValues(r, def.output), d.key);
    const input = r() < 0.2 ? tlvs : bend(r, tlvs);
    const a = outcome(d.decode, input);
    const b = outcome(d.decode, input);
    if (!isDeepStrictEqual(a, b)) throw new Error(`${d.key}: two decodes of one input differ: ${JSON.stringify(a)} / ${JSON.stringify(b)}`);
    if (input === tlvs && 'code' in a && a.code !== 'DC_QMI_FRAME_INVALID' && a.code !== 'DC_QMI_TLV_MISSING')
      throw new Error(`${d.key}: well-formed TLVs refused with ${a.code}`);
    count('code' in a ? a.code : input === tlvs ? 'ok:well-formed' : 'ok:bent');
  }
  return { iterations, outcomes };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 200_000);
  const t0 = Date.now();
  const res = fuzz(n, Number(process.argv[3] ?? 1));
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0 }));
}
