/**
 * The client side of a SOCKS5 CONNECT (RFC 1928) with optional username/password (RFC 1929),
 * as a pure state machine: bytes in, bytes to send and the outcome out. No I/O, no timers.
 *
 *   start() ──► greeting 05 N METHODS (00; 02 first when credentials are set)
 *   method   ← 05 M     00 ──► request          02 (and credentials) ──► 01 ULEN U PLEN P
 *                       FF ──► DC_SOCKS_PEER_AUTH      anything else ──► DC_SOCKS_MALFORMED
 *   auth     ← 01 S     00 ──► request           else ──► DC_SOCKS_PEER_AUTH
 *   reply    ← 05 REP 00 ATYP BND.ADDR BND.PORT
 *                       00 ──► done: the bound address (IPv4, IPv6 or a name, as sent) and
 *                              every byte after the reply, untouched (`rest`: the server's
 *                              first bytes may share a segment with the reply)
 *                       else ──► socksReplyFault(REP)
 *
 * Every fault is a DuocellError: origin 'peer' with `detail.socksReply` for a failure reply,
 * DC_SOCKS_VERSION / DC_SOCKS_MALFORMED / DC_SOCKS_ADDRESS_TYPE for bytes that are not SOCKS5.
 */
import { DuocellError, type ErrorCode } from '../../core/errors.js';
import {
  SOCKS_REPLY_NAMES,
  SocksCommand,
  SocksMethod,
  SocksReply,
  encodeGreeting,
  encodeRequest,
  encodeUserPassRequest,
  parseMethodSelection,
  parseReply,
  parseUserPassReply,
  type SocksAddress,
} from './codec.js';

/**
 * What a failure reply means for whoever chose this proxy:
 *   'session'   the proxy worked and answered about the server (or its own rules for this
 *               target): the session fails, the proxy is healthy, another proxy would say the same;
 *   'candidate' the proxy itself failed or cannot serve CONNECT: count it against the proxy, try another;
 *   'elsewhere' the proxy is fine but cannot take this target (address type): try another, count nothing.
 */
export type SocksOutcome = 'session' | 'candidate' | 'elsewhere';

const REPLY_CLASS: Readonly<Record<number, { code: ErrorCode; outcome: SocksOutcome }>> = {
  [SocksReply.GENERAL_FAILURE]: { code: 'DC_SOCKS_PEER_REPLY', outcome: 'candidate' },
  [SocksReply.NOT_ALLOWED]: { code: 'DC_SOCKS_PEER_NOT_ALLOWED', outcome: 'session' },
  [SocksReply.NETWORK_UNREACHABLE]: { code: 'DC_SOCKS_PEER_UNREACHABLE', outcome: 'session' },
  [SocksReply.HOST_UNREACHABLE]: { code: 'DC_SOCKS_PEER_UNREACHABLE', outcome: 'session' },
  [SocksReply.CONNECTION_REFUSED]: { code: 'DC_SOCKS_PEER_REFUSED', outcome: 'session' },
  [SocksReply.TTL_EXPIRED]: { code: 'DC_SOCKS_PEER_UNREACHABLE', outcome: 'session' },
  [SocksReply.COMMAND_NOT_SUPPORTED]: { code: 'DC_SOCKS_PEER_REPLY', outcome: 'candidate' },
  [SocksReply.ADDRESS_TYPE_NOT_SUPPORTED]: { code: 'DC_SOCKS_PEER_ADDRESS_TYPE', outcome: 'elsewhere' },
};

/** The error for a failure reply (REP ≠ 00): a stable code, the REP code and its outcome in detail. */
export function socksReplyFault(rep: number, where = 'the SOCKS5 proxy'): DuocellError {
  const c = REPLY_CLASS[rep] ?? { code: 'DC_SOCKS_PEER_REPLY' as const, outcome: 'candidate' as const };
  const name = SOCKS_REPLY_NAMES[rep] ?? `unassigned reply ${rep}`;
  return new DuocellError(c.code, `${where} answered CONNECT with ${rep} (${name})`, {
    origin: 'peer',
    socksReply: rep,
    outcome: c.outcome,
  });
}

export interface Socks5ClientOptions {
  /** Where the proxy should connect: a numeric IPv4/IPv6 address or a domain name. */
  host: string;
  port: number;
  /** RFC 1929 credentials (1–255 bytes each as UTF-8). */
  auth?: { username: string; password: string };
}

export interface Socks5Connected {
  /** BND.ADDR/BND.PORT of the reply: the proxy's address toward the server, as it gave it. */
  bound: SocksAddress & { port: number };
  /** Bytes that came after the reply: the server's, to be relayed as they are. */
  rest: Buffer;
}

export interface Socks5Step {
  /** Bytes to write to the proxy now. */
  send?: Buffer;
  /** The CONNECT succeeded. */
  done?: Socks5Connected;
}

type State = 'start' | 'method' | 'auth' | 'reply' | 'done' | 'failed';

const EMPTY = Buffer.alloc(0);

export class Socks5ClientHandshake {
  #state: State = 'start';
  #buf: Buffer = EMPTY;
  readonly #greeting: Buffer;
  readonly #request: Buffer;
  readonly #userpass: Buffer | undefined;

  /** Encodes every message up front: a bad target or credential throws DC_SOCKS_ENCODE here. */
  constructor(o: Socks5ClientOptions) {
    this.#request = encodeRequest(SocksCommand.CONNECT, o.host, o.port);
    if (o.port < 1) throw new DuocellError('DC_SOCKS_ENCODE', 'CONNECT to port 0');
    this.#userpass = o.auth === undefined ? undefined : encodeUserPassRequest(o.auth.username, o.auth.password);
    this.#greeting = encodeGreeting(this.#userpass === undefined ? [SocksMethod.NO_AUTH] : [SocksMethod.USERPASS, SocksMethod.NO_AUTH]);
  }

  get state(): State {
    return this.#state;
  }

  /** The greeting: write it first. */
  start(): Buffer {
    if (this.#state !== 'start') throw new DuocellError('DC_INTERNAL', 'SOCKS5 client started twice');
    this.#state = 'method';
    return this.#greeting;
  }

  /** Bytes from the proxy (any split). Throws on a fault; after `done` nothing more is read. */
  feed(chunk: Uint8Array): Socks5Step {
    if (this.#state === 'start' || this.#state === 'done' || this.#state === 'failed') {
      throw new DuocellError('DC_INTERNAL', `SOCKS5 client fed in state ${this.#state}`);
    }
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#buf = this.#buf.length === 0 ? c : Buffer.concat([this.#buf, c]);
    try {
      return this.#advance();
    } catch (e) {
      this.#state = 'failed';
      throw e;
    }
  }

  #advance(): Socks5Step {
    const send: Buffer[] = [];
    const step = (): Socks5Step => (send.length === 0 ? {} : { send: send.length === 1 ? send[0]! : Buffer.concat(send) });
    for (;;) {
      switch (this.#state) {
        case 'method': {
          const r = parseMethodSelection(this.#buf);
          if ('need' in r) return step();
          this.#buf = this.#buf.subarray(r.consumed);
          const m = r.value.method;
          if (m === SocksMethod.NO_ACCEPTABLE) {
            throw new DuocellError('DC_SOCKS_PEER_AUTH', `the SOCKS5 proxy accepts none of the methods offered (${this.#userpass === undefined ? 'no authentication' : 'username/password, no authentication'})`, { origin: 'peer', method: m });
          }
          if (m === SocksMethod.USERPASS && this.#userpass !== undefined) {
            send.push(this.#userpass);
            this.#state = 'auth';
          } else if (m === SocksMethod.NO_AUTH) {
            send.push(this.#request);
            this.#state = 'reply';
          } else {
            throw new DuocellError('DC_SOCKS_MALFORMED', `the SOCKS5 proxy chose method ${m}, which was not offered`, { origin: 'peer', method: m });
          }
          break;
        }
        case 'auth': {
          const r = parseUserPassReply(this.#buf);
          if ('need' in r) return step();
          this.#buf = this.#buf.subarray(r.consumed);
          if (r.value.status !== 0) {
            throw new DuocellError('DC_SOCKS_PEER_AUTH', `the SOCKS5 proxy refused our username/password (status ${r.value.status})`, { origin: 'peer', status: r.value.status });
          }
          send.push(this.#request);
          this.#state = 'reply';
          break;
        }
        case 'reply': {
          let r;
          try {
            r = parseReply(this.#buf);
          } catch (e) {
            throw e instanceof DuocellError ? new DuocellError(e.code, `the SOCKS5 proxy's reply: ${e.message}`, { ...e.detail, origin: 'peer' }) : e;
          }
          if ('need' in r) return step();
          if (r.value.reply !== SocksReply.SUCCEEDED) throw socksReplyFault(r.value.reply);
          const rest = this.#buf.subarray(r.consumed);
          this.#buf = EMPTY;
          this.#state = 'done';
          return { ...step(), done: { bound: { ...r.value.address, port: r.value.port }, rest } };
        }
        default:
          throw new DuocellError('DC_INTERNAL', `SOCKS5 client in state ${this.#state}`);
      }
    }
  }
}
