import { DuocellError, isDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { toIPv6Bytes } from '../../protocols/convert/index.js';

/**
 * Explicit traffic steering on a concentrator (draft-deng-mptcp-proxy; RFC 8684 section 3.1 and
 * 3.4.1): clients reach the Convert / SOCKS5 service on a SHARED address (anycast, or behind a
 * load balancer); every later subflow must reach the same instance, so the instance
 *   1. refuses joins on the address and port the connection started on: the MP_CAPABLE "C" flag,
 *      net.mptcp.allow_join_initial_addr_port = 0 (per network namespace);
 *   2. announces its own unique, routable address(es) with ADD_ADDR: one in-kernel `signal`
 *      endpoint each, with a port when the service listens on the shared address only (the
 *      kernel then listens for MP_JOINs on that address and port itself).
 *
 *   start():  read sysctl (kept) → write 0 → for each announce: add `signal` endpoint
 *             (an endpoint left by a crashed run with the same address, port and flag is adopted)
 *   stop():   delete the endpoints we added or adopted → write the sysctl back
 *   any step failing in start() undoes the steps before it, then throws with a stable code.
 *
 * No I/O here: the sysctl file and the mptcp_pm client are injected (src/wiring/explicit.ts).
 */

const log = logger('duocell:steering:explicit');

/** The path manager type of the namespace (0 in-kernel, 1 userspace; the name every kernel since 5.19 knows). */
export const PM_SYSCTL = 'net.mptcp.pm_type';
export const JOIN_SYSCTL = 'net.mptcp.allow_join_initial_addr_port';

export interface Announce {
  address: string;
  port?: number;
  /** Interface the address is on (the kernel's endpoint ifindex). */
  ifIndex?: number;
  /** Endpoint id (1-255; default: the kernel picks). */
  id?: number;
}

export interface AnnounceConfig {
  /** Set the C flag (refuse joins to the initial address and port). Default true. */
  refuseInitialJoins: boolean;
  announce: Announce[];
  /** Set the kernel's subflow limit (joins accepted per connection); undefined: leave it. */
  subflows?: number;
}

/** What the announcer needs from the kernel. */
export interface AnnounceOps {
  readSysctl(name: string): string;
  writeSysctl(name: string, value: string): void;
  /** 'kernel' or 'userspace': signal endpoints are the in-kernel path manager's. */
  pathManager(): 'kernel' | 'userspace';
  endpoints(): Promise<Array<{ id: number; address: string; port?: number; flags: readonly string[] }>>;
  addEndpoint(e: { address: string; port?: number; id?: number; ifIndex?: number; flags: readonly ['signal'] }): Promise<void>;
  deleteEndpoint(id: number, address: string): Promise<void>;
  limits(): Promise<{ addAddrAccepted: number; subflows: number }>;
  setLimits(l: { addAddrAccepted: number; subflows: number }): Promise<void>;
}

/** Same address whatever its spelling (2001:db8:0::1 = 2001:DB8::1; IPv4 as itself). */
function sameAddr(a: string, b: string): boolean {
  const x = toIPv6Bytes(a);
  const y = toIPv6Bytes(b);
  return x !== undefined && y !== undefined ? Buffer.compare(x, y) === 0 : a.toLowerCase() === b.toLowerCase();
}

function errnoOf(e: unknown): number | undefined {
  if (isDuocellError(e) && typeof e.detail.errno === 'number') return e.detail.errno;
  return undefined;
}

export class Announcer {
  /** The sysctl value found at start (written back at stop). */
  #savedJoin: string | undefined;
  #savedLimits: { addAddrAccepted: number; subflows: number } | undefined;
  /** net.mptcp.pm_type found at start when it had to be switched to the in-kernel PM. */
  #savedPm: string | undefined;
  /** Endpoints we own: id and address. */
  readonly #owned: Array<{ id: number; address: string; port?: number }> = [];
  #started = false;

  constructor(
    readonly config: AnnounceConfig,
    readonly ops: AnnounceOps,
  ) {}

  /** The endpoints in force (for status views and tests). */
  get endpoints(): ReadonlyArray<{ id: number; address: string; port?: number }> {
    return this.#owned;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    try {
      await this.#apply();
    } catch (e) {
      await this.stop().catch(() => undefined);
      throw e;
    }
    log.info({ endpoints: this.#owned, refuseInitialJoins: this.config.refuseInitialJoins }, 'explicit steering in force');
  }

  async #apply(): Promise<void> {
    const c = this.config;
    if (c.announce.length > 0 && this.ops.pathManager() !== 'kernel') {
      // The box's sysctl drop-in chooses the userspace PM (a cell's choice); a concentrator that
      // announces needs the in-kernel one: switch this namespace over while it runs.
      try {
        this.ops.writeSysctl(PM_SYSCTL, '0');
        this.#savedPm = '1';
        log.warn('explicit steering: switched this namespace to the in-kernel MPTCP path manager (net.mptcp.pm_type=0) for its signal endpoints; restored on exit');
      } catch {
        /* refused below with the reason */
      }
    }
    if (c.announce.length > 0 && this.ops.pathManager() !== 'kernel') {
      throw new DuocellError('DC_STEERING_ENDPOINT', 'signal endpoints need the in-kernel path manager (net.mptcp.path_manager=kernel); this namespace uses the userspace one', {
        origin: 'local',
      });
    }
    if (c.refuseInitialJoins) {
      try {
        this.#savedJoin = this.ops.readSysctl(JOIN_SYSCTL).trim();
        if (this.#savedJoin !== '0') this.ops.writeSysctl(JOIN_SYSCTL, '0');
      } catch (e) {
        this.#savedJoin = undefined;
        throw sysctlError(e, `cannot set ${JOIN_SYSCTL}=0 (the MP_CAPABLE C flag)`);
      }
    }
    if (c.subflows !== undefined) {
      const cur = await this.ops.limits().catch((e: unknown) => {
        throw endpointError(e, 'cannot read the MPTCP limits');
      });
      if (cur.subflows !== c.subflows) {
        await this.ops.setLimits({ addAddrAccepted: cur.addAddrAccepted, subflows: c.subflows }).catch((e: unknown) => {
          throw endpointError(e, `cannot set the MPTCP subflow limit to ${c.subflows}`);
        });
        this.#savedLimits = cur;
      }
    }
    for (const a of c.announce) {
      const what = `${a.address}${a.port === undefined ? '' : ` port ${a.port}`}`;
      let have = await this.ops.endpoints().catch((e: unknown) => {
        throw endpointError(e, 'cannot list the MPTCP endpoints');
      });
      let cur = have.find((x) => sameAddr(x.address, a.address));
      if (cur === undefined) {
        try {
          await this.ops.addEndpoint({ address: a.address, flags: ['signal'], ...(a.port === undefined ? {} : { port: a.port }), ...(a.id === undefined ? {} : { id: a.id }), ...(a.ifIndex === undefined ? {} : { ifIndex: a.ifIndex }) });
        } catch (e) {
          throw endpointError(e, `cannot add the signal endpoint ${what}`);
        }
        have = await this.ops.endpoints().catch((e: unknown) => {
          throw endpointError(e, 'cannot list the MPTCP endpoints');
        });
        cur = have.find((x) => sameAddr(x.address, a.address));
        if (cur === undefined) throw new DuocellError('DC_STEERING_ENDPOINT', `the signal endpoint ${what} was accepted but is not listed`, { origin: 'kernel' });
      } else if (!cur.flags.includes('signal') || (cur.port ?? 0) !== (a.port ?? 0)) {
        throw new DuocellError(
          'DC_STEERING_ENDPOINT',
          `${a.address} is already an MPTCP endpoint (id ${cur.id}, ${cur.flags.join(',') || 'no flags'}${cur.port === undefined ? '' : `, port ${cur.port}`}), not a signal endpoint${a.port === undefined ? '' : ` on port ${a.port}`}`,
          { origin: 'local', id: cur.id },
        );
      } else {
        log.info({ id: cur.id, address: a.address }, 'signal endpoint already present (left by an earlier run): adopted');
      }
      this.#owned.push({ id: cur.id, address: cur.address, ...(cur.port === undefined ? {} : { port: cur.port }) });
    }
  }

  /** Undo what start() did; every step is tried, the first failure is thrown at the end. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    let first: DuocellError | undefined;
    for (const e of this.#owned.splice(0).reverse()) {
      try {
        await this.ops.deleteEndpoint(e.id, e.address);
      } catch (err) {
        const n = errnoOf(err);
        if (n === 2 || n === 22) continue; // already gone
        first ??= endpointError(err, `cannot remove the signal endpoint ${e.address} (id ${e.id})`);
      }
    }
    if (this.#savedLimits !== undefined) {
      const l = this.#savedLimits;
      this.#savedLimits = undefined;
      await this.ops.setLimits(l).catch((err: unknown) => {
        first ??= endpointError(err, 'cannot restore the MPTCP limits');
      });
    }
    if (this.#savedJoin !== undefined) {
      const v = this.#savedJoin;
      this.#savedJoin = undefined;
      try {
        if (v !== '0') this.ops.writeSysctl(JOIN_SYSCTL, v);
      } catch (err) {
        first ??= sysctlError(err, `cannot restore ${JOIN_SYSCTL}=${v}`);
      }
    }
    if (this.#savedPm !== undefined) {
      const v = this.#savedPm;
      this.#savedPm = undefined;
      try {
        this.ops.writeSysctl(PM_SYSCTL, v);
      } catch (err) {
        first ??= sysctlError(err, `cannot restore ${PM_SYSCTL}=${v}`);
      }
    }
    if (first !== undefined) throw first;
  }
}

function sysctlError(e: unknown, message: string): DuocellError {
  const sys = e as { code?: unknown; errno?: unknown; message?: unknown };
  return new DuocellError('DC_STEERING_SYSCTL', `${message}: ${String(sys.message ?? e)}`, {
    origin: 'kernel',
    cause: e,
    ...(typeof sys.code === 'string' ? { sysCode: sys.code } : {}),
    ...(typeof sys.errno === 'number' ? { errno: Math.abs(sys.errno) } : {}),
  });
}

function endpointError(e: unknown, message: string): DuocellError {
  if (isDuocellError(e) && e.code === 'DC_STEERING_ENDPOINT') return e;
  const n = errnoOf(e);
  return new DuocellError('DC_STEERING_ENDPOINT', `${message}: ${(e as Error).message ?? String(e)}`, {
    origin: isDuocellError(e) ? e.origin : 'kernel',
    cause: e,
    ...(n === undefined ? {} : { errno: n }),
  });
}
