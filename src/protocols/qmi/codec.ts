import { DuocellError } from '../../core/errors.js';
import { decodeFrame, encodeFrame, type QmiFrame, type QmiKind, type Tlv } from './frame.js';
import { findMessage, messageByKey, QMI_ERRORS, SERVICE_NAMES } from './messages.js';
import { decodeTlvList, encodeTlvList, type Field, type MessageDef, type QmiObject, type QmiValue, type TlvDef } from './schema.js';

/**
 * Messages ⇄ frames through the data tables in messages.ts. One encoder, one decoder, and a
 * printer that writes libqmi's qmi_message_get_printable_full() layout (the conformance vectors
 * are compared against it line by line).
 */

export interface QmiResult {
  readonly status: number;
  readonly error: number;
  readonly errorName: string;
  readonly ok: boolean;
}

export interface QmiMessage {
  readonly frame: QmiFrame;
  /** e.g. 'wds.startNetwork'; undefined for a message the tables do not describe. */
  readonly key?: string;
  readonly def?: MessageDef;
  readonly result?: QmiResult;
  readonly values: QmiObject;
  readonly unknown: { type: number; hex: string }[];
}

export const RESULT_TLV = 0x02;

export function qmiErrorName(n: number): string {
  return QMI_ERRORS[n] ?? `Unknown${n}`;
}

function readResult(t: Tlv, where: string): QmiResult {
  if (t.value.length < 4) throw new DuocellError('DC_QMI_TLV_OVERFLOW', `${where}: Result TLV is ${t.value.length} bytes, needs 4`, { tlv: RESULT_TLV });
  const status = t.value.readUInt16LE(0);
  const error = t.value.readUInt16LE(2);
  return { status, error, errorName: qmiErrorName(error), ok: status === 0 && error === 0 };
}

function where(f: QmiFrame, def?: MessageDef): string {
  return `${SERVICE_NAMES[f.service] ?? `service 0x${f.service.toString(16)}`} ${def ? `"${def.title}"` : 'message'} 0x${f.message.toString(16).padStart(4, '0')} ${f.kind}`;
}

/** Decode a frame's TLVs against the tables. Throws DC_QMI_TLV_* on content that does not fit. */
export function decodeMessage(frame: QmiFrame): QmiMessage {
  const def = findMessage(frame.service, frame.message, frame.kind === 'indication');
  const w = where(frame, def);
  let tlvs = frame.tlvs;
  let result: QmiResult | undefined;
  if (frame.kind === 'response') {
    const r = tlvs.find((t) => t.type === RESULT_TLV);
    if (r === undefined && def !== undefined) throw new DuocellError('DC_QMI_TLV_MISSING', `${w}: no Result TLV`);
    if (r !== undefined) result = readResult(r, w);
    tlvs = tlvs.filter((t) => t.type !== RESULT_TLV);
  }
  if (def === undefined) return { frame, values: {}, unknown: tlvs.map((t) => ({ type: t.type, hex: t.value.toString('hex') })), ...(result ? { result } : {}) };
  // a failed response carries no mandatory output
  const defs = frame.kind === 'request' ? def.input : def.output;
  const { values, unknown } = decodeTlvList(defs, tlvs, w);
  return { frame, key: def.key, def, values, unknown, ...(result ? { result } : {}) };
}

export function decodeBytes(buf: Buffer): QmiMessage {
  return decodeMessage(decodeFrame(buf));
}

function defOrThrow(key: string): MessageDef {
  const d = messageByKey(key);
  if (d === undefined) throw new DuocellError('DC_QMI_UNKNOWN_MESSAGE', `no QMI message described as ${key}`);
  return d;
}

export interface Addressing {
  readonly client: number;
  readonly tid: number;
}

export function encodeRequest(key: string, a: Addressing, values: Readonly<Record<string, unknown>> = {}): Buffer {
  const d = defOrThrow(key);
  return encodeFrame({ service: d.service, client: a.client, kind: 'request', tid: a.tid, message: d.id, tlvs: encodeTlvList(d.input, values, d.key) });
}

/** A response (the simulator's side). `error` ≠ 0 makes a failure Result. */
export function encodeResponse(key: string, a: Addressing, values: Readonly<Record<string, unknown>> = {}, error = 0): Buffer {
  const d = defOrThrow(key);
  const r = Buffer.alloc(4);
  r.writeUInt16LE(error === 0 ? 0 : 1, 0);
  r.writeUInt16LE(error, 2);
  return encodeFrame({
    service: d.service,
    client: a.client,
    kind: 'response',
    tid: a.tid,
    message: d.id,
    tlvs: [{ type: RESULT_TLV, value: r }, ...encodeTlvList(d.output, values, d.key)],
  });
}

export function encodeIndication(key: string, client: number, values: Readonly<Record<string, unknown>> = {}): Buffer {
  const d = defOrThrow(key);
  if (!d.indication) throw new DuocellError('DC_QMI_ENCODE', `${key} is not an indication`);
  return encodeFrame({ service: d.service, client, kind: 'indication', tid: 0, message: d.id, tlvs: encodeTlvList(d.output, values, d.key) });
}

// ------------------------------------------------------------------------------------------
// libqmi-style printable

function hexColons(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).toUpperCase().padStart(2, '0')).join(':');
}

function translate(f: Field, v: QmiValue): string {
  switch (f.t) {
    case 'struct': {
      const o = v as QmiObject;
      return `[ ${f.fields.map(([k, sub]) => `${k} = '${translate(sub, o[k]!)}'`).join(' ')} ]`;
    }
    case 'array':
      return `{${(v as QmiValue[]).map((x, i) => ` [${i}] = '${translate(f.of, x)} '`).join('')}}`;
    case 'u8':
    case 'u16':
    case 'u32':
    case 'i8':
    case 'i16':
    case 'i32':
      return f.enum?.[v as number] ?? String(v);
    default:
      return String(v);
  }
}

const KIND_FLAG: Record<QmiKind, string> = { request: 'none', response: 'response', indication: 'indication' };

/** The frame printed as libqmi 1.32's qmi_message_get_printable_full() does. */
export function printable(frame: QmiFrame): string {
  const def = findMessage(frame.service, frame.message, frame.kind === 'indication');
  const tlvLen = frame.tlvs.reduce((n, t) => n + 3 + t.value.length, 0);
  const len = 5 + (frame.service === 0 ? 6 : 7) + tlvLen;
  const out = [
    'QMUX:',
    `  length  = ${len}`,
    `  flags   = 0x${frame.qmuxFlags.toString(16).padStart(2, '0')}`,
    `  service = "${SERVICE_NAMES[frame.service] ?? 'unknown'}"`,
    `  client  = ${frame.client}`,
    'QMI:',
    `  flags       = "${KIND_FLAG[frame.kind]}"`,
    `  transaction = ${frame.tid}`,
    `  tlv_length  = ${tlvLen}`,
    def
      ? `  message     = "${def.title}" (0x${frame.message.toString(16).toUpperCase().padStart(4, '0')})`
      : `  message     = (0x${frame.message.toString(16).padStart(4, '0')})`,
  ];
  const defs: readonly TlvDef[] = def ? (frame.kind === 'request' ? def.input : def.output) : [];
  for (const t of frame.tlvs) {
    const td = defs.find((d) => d.type === t.type);
    const isResult = def !== undefined && frame.kind === 'response' && t.type === RESULT_TLV;
    if (!td && !isResult) {
      out.push('TLV:', `  type   = 0x${t.type.toString(16).padStart(2, '0')}`, `  length = ${t.value.length}`, `  value  = ${hexColons(t.value)}`);
      continue;
    }
    const title = isResult ? 'Result' : td!.title;
    let translated: string;
    try {
      if (isResult) {
        const r = readResult(t, 'Result');
        translated = r.ok ? 'SUCCESS' : `FAILURE: ${r.errorName}`;
      } else {
        const { values } = decodeTlvList([td!], [t], title);
        translated = translate(td!.field, values[td!.name]!);
      }
    } catch (e) {
      translated = `ERROR: ${(e as Error).message}`;
    }
    out.push(
      'TLV:',
      `  type       = "${title}" (0x${t.type.toString(16).padStart(2, '0')})`,
      `  length     = ${t.value.length}`,
      `  value      = ${hexColons(t.value)}`,
      `  translated = ${translated}`,
    );
  }
  return out.join('\n');
}

export { decodeFrame, encodeFrame };
