import fs from 'node:fs';
import type { BoardProfile } from '../core/board.js';
import { DuocellError } from '../core/errors.js';
import { logger } from '../core/logger.js';
import { pathManagerMode } from '../drivers/netlink/path-manager.js';
import { MptcpPm } from '../drivers/netlink/mptcp-pm.js';
import { convertFrontFromOptions } from '../services/proxy/fronts/convert.js';
import { socks5FrontFromOptions } from '../services/proxy/fronts/socks5.js';
import type { ListenerFactories } from '../services/proxy/index.js';
import { Announcer, type AnnounceOps } from '../services/announce/index.js';
import type { Store } from '../store/index.js';
import type { KernelLedger } from '../services/restore/ledger.js';

/**
 * The explicit proxy modes in the running appliance (concentrator side of issue 3):
 * - listener fronts whose credentials come from the subscriber store: a Convert listener with
 *   `"cookies": "store"` checks Cookie TLVs with Store.subscriberByCookie, a SOCKS5 listener with
 *   `"users": "store"` checks RFC 1929 passwords with Store.verifySubscriberPassword; the
 *   subscriber's name goes on the session;
 * - explicit steering (board `explicitSteering`): the C flag and the signal endpoints of the
 *   instance's unique addresses, in force while duocell runs.
 */
const log = logger('duocell:wiring:explicit');

/** A Cookie TLV's value arrives zero-padded to 32 bits and the front strips trailing zeros, so
 * a store cookie that itself ends in zero bytes is looked up with up to 4 of them put back. */
export function storeCookieLookup(store: Pick<Store, 'subscriberByCookie'>): (cookie: Buffer) => string | undefined {
  return (cookie) => {
    for (let zeros = 0; zeros <= 4; zeros++) {
      const who = store.subscriberByCookie(zeros === 0 ? cookie : Buffer.concat([cookie, Buffer.alloc(zeros)]));
      if (who !== undefined) return who;
    }
    return undefined;
  };
}

export function storePasswordCheck(store: Pick<Store, 'verifySubscriberPassword'>): (username: string, password: string) => Promise<boolean> {
  return (username, password) => store.verifySubscriberPassword(username, password);
}

/** Fronts for listenerSpecs(): the board's options, with the store's lookups available. */
export function explicitFronts(store: Pick<Store, 'subscriberByCookie' | 'verifySubscriberPassword'>): ListenerFactories {
  const storeCookie = storeCookieLookup(store);
  const storeUser = storePasswordCheck(store);
  return {
    fronts: {
      convert: (l) => convertFrontFromOptions(l.options, { upstreamMptcp: l.upstream === 'mptcp', storeCookie }),
      socks5: (l) => socks5FrontFromOptions(l.options, { storeUser }),
    },
  };
}

function sysctlPath(name: string): string {
  return `/proc/sys/${name.replace(/\./g, '/')}`;
}

function ifIndexOf(name: string): number {
  try {
    const n = Number(fs.readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
    if (Number.isInteger(n) && n > 0) return n;
  } catch {
    /* below */
  }
  throw new DuocellError('DC_STEERING_ENDPOINT', `explicitSteering: no interface ${name} in this network namespace`, { origin: 'local' });
}

/**
 * A signal endpoint with a port makes the kernel listen on that port. After a crash (kill -9) the
 * killed run's join subflows may still hold the port (closing, TIME_WAIT), and the kernel refuses
 * the listener with EADDRINUSE until they are gone: retried every 500 ms for up to `forMs`
 * (90 s by default, beyond TIME_WAIT's 60 s) rather than failing the restart.
 */
export async function addEndpointRetrying<T>(add: () => Promise<T>, forMs = 90_000, everyMs = 500): Promise<T> {
  const until = Date.now() + forMs;
  for (let warned = false; ; ) {
    try {
      return await add();
    } catch (e) {
      const errno = (e as { errno?: number }).errno ?? (e as { detail?: { errno?: number } }).detail?.errno;
      if (errno !== 98 || Date.now() >= until) throw e;
      if (!warned) log.warn({ err: (e as Error).message }, 'signal endpoint port still in use (a crashed run\'s subflows): retrying');
      warned = true;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

export interface RunningExplicit {
  /** Listener factories for listenerSpecs(). */
  readonly factories: ListenerFactories;
  readonly steering: Announcer | undefined;
  close(): Promise<void>;
}

/**
 * Start what the board asks for. Explicit steering failing to apply is fatal (DC_STEERING_*):
 * a concentrator behind a shared address whose later subflows could land on another instance
 * would break connections in ways that are hard to see.
 */
export async function startExplicit(board: BoardProfile, store: Pick<Store, 'subscriberByCookie' | 'verifySubscriberPassword'>, opts: { pm?: () => Promise<MptcpPm>; ledger?: KernelLedger } = {}): Promise<RunningExplicit> {
  const factories = explicitFronts(store);
  const es = board.explicitSteering;
  if (es === undefined) return { factories, steering: undefined, close: async () => undefined };
  let pm: MptcpPm;
  try {
    pm = await (opts.pm ?? (() => MptcpPm.open()))();
  } catch (e) {
    throw new DuocellError('DC_STEERING_ENDPOINT', `explicitSteering: no MPTCP path manager to talk to: ${(e as Error).message}`, { cause: e, origin: 'kernel' });
  }
  const raw: AnnounceOps = {
    readSysctl: (n) => fs.readFileSync(sysctlPath(n), 'utf8'),
    writeSysctl: (n, v) => fs.writeFileSync(sysctlPath(n), `${v}\n`),
    pathManager: () => pathManagerMode(),
    endpoints: () => pm.endpoints(),
    addEndpoint: (e) => addEndpointRetrying(() => pm.addEndpoint(e)),
    deleteEndpoint: (id, address) => pm.deleteEndpoint(id, address),
    limits: () => pm.limits(),
    setLimits: (l) => pm.setLimits(l),
  };
  // Every change is recorded in the store's kernel ledger first (crash-safe restore, src/services/restore).
  const ops = opts.ledger?.wrap(raw) ?? raw;
  let steering: Announcer;
  try {
    steering = new Announcer(
      {
        refuseInitialJoins: es.refuseInitialJoins !== false,
        announce: es.announce.map((a) => ({
          address: a.address,
          ...(a.port === undefined ? {} : { port: a.port }),
          ...(a.id === undefined ? {} : { id: a.id }),
          ...(a.interface === undefined ? {} : { ifIndex: ifIndexOf(a.interface) }),
        })),
        ...(es.subflows === undefined ? {} : { subflows: es.subflows }),
      },
      ops,
    );
    await steering.start();
  } catch (e) {
    pm.close();
    throw e;
  }
  return {
    factories,
    steering,
    async close() {
      try {
        await steering.stop();
      } catch (e) {
        log.error({ err: (e as Error).message, code: (e as DuocellError).code }, 'explicit steering not fully undone');
      } finally {
        pm.close();
      }
    },
  };
}
