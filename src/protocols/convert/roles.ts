/**
 * Which TLVs each side may send (RFC 8803 sections 4 and 5): a parsed message checked for the
 * converter's role (a client's request) or the client's (a converter's response).
 */
import { ConvertErrorCode, convertErrorName } from './constants.js';
import type { ConvertGrant } from './grant.js';
import type { TcpOption, ConvertMessage } from './tlv.js';
import { convertFault, malformed } from './faults.js';

export interface ConvertRequest {
  connect?: { address: string; port: number; tcpOptions: TcpOption[] };
  info: boolean;
  cookie?: Buffer;
  /** The client asked for the duocell grant extension (answered only on success). */
  grant?: true;
}

/**
 * What a converter accepts from a client: at most one each of Info, Connect, Cookie, and at
 * least one of Info or Connect. Converter-only TLVs are "Unsupported Message", repeats and
 * an empty request are "Malformed Message".
 */
export function validateRequest(msg: ConvertMessage): ConvertRequest {
  const out: { connect?: ConvertRequest['connect']; info: boolean; cookie?: Buffer; grant?: true } = { info: false };
  for (const t of msg.tlvs) {
    switch (t.type) {
      case 'info':
        if (out.info) throw malformed('two Info TLVs', 0);
        out.info = true;
        break;
      case 'connect':
        if (out.connect !== undefined) throw malformed('two Connect TLVs', 0);
        out.connect = { address: t.address, port: t.port, tcpOptions: t.tcpOptions };
        break;
      case 'cookie':
        if (out.cookie !== undefined) throw malformed('two Cookie TLVs', 0);
        out.cookie = t.cookie;
        break;
      case 'grant-request':
        if (out.grant !== undefined) throw malformed('two grant requests', 0);
        out.grant = true;
        break;
      default:
        // Error, Extended TCP Header, Supported TCP Extensions, a grant, a foreign private TLV.
        throw convertFault(ConvertErrorCode.UNSUPPORTED_MESSAGE, `a client may not send a ${t.type} TLV`, {
          tlvType: t.type,
        });
    }
  }
  if (out.connect === undefined && !out.info) throw malformed('neither Connect nor Info TLV', 0);
  return out;
}

export interface ConvertResponse {
  error?: { code: number; name: string; value: Buffer };
  extendedTcpHeader?: Buffer;
  supportedTcpExtensions?: number[];
  cookie?: Buffer;
  /** The duocell grant extension, when the converter sent one. */
  grant?: ConvertGrant;
}

/** What a client accepts from a converter: Error, Extended TCP Header, Supported TCP
 * Extensions, Cookie, the duocell grant (at most one each). Private Use TLVs that are not ours
 * are skipped: the range is the operator's own, and a client that does not know one cannot act
 * on it. */
export function validateResponse(msg: ConvertMessage): ConvertResponse {
  const out: ConvertResponse = {};
  for (const t of msg.tlvs) {
    switch (t.type) {
      case 'error':
        if (out.error !== undefined) throw malformed('two Error TLVs', 0);
        out.error = { code: t.code, name: convertErrorName(t.code), value: t.value };
        break;
      case 'extended-tcp-header':
        if (out.extendedTcpHeader !== undefined) throw malformed('two Extended TCP Header TLVs', 0);
        out.extendedTcpHeader = t.tcpOptions;
        break;
      case 'supported-tcp-extensions':
        if (out.supportedTcpExtensions !== undefined) throw malformed('two Supported TCP Extensions TLVs', 0);
        out.supportedTcpExtensions = t.kinds;
        break;
      case 'cookie':
        if (out.cookie !== undefined) throw malformed('two Cookie TLVs', 0);
        out.cookie = t.cookie;
        break;
      case 'grant':
        if (out.grant !== undefined) throw malformed('two grant TLVs', 0);
        out.grant = t.grant;
        break;
      case 'private':
        break;
      default:
        throw convertFault(ConvertErrorCode.UNSUPPORTED_MESSAGE, `a converter may not send a ${t.type} TLV`, {
          tlvType: t.type,
        });
    }
  }
  return out;
}
