import type net from 'node:net';
import type { DuocellError } from '../../core/errors.js';
import type { ConvertGrant } from '../../protocols/convert/grant.js';
import type { Accepted, AcceptWatch, ConnectSocketOptions, FullInfo, ListenOptions, SpliceDone, SpliceStats } from '../../drivers/sockets/index.js';

/** The proxy engine's vocabulary, shared by fronts (how clients ask) and connectors (how we reach servers). */

/**
 * The socket operations the engine, connector, relay and session use, and nothing else: the
 * proxy receives them (production wiring passes drivers/sockets/io.ts `socketIo`; tests may
 * pass fakes). Sockets are kernel fds wrapped in Node sockets; splice* is the addon's relay.
 */
export interface ProxyIo {
  /** A Node socket over a connected (or connecting) kernel socket. */
  socketOn(fd: number): net.Socket;
  /** A Node socket over an fd the fast path accepted, as the server would hand it (paused, half-open, no delay): the JS path takes it on. */
  acceptedOn(fd: number): net.Socket;
  /** A Node server (paused, half-open, no delay) whose connections go to `onClient`; listened on an fd by the engine. */
  server(onClient: (c: net.Socket) => void): net.Server;
  createListenSocket(o: ListenOptions): number;
  createConnectSocket(o: ConnectSocketOptions): number;
  /** The kernel fd behind a Node socket or server (undefined once closed). */
  fdOf(s: net.Socket | net.Server): number | undefined;
  isMptcp(fd: number): boolean;
  /** MPTCP_FULL_INFO of a connection: its subflows; undefined when not MPTCP. */
  fullInfo(fd: number): FullInfo | undefined;
  spliceAvailable(): boolean;
  spliceStart(clientFd: number, serverFd: number, onDone: (r: SpliceDone) => void, earlyUp?: Buffer, earlyDown?: Buffer): number;
  spliceStats(id: number): SpliceStats | undefined;
  spliceAbort(id: number): boolean;
  /** The FIN hold of the splice thread: joins expected on an MPTCP upstream, and the cap. */
  spliceFinHold(joins: number, capMs: number): void;
  /** An MPTCP upstream has its `joins` extra subflows, all established and carrying bytes (or is not MPTCP). */
  finHoldReady(fd: number, joins: number): boolean;
  /** The fast path (services/proxy/fast.ts) can run: accept, connect and splice without Node sockets. */
  fastAvailable(): boolean;
  /**
   * Accept on a listening fd in batches, one call per wake-up; `errno` ≠ 0: stopped on that error, resume() goes on.
   * `local`: the connections' local address when it is known (no getsockname per connection).
   */
  acceptWatch(fd: number, onBatch: (accepted: Accepted[], errno: number) => void, local?: Endpoint): AcceptWatch;
  listen(fd: number, backlog: number): void;
  /** A non-blocking connect to a numeric address (throws when it fails at once). */
  connectStart(fd: number, host: string, port: number): void;
  sockName(fd: number): Endpoint;
  /** Close so that the peer sees a RST. */
  closeReset(fd: number): void;
  close(fd: number): void;
  /**
   * Relay between an accepted fd and a connecting one (the relay takes both fds); `keepClient`:
   * a connect that fails (or an abort before it completes) hands the client fd back in
   * SpliceDone.clientFd; `plain`: the server fd is plain TCP (onConnected(false) without asking).
   * See drivers/sockets/splice.ts.
   */
  spliceConnect(clientFd: number, serverFd: number, onConnected: (serverMptcp: boolean) => void, onDone: (r: SpliceDone) => void, keepClient?: boolean, plain?: boolean): number;
}

export interface Endpoint {
  address: string;
  port: number;
}

/** Where a client wants to go: a numeric address or (SOCKS5) a domain name. */
export interface Target {
  host: string;
  port: number;
}

/** A subflow's access label (core/model.ts SubflowAccess, under this folder's old name). */
export type { SubflowAccess as AccessType, Combination } from '../../core/model.js';
import type { SubflowAccess as AccessType, Combination } from '../../core/model.js';
export type FrontName = 'transparent' | 'explicit' | 'convert' | 'socks5';

export interface ListenerSpec {
  name: string;
  host: string;
  port: number;
  /** Accept MPTCP (plain TCP clients still work: fallback). */
  mptcp: boolean;
  /** TPROXY'd: the accepted socket's local address is the original destination. */
  transparent?: boolean;
  /** TCP Fast Open queue on the listener (0/undefined = off). */
  fastOpen?: number;
  backlog?: number;
  front: FrontProtocol;
  connector: Connector;
  /** Per-listener upstream choice (default: plain TCP). */
  upstream?: UpstreamOptions;
}

export interface FrontInfo {
  listener: ListenerSpec;
  local: Endpoint;
  remote: Endpoint;
  clientMptcp: boolean;
}

export interface FrontRequest {
  target: Target;
  /** Bytes the front read beyond its request: forwarded upstream first (and in the SYN with TFO). */
  early?: Buffer;
  /** Who the client is, when the front authenticated it (SOCKS5 user, Convert cookie owner). */
  subscriber?: string;
  /** The TLS server name of the client's ClientHello, when the front peeked one (transparent, SNI rules). */
  sni?: string;
}

/**
 * What the resource policy grants one session: the limits and the path ratio actually in force.
 * Explicit fronts tell it to clients that ask (the Convert grant extension), the API shows it per
 * session. The same shape as the Convert codec's grant.
 */
export type Grant = ConvertGrant;

export type FrontResult =
  | { ok: true; upstream: net.Socket; local: Endpoint; serverMptcp: boolean; grant?: Grant }
  | { ok: false; error: DuocellError };

/**
 * How a client asks for a connection. accept() reads the request (transparent: nothing to read);
 * answer() tells the client the outcome (Convert reply, SOCKS reply; for transparent, a failure
 * resets the client). The engine relays only after answer() resolves.
 */
export interface FrontProtocol {
  readonly name: FrontName;
  /**
   * Fronts that read nothing from the client (explicit, transparent): the target from the
   * connection alone. Such a front may run on the fast path (fast.ts), with no Node socket.
   */
  readonly fixed?: (info: FrontInfo) => Target;
  /**
   * A front with `fixed` that still reads some connections (the SNI front peeks a ClientHello
   * where a rule could use it): true sends this connection to the JS path.
   */
  readonly reads?: (info: FrontInfo) => boolean;
  accept(client: net.Socket, info: FrontInfo): Promise<FrontRequest>;
  answer(client: net.Socket, result: FrontResult, info: FrontInfo): Promise<void> | void;
}

export interface UpstreamOptions {
  /** Open the upstream connection with IPPROTO_MPTCP (falls back to TCP if the server does not speak it). */
  mptcp: boolean;
  /** Candidate source addresses (first matching the target's family is used for the first subflow). */
  localAddresses?: string[];
  mark?: number;
  device?: string;
  /** Use TCP_FASTOPEN_CONNECT so early bytes ride in the SYN. */
  fastOpen?: boolean;
  connectTimeoutMs?: number;
}

export interface ConnectRequest {
  target: Target;
  early?: Buffer;
  options: UpstreamOptions;
  signal: AbortSignal;
  /** Who asks (the engine fills these in): proxy selection resolves the subscriber policy from them. */
  client?: Endpoint;
  subscriber?: string;
  /** The client's TLS server name, when the front read one: proxy selection matches applications by it. */
  sni?: string;
  /** The socket operations to connect with (the engine passes its own). */
  io: ProxyIo;
  /** What place() decided for this session on the fast path (the connector's own): go on from there. */
  placed?: unknown;
  /**
   * The client's socket (paused), for a connector that sends the client's bytes on before its
   * own reply came (the Convert client's 0-RTT). Such a connector leaves it paused when it
   * returns, and puts back in front of its stream (unshift) what it took when it fails, so the
   * next attempt and the relay see every byte once, in order.
   */
  clientSocket?: net.Socket;
}

/** What place() is asked: the session as the fast path knows it after admission. */
export interface PlaceRequest {
  target: Target;
  options: UpstreamOptions;
  client: Endpoint;
  subscriber?: string;
}

/**
 * Where a connector that chooses per session (proxy selection) puts one, asked by the fast
 * path before it connects. `direct`: straight from the cell to `target` with `options`, no
 * protocol to speak; the fast path connects it and reports back. Otherwise the JS path takes
 * the session and passes `resume` to connect() as `placed`.
 */
export type Placement =
  | { direct: false; resume: unknown }
  | {
      direct: true;
      /** The candidate chosen, when one was (the session's `proxy`). */
      via?: string;
      options: UpstreamOptions;
      /** Another attempt follows if this one fails: keep the client for it. */
      more: boolean;
      /** The connect completed (the session is the candidate's until ended()). */
      connected(): void;
      ended(): void;
      /** The connect failed: `resume` for connect() when another attempt follows, else undefined (refuse with `err`). */
      failed(err: DuocellError): { resume: unknown } | undefined;
    };

/** Reaches the server: directly (plain TCP or MPTCP) or through a concentrator (Convert client). */
export interface Connector {
  readonly name: string;
  /**
   * `via`: the candidate proxy chosen for this session (proxy selection), when one was.
   * `converter`: the socket's peer is a Transport Converter (RFC 8803), not the server: its
   * speaking MPTCP says nothing about the server (no end-to-end bypass to remember).
   */
  connect(req: ConnectRequest): Promise<{ socket: net.Socket; serverMptcp: boolean; via?: string; converter?: boolean }>;
  /** A connector that chooses per session tells the fast path where this one goes (see Placement). */
  place?(req: PlaceRequest): Placement;
}

/**
 * Optional admission control (resource policy): throw a DuocellError to refuse (a limit:
 * DC_POLICY_LIMIT). May return the grant in force; `release` is called once the admitted
 * session ends, whether it was relayed or not.
 */
export type Admit = (info: FrontInfo, req: FrontRequest) => void | Admission | Promise<void | Admission>;

export interface Admission {
  grant?: Grant;
  release?: () => void;
}

export interface SubflowView {
  side: 'client' | 'server';
  id: number;
  local: Endpoint;
  remote: Endpoint;
  access: AccessType;
  bytesSent: number;
  bytesReceived: number;
  rttUs: number;
}

export interface SessionView {
  id: string;
  listener: string;
  front: FrontName;
  client: Endpoint & { mptcp: boolean };
  server: Endpoint & { mptcp: boolean; host?: string };
  combination: Combination;
  action: string;
  state: 'connecting' | 'relaying' | 'closing';
  startedAt: string;
  subscriber?: string;
  /** The resource policy's grant for this session, when an admission hook gave one. */
  grant?: Grant;
  /** The candidate proxy chosen for this session (proxy selection), when one was. */
  proxy?: string;
  /** The TLS server name the transparent front read from the ClientHello (SNI rules), when it did. */
  sni?: string;
  /** MPTCP connection tokens (MPTCP_INFO) of the client and server sides: the path manager's key. */
  tokens?: { client?: number; server?: number };
  bytes: { up: number; down: number };
  subflows: SubflowView[];
}
