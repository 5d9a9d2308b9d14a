import type net from 'node:net';
import { DuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import type { SpliceDone } from '../../drivers/sockets/index.js';
import type { ProxyIo } from './types.js';

/**
 * Relays bytes between two connected sockets until both directions are finished.
 *
 * - Backpressure both ways: a slow reader stops reads from the other side.
 * - Half-close: a FIN from one side becomes a FIN (shutdown of writing) on the other; the other
 *   direction keeps flowing. Both sockets must be created with allowHalfOpen: true.
 * - Reset: an error or RST on one side resets the other, so peers see what happened instead of
 *   a clean FIN.
 * - Accounting: bytes per direction; `lastActivity` for the engine's idle sweep.
 * - FIN hold: the client's FIN reaches an MPTCP upstream only once that connection has its
 *   expected joins up and carrying, at most a cap (setFinHold; docs/relay.md "The half-closed
 *   stall"): Linux opens no join on a half-closed MPTCP connection.
 *
 * Two ways to move the bytes, same semantics (docs/relay.md):
 * - `splice` (default when the addon has it): the two fds are handed to the addon's relay
 *   thread, which moves bytes socket → pipe → socket with splice(2); nothing passes through
 *   JavaScript. Bytes Node had already read (a front's leftovers) go first; Node's handles are
 *   closed right after the hand-over (no shutdown: the addon holds duplicates).
 * - `js`: stream.pipe both ways (DUOCELL_RELAY=js, or when the addon cannot splice).
 */
export interface RelayStats {
  up: number;
  down: number;
  lastActivity: number;
}

export type RelayMode = 'splice' | 'js';

export interface RelayResult {
  reset: boolean;
  error?: Error;
}

const log = logger('duocell:proxy:relay');
const EMPTY = Buffer.alloc(0);
const ECONNABORTED = 103;

let defaultMode: RelayMode | undefined;

/** What the relay uses of the socket layer. */
export type RelayIo = Pick<ProxyIo, 'fdOf' | 'spliceAvailable' | 'spliceStart' | 'spliceStats' | 'spliceAbort' | 'finHoldReady'>;

/** The FIN hold: how many joins an MPTCP upstream is expected to make, and the cap. */
export interface FinHold {
  joins: number;
  capMs: number;
}
const finHold: FinHold = { joins: 0, capMs: 2500 };
const HOLD_TICK_MS = 10;

/**
 * Set the FIN hold for sessions whose client half-closes from now on (both relay modes):
 * `joins` extra subflows expected on an MPTCP upstream (the usable uplinks but one); 0 turns
 * the hold off. DUOCELL_FIN_HOLD_MS overrides the cap (0: off).
 */
export function setFinHold(io: Pick<ProxyIo, 'spliceAvailable' | 'spliceFinHold'>, o: Partial<FinHold>): FinHold {
  const env = process.env['DUOCELL_FIN_HOLD_MS'];
  if (o.joins !== undefined) finHold.joins = Math.max(0, Math.floor(o.joins));
  if (o.capMs !== undefined) finHold.capMs = Math.max(0, Math.floor(o.capMs));
  if (env !== undefined && /^\d+$/.test(env)) finHold.capMs = Number(env);
  if (relayMode(io) === 'splice') io.spliceFinHold(finHold.joins, finHold.capMs);
  return { ...finHold };
}

/** The relay mode for new sessions: DUOCELL_RELAY=js|splice, else splice when the addon has it. */
export function relayMode(io: Pick<ProxyIo, 'spliceAvailable'>): RelayMode {
  if (defaultMode === undefined) {
    const want = process.env['DUOCELL_RELAY'];
    defaultMode = want !== 'js' && io.spliceAvailable() ? 'splice' : 'js';
    if (want === 'splice' && defaultMode === 'js') log.warn({ code: 'DC_SOCKET_NATIVE' }, 'DUOCELL_RELAY=splice but the socket addon cannot splice: relaying in JS');
  }
  return defaultMode;
}

export class Relay {
  readonly done: Promise<RelayResult>;
  #mode: RelayMode;
  #finish!: (r: RelayResult) => void;
  #settled = false;
  /** JS mode: live counters. */
  #js: RelayStats | undefined;
  /** Splice mode: the addon's session id once handed over, and the final counts. */
  #id = -1;
  #final: RelayStats | undefined;
  readonly #since = Date.now();
  #aborted = false;
  #closed = 0;
  #reset = false;
  #error: Error | undefined;
  readonly #io: RelayIo;
  /**
   * Node's sockets: let go once the fds are handed to the addon (an idle spliced session then
   * holds no Socket, stream states or listeners: docs/relay.md "Memory per session").
   */
  #client: net.Socket | undefined;
  #server: net.Socket | undefined;
  #onSpliced: (() => void) | undefined;

  /** `client` → `server` is "up"; `server` → `client` is "down". */
  constructor(client: net.Socket, server: net.Socket, io: RelayIo, mode: RelayMode = relayMode(io)) {
    this.#client = client;
    this.#server = server;
    this.#io = io;
    this.done = new Promise((r) => (this.#finish = r));
    this.#mode = mode;
    if (mode === 'splice') this.#splice();
    else this.#pipe();
  }

  /**
   * `f` runs once the fds belong to the addon and Node's sockets are closed and let go (at once
   * if that is done already): the owner drops its own references too. Never in JS mode.
   */
  onSpliced(f: () => void): void {
    if (this.#id >= 0 && this.#client === undefined) f();
    else this.#onSpliced = f;
  }

  /** How this session's bytes move (a failed splice hand-over falls back to js). */
  get mode(): RelayMode {
    return this.#mode;
  }

  get stats(): RelayStats {
    if (this.#js !== undefined) return this.#js;
    if (this.#final !== undefined) return this.#final;
    if (this.#id >= 0) {
      const s = this.#io.spliceStats(this.#id);
      if (s !== undefined) return { up: s.up, down: s.down, lastActivity: s.lastActivity };
    }
    return { up: 0, down: 0, lastActivity: this.#since };
  }

  /** A live fd of one side, for getsockopt (MPTCP_FULL_INFO) only; undefined once closed. */
  fd(side: 'client' | 'server'): number | undefined {
    if (this.#id >= 0) {
      if (this.#final !== undefined) return undefined;
      const s = this.#io.spliceStats(this.#id);
      return s === undefined ? undefined : side === 'client' ? s.clientFd : s.serverFd;
    }
    const s = side === 'client' ? this.#client : this.#server;
    return s === undefined ? undefined : this.#io.fdOf(s);
  }

  /** Reset both sides now (idle timeout, policy, shutdown deadline). */
  abort(): void {
    this.#aborted = true;
    this.#reset = true;
    if (this.#id >= 0) {
      if (this.#final === undefined) this.#io.spliceAbort(this.#id);
      return;
    }
    const { client, server } = this.#sockets();
    if (!client.destroyed) client.resetAndDestroy();
    if (!server.destroyed) server.resetAndDestroy();
  }

  /** Node's two sockets; only called before the hand-over or in JS mode, while they are held. */
  #sockets(): { client: net.Socket; server: net.Socket } {
    if (this.#client === undefined || this.#server === undefined) throw new DuocellError('DC_INTERNAL', 'relay sockets used after the splice hand-over');
    return { client: this.#client, server: this.#server };
  }

  #settle(r: RelayResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#finish(r);
  }

  // ---- splice ------------------------------------------------------------------------------

  #splice(): void {
    const { client, server } = this.#sockets();
    // Writes Node still holds (a front's reply, early bytes toward the server) must reach the
    // kernel before the fds change hands: closing a handle would drop them.
    const pending: Array<Promise<void>> = [];
    if (client.writableLength > 0 || client.connecting) pending.push(flushed(client));
    if (server.writableLength > 0 || server.connecting) pending.push(flushed(server));
    if (pending.length === 0) {
      this.#handover();
      return;
    }
    const onError = (e: Error): void => {
      this.#error ??= e;
    };
    client.on('error', onError);
    server.on('error', onError);
    void Promise.all(pending).then(() => {
      client.removeListener('error', onError);
      server.removeListener('error', onError);
      this.#handover();
    });
  }

  #handover(): void {
    const { client, server } = this.#sockets();
    if (this.#aborted || client.destroyed || server.destroyed) {
      // A side failed or closed while its writes drained, or abort() came first: reset the rest.
      if (!client.destroyed) client.resetAndDestroy();
      if (!server.destroyed) server.resetAndDestroy();
      this.#final = { up: 0, down: 0, lastActivity: Date.now() };
      this.#settle({ reset: true, ...(this.#error === undefined ? {} : { error: this.#error }) });
      return;
    }
    const cfd = this.#io.fdOf(client);
    const sfd = this.#io.fdOf(server);
    if (cfd === undefined || sfd === undefined) {
      this.#mode = 'js';
      this.#pipe();
      return;
    }
    // Bytes Node already read (a front's leftovers, data that came while paused) go first.
    const up = drain(client);
    const down = drain(server);
    try {
      this.#id = this.#io.spliceStart(cfd, sfd, (r) => this.#spliced(r), up, down);
    } catch (e) {
      log.warn({ code: (e as DuocellError).code, err: (e as Error).message }, 'splice hand-over failed: relaying in JS');
      if (up !== undefined) client.unshift(up);
      if (down !== undefined) server.unshift(down);
      this.#mode = 'js';
      this.#pipe();
      return;
    }
    // From here Node must not touch the fds: close its handles. uv_close neither shuts down nor
    // resets; the addon relays on its own duplicates.
    client.destroy();
    server.destroy();
    this.#client = undefined;
    this.#server = undefined;
    const f = this.#onSpliced;
    this.#onSpliced = undefined;
    f?.();
  }

  #spliced(r: SpliceDone): void {
    this.#final = { up: r.up, down: r.down, lastActivity: Date.now() };
    if (r.reset) log.debug({ code: 'DC_PROXY_RESET', errno: r.errnoName ?? r.errno, up: r.up, down: r.down }, 'spliced session reset');
    const error =
      r.reset && r.errno !== 0 && r.errno !== ECONNABORTED
        ? new DuocellError('DC_PROXY_RESET', `${r.errnoName ?? r.errno} on one side; reset propagated`, { errno: r.errno, origin: 'kernel' })
        : undefined;
    this.#settle({ reset: r.reset, ...(error === undefined ? {} : { error }) });
  }

  // ---- js ----------------------------------------------------------------------------------

  #pipe(): void {
    const { client, server } = this.#sockets();
    const st: RelayStats = { up: 0, down: 0, lastActivity: Date.now() };
    this.#js = st;
    client.on('data', (d: Buffer) => {
      st.up += d.length;
      st.lastActivity = Date.now();
    });
    server.on('data', (d: Buffer) => {
      st.down += d.length;
      st.lastActivity = Date.now();
    });
    // The client's EOF ends the upstream through the FIN hold; the other way as pipe does.
    client.pipe(server, { end: false });
    client.once('end', () => endHeld(this.#io, server));
    server.pipe(client);
    const onError = (peer: net.Socket) => (e: Error) => {
      if (!this.#reset) {
        this.#reset = true;
        this.#error = e;
      }
      if (!peer.destroyed) peer.resetAndDestroy();
    };
    client.on('error', onError(server));
    server.on('error', onError(client));
    const onClose = (): void => {
      if (++this.#closed === 2) this.#settle({ reset: this.#reset, ...(this.#error === undefined ? {} : { error: this.#error }) });
    };
    // A socket fully closed (both directions) while its peer still has data in flight: the
    // peer finishes on its own (pipe end / FIN); if the closed one was reset, the peer is reset.
    client.once('close', onClose);
    server.once('close', onClose);
    // When both directions have ended, close both promptly.
    const maybeClose = (): void => {
      if (client.readableEnded && server.readableEnded) {
        if (client.writableFinished) client.destroy();
        else client.once('finish', () => client.destroy());
        if (server.writableFinished) server.destroy();
        else server.once('finish', () => server.destroy());
      }
    };
    client.on('end', maybeClose);
    server.on('end', maybeClose);
    client.resume();
  }
}

/** End `upstream` (a FIN after what is queued) once the FIN hold lets it (JS mode). */
function endHeld(io: Pick<ProxyIo, 'fdOf' | 'finHoldReady'>, upstream: net.Socket): void {
  const { joins, capMs } = finHold;
  const may = (): boolean => {
    if (upstream.destroyed || upstream.readableEnded) return true;
    const fd = io.fdOf(upstream);
    return fd === undefined || io.finHoldReady(fd, joins);
  };
  if (joins <= 0 || capMs <= 0 || may()) {
    if (!upstream.destroyed) upstream.end();
    return;
  }
  const until = Date.now() + capMs;
  const timer = setInterval(() => {
    if (Date.now() < until && !may()) return;
    clearInterval(timer);
    if (!upstream.destroyed) upstream.end();
  }, HOLD_TICK_MS);
}

/** Resolves when every write Node holds for `s` has reached the kernel (or `s` is gone). */
function flushed(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      s.removeListener('close', done);
      resolve();
    };
    s.once('close', done);
    s.write(EMPTY, done);
  });
}

/** Take what Node has buffered on the readable side. */
function drain(s: net.Socket): Buffer | undefined {
  if (s.readableLength === 0) return undefined;
  const parts: Buffer[] = [];
  for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) parts.push(c);
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}
