import type net from 'node:net';
import type { FullInfo } from '../../drivers/sockets/index.js';
import { unmapV4 } from '../../core/net.js';
import type { Relay } from './relay.js';
import type { AccessType, Combination, Endpoint, FrontName, Grant, ProxyIo, SessionView, SubflowView, Target } from './types.js';

/**
 * What `Session.client` is once the relay has spliced the session: Node's socket is closed and
 * let go (about 2 KiB a session with its stream states and listeners), and the engine only asks
 * whether it is destroyed or destroys it again.
 */
const HANDED_OVER = Object.freeze({
  destroyed: true,
  destroy(): unknown {
    return HANDED_OVER;
  },
  resetAndDestroy(): unknown {
    return HANDED_OVER;
  },
}) as unknown as net.Socket;

/** ISO 8601 text of a wall-clock ms; sessions started in the same ms share the last one made. */
let lastIso = { ms: NaN, text: '' };
function isoOf(ms: number): string {
  if (ms !== lastIso.ms) lastIso = { ms, text: new Date(ms).toISOString() };
  return lastIso.text;
}

/** What a session needs of its relay (the JS/splice Relay, or the fast path's FastRelay). */
export type RelayLike = Pick<Relay, 'stats' | 'fd' | 'abort'> & Partial<Pick<Relay, 'onSpliced'>>;

/** One client connection through the proxy, from accept to the last byte. */
export class Session {
  readonly #startedAt = Date.now();
  #startedIso: string | undefined;
  state: SessionView['state'] = 'connecting';
  upstream: net.Socket | undefined;
  #relay: RelayLike | undefined;
  #client: net.Socket | undefined;
  serverMptcp = false;
  server: Endpoint | undefined;
  subscriber: string | undefined;
  grant: Grant | undefined;
  via: string | undefined;
  sni: string | undefined;
  release: (() => void) | undefined;
  action = 'pending';
  /** Last per-subflow figures, kept after the sockets close. */
  lastClientInfo: FullInfo | undefined;
  lastServerInfo: FullInfo | undefined;

  constructor(
    readonly id: string,
    readonly listener: string,
    readonly front: FrontName,
    /** Undefined on the fast path (no Node socket: the addon holds the fd). */
    client: net.Socket | undefined,
    readonly clientEndpoint: Endpoint,
    readonly clientMptcp: boolean,
    public target: Target | undefined,
    readonly io: Pick<ProxyIo, 'fdOf' | 'fullInfo'>,
  ) {
    this.#client = client;
  }

  get startedAt(): Date {
    return new Date(this.#startedAt);
  }

  /** A fast-path session the JS path takes on (proxy selection): its client socket from now on. */
  adoptClient(c: net.Socket): void {
    this.#client = c;
  }

  /** The client's socket; a destroyed stand-in once the relay has spliced the session. */
  get client(): net.Socket {
    return this.#client ?? HANDED_OVER;
  }

  get relay(): RelayLike | undefined {
    return this.#relay;
  }

  /** Setting the relay lets go of both sockets once it has handed their fds to the addon. */
  set relay(r: RelayLike | undefined) {
    this.#relay = r;
    r?.onSpliced?.(() => {
      if (this.#relay !== r) return;
      this.#client = undefined;
      this.upstream = undefined;
    });
  }

  get combination(): Combination {
    return `${this.clientMptcp ? 'M' : 'N'}-${this.serverMptcp ? 'M' : 'N'}` as Combination;
  }

  /** Refresh per-subflow figures from the kernel (MPTCP_FULL_INFO); cheap, not on the data path. */
  sample(): void {
    // Once relaying, the relay knows the live fds (a spliced session's are no longer Node's).
    // A plain TCP side has no subflows to sample: its fd is not even looked up.
    if (this.clientMptcp) {
      const cfd = this.relay !== undefined ? this.relay.fd('client') : this.#client === undefined ? undefined : this.io.fdOf(this.#client);
      if (cfd !== undefined) this.lastClientInfo = this.io.fullInfo(cfd) ?? this.lastClientInfo;
    }
    if (this.serverMptcp) {
      const sfd = this.relay !== undefined ? this.relay.fd('server') : this.upstream === undefined ? undefined : this.io.fdOf(this.upstream);
      if (sfd !== undefined) this.lastServerInfo = this.io.fullInfo(sfd) ?? this.lastServerInfo;
    }
  }

  view(label: (address: string) => AccessType): SessionView {
    this.sample();
    const subflows: SubflowView[] = [];
    const add = (side: 'client' | 'server', fi: FullInfo | undefined): void => {
      for (const s of fi?.subflows ?? []) {
        const local = { address: unmapV4(s.local?.address ?? ''), port: s.local?.port ?? 0 };
        const remote = { address: unmapV4(s.remote?.address ?? ''), port: s.remote?.port ?? 0 };
        subflows.push({
          side,
          id: s.id,
          local,
          remote,
          // Toward the UE a subflow's access network is where the UE's address lives (a join may
          // target our first address over another radio); toward the server, our own uplink.
          access: side === 'client' ? label(remote.address) : label(local.address),
          bytesSent: Number(s.tcp.bytesSent),
          bytesReceived: Number(s.tcp.bytesReceived),
          rttUs: s.tcp.rttUs,
        });
      }
    };
    add('client', this.lastClientInfo);
    add('server', this.lastServerInfo);
    const target = this.target;
    const server = this.server ?? { address: target?.host ?? '', port: target?.port ?? 0 };
    const stats = this.relay?.stats;
    // Built property by property in one order (the JSON's): object spreads of conditional
    // literals made V8 build new hidden classes on every call (two views per session).
    const sv: SessionView['server'] = { address: server.address, port: server.port, mptcp: this.serverMptcp };
    if (target !== undefined && target.host !== server.address) sv.host = target.host;
    const v: SessionView = {
      id: this.id,
      listener: this.listener,
      front: this.front,
      client: { address: this.clientEndpoint.address, port: this.clientEndpoint.port, mptcp: this.clientMptcp },
      server: sv,
      combination: this.combination,
      action: this.action,
      state: this.state,
      startedAt: (this.#startedIso ??= isoOf(this.#startedAt)),
    } as SessionView;
    if (this.subscriber !== undefined) v.subscriber = this.subscriber;
    if (this.grant !== undefined) v.grant = this.grant;
    if (this.via !== undefined) v.proxy = this.via;
    if (this.sni !== undefined) v.sni = this.sni;
    if (this.lastClientInfo !== undefined || this.lastServerInfo !== undefined) {
      const tokens: NonNullable<SessionView['tokens']> = {};
      if (this.lastClientInfo !== undefined) tokens.client = this.lastClientInfo.info.token;
      if (this.lastServerInfo !== undefined) tokens.server = this.lastServerInfo.info.token;
      v.tokens = tokens;
    }
    v.bytes = { up: stats?.up ?? 0, down: stats?.down ?? 0 };
    v.subflows = subflows;
    return v;
  }
}

/** Live sessions, by id. Counters for what has finished. */
export class SessionRegistry {
  readonly #live = new Map<string, Session>();
  #seq = 0;
  readonly totals = {
    accepted: 0,
    completed: 0,
    failed: 0,
    reset: 0,
    idleClosed: 0,
    bytesUp: 0,
    bytesDown: 0,
    byCombination: { 'M-N': 0, 'M-M': 0, 'N-N': 0, 'N-M': 0 } as Record<Combination, number>,
  };

  nextId(): string {
    this.#seq++;
    return `${Date.now().toString(36)}-${this.#seq.toString(36)}`;
  }

  add(s: Session): void {
    this.#live.set(s.id, s);
    this.totals.accepted++;
  }

  remove(s: Session): void {
    if (!this.#live.delete(s.id)) return;
    const stats = s.relay?.stats;
    this.totals.bytesUp += stats?.up ?? 0;
    this.totals.bytesDown += stats?.down ?? 0;
  }

  get(id: string): Session | undefined {
    return this.#live.get(id);
  }

  get size(): number {
    return this.#live.size;
  }

  values(): IterableIterator<Session> {
    return this.#live.values();
  }
}
