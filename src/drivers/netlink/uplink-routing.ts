import { EventEmitter } from 'node:events';
import { DuocellError, toDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { addressKey } from '../../core/net.js';
import { bufferToIp, RTPROT_DUOCELL, splitPrefix, type Route, type RouteSpec, type Rule, type RuleSpec } from '../../protocols/netlink/index.js';
import type { Rtnl } from './rtnetlink.js';

/**
 * Per-uplink policy routing: each uplink gets its own routing table (a default route through
 * its interface, via its gateway if it has one, plus its on-link prefixes) and a source rule
 * per local address ("from <addr> lookup <table>"), so that an MPTCP subflow bound to that
 * address leaves through that uplink.
 *
 * The kernel deletes routes through an interface when it goes down (and when its address
 * goes); rules survive. The keeper listens to rtnetlink and, whenever something of ours
 * disappears or the link comes back up, re-reads the table and the rules and adds what is
 * missing (reconcile, debounced). Everything we install carries protocol RTPROT_DUOCELL.
 *
 *   link up ─► apply ─► table N: default dev X [via gw], prefixes; rules from A lookup N
 *   RTM_DELROUTE (table N) / RTM_DELRULE (table N) / link up again ─► reconcile (≤ debounce)
 *   remove(uplink) ─► delete our rules and table routes
 */

const log = logger('duocell:netlink:routing');

export interface UplinkRoutingSpec {
  /** Name of the uplink (for logs and events). */
  readonly name: string;
  readonly ifindex: number;
  readonly table: number;
  /** Priority of the source rules (default 1000 + table). */
  readonly rulePriority?: number;
  /** Local addresses of the uplink (no prefix length). */
  readonly addresses: readonly string[];
  /** On-link prefixes to copy into the table ("10.0.2.0/24"). */
  readonly prefixes?: readonly string[];
  readonly gateway4?: string;
  readonly gateway6?: string;
}

export interface RoutingChange {
  readonly uplink: string;
  readonly added: { routes: RouteSpec[]; rules: RuleSpec[] };
  readonly removed: { rules: RuleSpec[] };
}

export function desiredRouting(s: UplinkRoutingSpec): { routes: RouteSpec[]; rules: RuleSpec[] } {
  const fams = new Set(s.addresses.map((a) => (a.includes(':') ? 6 : 4)));
  const routes: RouteSpec[] = [];
  for (const p of s.prefixes ?? []) {
    const { family } = splitPrefix(p);
    if (fams.has(family)) routes.push({ dst: canonicalPrefix(p), table: s.table, oif: s.ifindex });
  }
  if (fams.has(4)) routes.push({ dst: '0.0.0.0/0', table: s.table, oif: s.ifindex, ...(s.gateway4 === undefined ? {} : { gateway: s.gateway4 }) });
  if (fams.has(6)) routes.push({ dst: '::/0', table: s.table, oif: s.ifindex, ...(s.gateway6 === undefined ? {} : { gateway: s.gateway6 }) });
  const priority = s.rulePriority ?? 1000 + s.table;
  const rules: RuleSpec[] = s.addresses.map((a) => ({ src: `${a}/${a.includes(':') ? 128 : 32}`, table: s.table, priority }));
  return { routes, rules };
}

function canonicalPrefix(p: string): string {
  const { bytes, len } = splitPrefix(p);
  // zero the host bits, as the kernel stores the prefix
  const b = Buffer.from(bytes);
  for (let i = 0; i < b.length; i++) {
    const bitsHere = Math.max(0, Math.min(8, len - i * 8));
    b[i] = b[i]! & (0xff << (8 - bitsHere)) & 0xff;
  }
  return `${bufferToIp(b)}/${len}`;
}

/** A prefix or address by value (`2001:DB8::1/128` = `2001:db8::1/128`): a configured gateway may be spelled otherwise than the kernel writes it. */
const prefixKey = (p: string): string => {
  const slash = p.indexOf('/');
  return slash === -1 ? addressKey(p) : `${addressKey(p.slice(0, slash))}${p.slice(slash)}`;
};
const routeKey = (r: { dst: string; table: number; gateway?: string }): string => `${r.table} ${prefixKey(r.dst)} ${r.gateway === undefined ? '-' : addressKey(r.gateway)}`;
const ruleKey = (r: { src?: string; table: number; priority?: number }): string => `${r.table} ${r.src === undefined ? 'all' : prefixKey(r.src)} ${r.priority ?? '-'}`;

export interface RoutingKeeperEvents {
  /** Something of an uplink's routing was (re)installed or cleaned. */
  changed: [RoutingChange];
  error: [{ uplink: string; error: DuocellError }];
}

/**
 * Installs and keeps per-uplink routing. `set()` declares an uplink's desired routing (call again
 * when its addresses or gateway change); `delete()` removes it. Reacts to rtnetlink by itself.
 */
export class RoutingKeeper extends EventEmitter<RoutingKeeperEvents> {
  readonly #rtnl: Rtnl;
  readonly #specs = new Map<string, UplinkRoutingSpec>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #debounceMs: number;
  #closed = false;
  /** Reconciles that re-added something the kernel had removed. */
  restores = 0;

  constructor(rtnl: Rtnl, opts: { debounceMs?: number } = {}) {
    super();
    this.#rtnl = rtnl;
    this.#debounceMs = opts.debounceMs ?? 20;
    rtnl.on('route', ({ op, route }) => {
      if (op !== 'del') return;
      for (const s of this.#specs.values()) if (s.table === route.table) this.#schedule(s.name);
    });
    rtnl.on('rule', ({ op, rule }) => {
      if (op !== 'del') return;
      for (const s of this.#specs.values()) if (s.table === rule.table) this.#schedule(s.name);
    });
    rtnl.on('link', ({ op, link }) => {
      if (op !== 'new' || !link.up) return;
      for (const s of this.#specs.values()) if (s.ifindex === link.index) this.#schedule(s.name);
    });
    rtnl.on('lost', () => {
      for (const s of this.#specs.values()) this.#schedule(s.name);
    });
  }

  specs(): UplinkRoutingSpec[] {
    return [...this.#specs.values()];
  }

  /** Declare (or update) an uplink's routing and install it now. */
  async set(spec: UplinkRoutingSpec): Promise<RoutingChange> {
    this.#specs.set(spec.name, spec);
    return this.reconcile(spec.name);
  }

  /** Remove an uplink's rules and table routes. */
  async delete(name: string): Promise<void> {
    const s = this.#specs.get(name);
    this.#specs.delete(name);
    clearTimeout(this.#timers.get(name));
    this.#timers.delete(name);
    if (s === undefined) return;
    await this.#running.get(name)?.catch(() => {});
    const rules = await this.#rtnl.rules();
    for (const r of rules) {
      if (r.table === s.table && r.protocol === RTPROT_DUOCELL) {
        await this.#rtnl.deleteRule(toRuleSpec(r)).catch((e: unknown) => log.debug({ err: e }, 'rule already gone'));
      }
    }
    const routes = await this.#rtnl.routes({ table: s.table });
    for (const r of routes) {
      if (r.protocol === RTPROT_DUOCELL) await this.#rtnl.deleteRoute(toRouteSpec(r)).catch((e: unknown) => log.debug({ err: e }, 'route already gone'));
    }
  }

  #schedule(name: string): void {
    if (this.#closed || this.#timers.has(name)) return;
    this.#timers.set(name, setTimeout(() => {
      this.#timers.delete(name);
      this.reconcile(name).catch((e: unknown) => {
        const err = toDuocellError(e, 'DC_PATH_ROUTING');
        log.warn({ err, uplink: name }, 'routing reconcile failed');
        // an 'error' event without a listener would throw (and end the process)
        if (this.listenerCount('error') > 0) this.emit('error', { uplink: name, error: err });
      });
    }, this.#debounceMs));
  }

  /** Compare the kernel with the desired routing of one uplink and add what is missing. */
  async reconcile(name: string): Promise<RoutingChange> {
    const prev = this.#running.get(name);
    const run = (prev ?? Promise.resolve()).catch(() => {}).then(() => this.#reconcile(name));
    // the chain link never rejects: `run`'s failure goes to this caller, not to an unhandled
    // rejection (a link going down mid-reconcile made addRoute fail with ENETDOWN and killed the process)
    const p = run.then(
      () => {},
      () => {},
    );
    this.#running.set(name, p);
    try {
      return await run;
    } finally {
      if (this.#running.get(name) === p) this.#running.delete(name);
    }
  }

  async #reconcile(name: string): Promise<RoutingChange> {
    const s = this.#specs.get(name);
    const change: RoutingChange = { uplink: name, added: { routes: [], rules: [] }, removed: { rules: [] } };
    if (s === undefined || this.#closed) return change;
    const link = await this.#rtnl.link(s.ifindex);
    const want = desiredRouting(s);
    // rules do not depend on the link being up
    const rules = await this.#rtnl.rules();
    const haveRules = new Set(rules.filter((r) => r.table === s.table).map(ruleKey));
    for (const r of want.rules) {
      if (!haveRules.has(ruleKey(r))) {
        await this.#rtnl.addRule(r);
        change.added.rules.push(r);
      }
    }
    const wantRuleKeys = new Set(want.rules.map(ruleKey));
    for (const r of rules) {
      if (r.table === s.table && r.protocol === RTPROT_DUOCELL && !wantRuleKeys.has(ruleKey(r))) {
        await this.#rtnl.deleteRule(toRuleSpec(r)).catch((e: unknown) => log.debug({ err: e }, 'stale rule already gone'));
        change.removed.rules.push(toRuleSpec(r));
      }
    }
    if (link?.up === true) {
      const have = new Set((await this.#rtnl.routes({ table: s.table })).map((r) => routeKey(r)));
      for (const r of want.routes) {
        if (!have.has(routeKey(r))) {
          try {
            await this.#rtnl.addRoute(r, { replace: true });
          } catch (e) {
            // ENETDOWN/ENODEV: the link went down (or away) meanwhile; the next link-up reconciles
            const errno = (e as { errno?: number }).errno ?? (e as { detail?: { errno?: number } }).detail?.errno;
            if (errno === 100 || errno === 19) {
              log.debug({ uplink: name, dst: r.dst }, 'link went down while installing routes: later');
              break;
            }
            throw e;
          }
          change.added.routes.push(r);
        }
      }
    } else {
      log.debug({ uplink: name }, 'link not up: routes will be installed when it comes up');
    }
    const n = change.added.routes.length + change.added.rules.length + change.removed.rules.length;
    if (n > 0) {
      this.restores++;
      log.info({ uplink: name, routes: change.added.routes.map((r) => r.dst), rules: change.added.rules.map((r) => r.src) }, 'uplink routing installed');
      this.emit('changed', change);
    }
    return change;
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}

export function toRuleSpec(r: Rule): RuleSpec {
  return {
    family: r.family,
    table: r.table,
    ...(r.priority === undefined ? {} : { priority: r.priority }),
    ...(r.src === undefined ? {} : { src: r.src }),
    ...(r.dst === undefined ? {} : { dst: r.dst }),
    ...(r.protocol === undefined ? {} : { protocol: r.protocol }),
  };
}

export function toRouteSpec(r: Route): RouteSpec {
  return {
    dst: r.dst,
    table: r.table,
    ...(r.oif === undefined ? {} : { oif: r.oif }),
    ...(r.gateway === undefined ? {} : { gateway: r.gateway }),
    ...(r.priority === undefined ? {} : { priority: r.priority }),
  };
}

