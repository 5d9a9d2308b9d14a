import { DuocellError } from '../../core/errors.js';
import { Attrs, attr, decodeAttrs, encodeAttrs, ipToBuffer, type AttrOut } from './attrs.js';
import { decodeError, encodeMessage, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, splitMessages, type NlMessage } from './message.js';

/**
 * nf_tables over nfnetlink (NETLINK_NETFILTER), pure: the few messages duocell sends without
 * forking `nft` (set elements with a timeout), and the kernel's answers.
 *
 *   one datagram = one transaction, all or nothing:
 *   +--------------------+-------------------------+-----+------------------+
 *   | NFNL_MSG_BATCH_BEGIN| NFT_MSG_NEWSETELEM ...  | ... | NFNL_MSG_BATCH_END |
 *   | res_id = 10 (BE)   | nlmsg_type = 10<<8 | 12 |     | res_id = 10 (BE)   |
 *   +--------------------+-------------------------+-----+------------------+
 *   every message: nlmsghdr + nfgenmsg { u8 family (NFPROTO_*), u8 version 0, be16 res_id } + attrs
 *
 *   NEWSETELEM / DELSETELEM attributes         element (nested, numbered 1, 2, … as libnftnl does)
 *     1 TABLE  string                              4 TIMEOUT  be64, milliseconds
 *     2 SET    string                              1 KEY      nested { 1 DATA_VALUE bytes }
 *     3 ELEMENTS nested list of elements
 *
 * Keys are the set's key bytes: an inet_service is 2 bytes big-endian; a concatenation
 * (ipv4_addr . inet_service) puts each part in its own 4-byte-aligned slot (8 and 20 bytes).
 * The byte layout was compared with what `nft` 1.0.6 sends (test/fixtures/nftables/captured.txt,
 * captured by capture.sh): nft also sends NFTA_SET_ELEM_LIST_SET_ID, which only matters for a set
 * created in the same batch, so duocell leaves it out.
 *
 * Every message we send asks for an ACK; the kernel answers each with NLMSG_ERROR (0 or -errno),
 * after the commit. A failed commit is reported against the BATCH_BEGIN message.
 */

export const NETLINK_NETFILTER = 12;
export const NFNL_SUBSYS_NFTABLES = 10;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFNETLINK_V0 = 0;

export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_DELSETELEM = 14;
export const NFT_MSG_NEWGEN = 15;
export const NFT_MSG_GETGEN = 16;

export const NFTA_SET_ELEM_LIST_TABLE = 1;
export const NFTA_SET_ELEM_LIST_SET = 2;
export const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
export const NFTA_SET_ELEM_KEY = 1;
export const NFTA_SET_ELEM_TIMEOUT = 4;
export const NFTA_SET_ELEM_EXPIRATION = 5;
export const NFTA_DATA_VALUE = 1;
export const NFTA_GEN_ID = 1;
export const NFTA_GEN_PROC_PID = 2;
export const NFTA_GEN_PROC_NAME = 3;

export const NFPROTO = { inet: 1, ip: 2, ip6: 10 } as const;
export type NftFamily = keyof typeof NFPROTO;

/** nlmsg_type of an nf_tables message. */
export function nftType(msg: number): number {
  return (NFNL_SUBSYS_NFTABLES << 8) | msg;
}

function invalid(message: string): DuocellError {
  return new DuocellError('DC_NETLINK_INVALID_ARG', message, { origin: 'local' });
}

function malformed(message: string, detail: Record<string, unknown> = {}): DuocellError {
  return new DuocellError('DC_NETLINK_MALFORMED', message, { origin: 'local', ...detail });
}

/** struct nfgenmsg. */
export function nfgenmsg(family: number, resId: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family & 0xff, 0);
  b.writeUInt8(NFNETLINK_V0, 1);
  b.writeUInt16BE(resId & 0xffff, 2);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Keys

function port16(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(`port ${port} is not 1..65535`);
  return port;
}

/** An inet_service key: the port, 2 bytes big-endian. */
export function keyInetService(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port16(port));
  return b;
}

/** An `ipv4_addr . inet_service` (8 bytes) or `ipv6_addr . inet_service` (20 bytes) key. */
export function keyAddrPort(address: string, port: number): Buffer {
  const { bytes } = ipToBuffer(address);
  const b = Buffer.alloc(bytes.length + 4); // the port's slot is a whole 32-bit register
  bytes.copy(b, 0);
  b.writeUInt16BE(port16(port), bytes.length);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Requests

export interface SetElement {
  /** The key bytes (keyInetService, keyAddrPort). */
  readonly key: Buffer;
  /** Timeout in milliseconds (the set needs `flags timeout`); none: the set's default. */
  readonly timeoutMs?: number;
}

export interface SetElemTarget {
  readonly family: NftFamily;
  readonly table: string;
  readonly set: string;
  readonly elements: readonly SetElement[];
}

/** One message of a batch, before it gets its sequence number. */
export interface NftOp {
  readonly type: number;
  readonly flags: number;
  readonly payload: Buffer;
  /** For errors and logs ("add element inet duocell alive"). */
  readonly what: string;
}

const NAME_MAX = 255; // NFT_NAME_MAXLEN 256 with the NUL
const MAX_ELEMENTS = 4096;

function checkName(what: string, s: string): void {
  if (typeof s !== 'string') throw invalid(`${what} name is not a string`);
  const n = Buffer.byteLength(s, 'utf8');
  if (n === 0 || n > NAME_MAX || s.includes('\0')) throw invalid(`${what} name ${JSON.stringify(s)} is not 1..${NAME_MAX} bytes without NUL`);
}

function elementAttrs(e: SetElement, withTimeout: boolean): AttrOut[] {
  if (!Buffer.isBuffer(e.key) || e.key.length === 0 || e.key.length > 64) throw invalid('a set element key is 1..64 bytes');
  const out: AttrOut[] = [];
  if (withTimeout && e.timeoutMs !== undefined) {
    if (!Number.isSafeInteger(e.timeoutMs) || e.timeoutMs < 1) throw invalid(`element timeout ${e.timeoutMs} ms is not a positive integer`);
    const t = Buffer.alloc(8);
    t.writeBigUInt64BE(BigInt(e.timeoutMs));
    out.push(attr.binary(NFTA_SET_ELEM_TIMEOUT, t));
  }
  out.push(attr.nested(NFTA_SET_ELEM_KEY, [attr.binary(NFTA_DATA_VALUE, e.key)]));
  return out;
}

function setElems(op: 'add' | 'delete', t: SetElemTarget): NftOp {
  const fam = NFPROTO[t.family];
  if (fam === undefined) throw invalid(`nftables family ${String(t.family)} is not inet|ip|ip6`);
  checkName('table', t.table);
  checkName('set', t.set);
  if (t.elements.length === 0 || t.elements.length > MAX_ELEMENTS) throw invalid(`1..${MAX_ELEMENTS} elements per message, not ${t.elements.length}`);
  const list = t.elements.map((e, i) => attr.nested(i + 1, elementAttrs(e, op === 'add')));
  const attrs = encodeAttrs([
    attr.string(NFTA_SET_ELEM_LIST_TABLE, t.table),
    attr.string(NFTA_SET_ELEM_LIST_SET, t.set),
    attr.nested(NFTA_SET_ELEM_LIST_ELEMENTS, list),
  ]);
  return {
    type: nftType(op === 'add' ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM),
    // `nft add element`: create if missing, an existing element is no error (no NLM_F_EXCL)
    flags: op === 'add' ? NLM_F_CREATE : 0,
    payload: Buffer.concat([nfgenmsg(fam, 0), attrs]),
    what: `${op} element ${t.family} ${t.table} ${t.set}`,
  };
}

/** NFT_MSG_NEWSETELEM as `nft add element` sends it (NLM_F_CREATE, each element's timeout). */
export function addSetElems(t: SetElemTarget): NftOp {
  return setElems('add', t);
}

/** NFT_MSG_DELSETELEM (keys only); the kernel says ENOENT for a missing element. */
export function delSetElems(t: SetElemTarget): NftOp {
  return setElems('delete', t);
}

export interface EncodedBatch {
  readonly datagram: Buffer;
  readonly beginSeq: number;
  readonly endSeq: number;
  /** The sequence number of each op, in order (each asks for an ACK). */
  readonly seqs: readonly number[];
}

const MAX_OPS = 1024;

/** BATCH_BEGIN, the ops (NLM_F_REQUEST | NLM_F_ACK), BATCH_END, with consecutive sequence numbers from `firstSeq`. */
export function encodeBatch(ops: readonly NftOp[], firstSeq: number, opts: { ack?: boolean } = {}): EncodedBatch {
  if (ops.length === 0 || ops.length > MAX_OPS) throw invalid(`a batch holds 1..${MAX_OPS} messages, not ${ops.length}`);
  if (!Number.isInteger(firstSeq) || firstSeq < 0 || firstSeq > 0xffffffff) throw invalid(`sequence number ${firstSeq} out of range`);
  const ack = opts.ack ?? true;
  let seq = firstSeq >>> 0;
  const next = (): number => {
    const s = seq;
    seq = (seq + 1) >>> 0;
    return s;
  };
  const marker = (type: number): { msg: Buffer; seq: number } => {
    const s = next();
    return { seq: s, msg: encodeMessage({ type, flags: NLM_F_REQUEST, seq: s, payload: nfgenmsg(0, NFNL_SUBSYS_NFTABLES) }) };
  };
  const begin = marker(NFNL_MSG_BATCH_BEGIN);
  const seqs: number[] = [];
  const parts = [begin.msg];
  for (const op of ops) {
    const s = next();
    seqs.push(s);
    parts.push(encodeMessage({ type: op.type, flags: NLM_F_REQUEST | (ack ? NLM_F_ACK : 0) | op.flags, seq: s, payload: op.payload }));
  }
  const end = marker(NFNL_MSG_BATCH_END);
  parts.push(end.msg);
  return { datagram: Buffer.concat(parts), beginSeq: begin.seq, endSeq: end.seq, seqs };
}

/** NFT_MSG_GETGEN: the ruleset generation (needs CAP_NET_ADMIN like everything on nfnetlink: a cheap probe). */
export function encodeGetGen(seq: number): Buffer {
  return encodeMessage({ type: nftType(NFT_MSG_GETGEN), flags: NLM_F_REQUEST | NLM_F_ACK, seq, payload: nfgenmsg(0, 0) });
}

// ---------------------------------------------------------------------------------------------
// Replies

export type NftReply =
  | { readonly kind: 'ack'; readonly seq: number }
  | { readonly kind: 'error'; readonly seq: number; readonly errno: number; readonly extack?: string; readonly requestType: number }
  | { readonly kind: 'gen'; readonly seq: number; readonly genId: number; readonly pid?: number; readonly procName?: string }
  | { readonly kind: 'done'; readonly seq: number }
  | { readonly kind: 'other'; readonly seq: number; readonly type: number };

/** NFT_MSG_NEWGEN (the answer to GETGEN, and the event after every commit). */
export function decodeGen(m: NlMessage): { genId: number; pid?: number; procName?: string } {
  if (m.type !== nftType(NFT_MSG_NEWGEN)) throw malformed(`message type 0x${m.type.toString(16)} is not NFT_MSG_NEWGEN`);
  if (m.payload.length < 4) throw malformed(`NEWGEN payload of ${m.payload.length} bytes, shorter than nfgenmsg`);
  const a = new Attrs(decodeAttrs(m.payload.subarray(4), 64), { [NFTA_GEN_ID]: 'NFTA_GEN_ID', [NFTA_GEN_PROC_PID]: 'NFTA_GEN_PROC_PID', [NFTA_GEN_PROC_NAME]: 'NFTA_GEN_PROC_NAME' });
  const genId = a.need(NFTA_GEN_ID, (t) => a.u32(t, true));
  const pid = a.u32(NFTA_GEN_PROC_PID, true);
  const procName = a.string(NFTA_GEN_PROC_NAME);
  return { genId, ...(pid === undefined ? {} : { pid }), ...(procName === undefined ? {} : { procName }) };
}

/**
 * Every message of a datagram from the kernel, classified. Strict: a bad length, a short
 * NLMSG_ERROR or a NEWGEN without its id is DC_NETLINK_MALFORMED (nothing else is thrown).
 */
export function decodeReplies(datagram: Buffer): NftReply[] {
  const out: NftReply[] = [];
  for (const m of splitMessages(datagram, 4096)) {
    if (m.type === NLMSG_ERROR) {
      const e = decodeError(m);
      if (e.errno === 0) out.push({ kind: 'ack', seq: m.seq });
      else {
        if (e.errno < 0 || e.errno > 4095) throw malformed(`NLMSG_ERROR with error ${-e.errno} is no errno`);
        out.push({ kind: 'error', seq: m.seq, errno: e.errno, requestType: e.request.type, ...(e.extMessage === undefined ? {} : { extack: e.extMessage }) });
      }
    } else if (m.type === NLMSG_DONE) out.push({ kind: 'done', seq: m.seq });
    else if (m.type === nftType(NFT_MSG_NEWGEN)) out.push({ kind: 'gen', seq: m.seq, ...decodeGen(m) });
    else out.push({ kind: 'other', seq: m.seq, type: m.type });
  }
  return out;
}
