import { logger } from '../../core/logger.js';
import { ipFamily, unmapV4 } from '../../core/net.js';
import { ALIVE_SET, buildRuleset, validateIntercept, type InterceptConfig } from './ruleset.js';

export { buildRuleset, validateIntercept, type InterceptConfig, type InterceptPort } from './ruleset.js';

/** The nftables and policy-routing calls the intercept service makes (drivers/nft satisfies this). */
export interface InterceptNft {
  applyRuleset(text: string, check?: boolean, opts?: { quiet?: boolean }): Promise<void>;
  deleteTable(family: 'inet', name: string): Promise<void>;
  ensureLocalDelivery(mark: number, table: number): Promise<void>;
  removeLocalDelivery(mark: number, table: number): Promise<void>;
  /** Add `address . port` to a timeout set (hot path: on every M-server detection). */
  addAddrPortElement(family: 'inet', table: string, set: string, address: string, port: number, timeoutS: number): Promise<void>;
  /**
   * Re-arm ports in an inet_service timeout set, in one transaction: present afterwards with a
   * fresh timeout (hot path: every livenessMs/3; drivers/nft does it over nfnetlink, no fork).
   */
  renewTimeoutPorts(family: 'inet', table: string, set: string, ports: readonly number[], timeoutMs: number): Promise<void>;
  /** Release what the calls above keep open (the nfnetlink socket). */
  close?(): void;
  flushSet(family: 'inet', table: string, set: string): Promise<void>;
  listSetJson(family: 'inet', table: string, set: string): Promise<Array<{ address: string; port: number; expiresS?: number }>>;
}

/**
 * Off-path-free, on-path steering: which SYNs the cell takes into its transparent listeners.
 * Owns one nftables table and the policy-routing rule that delivers marked packets locally;
 * removes both on clean exit. M-servers found by the connector are put in a timeout set so that
 * later connections to them go end to end untouched; when the entry expires they are probed again.
 *
 * Liveness: while the event loop runs, the `alive` set's elements are renewed every third of
 * `livenessMs`; a stopped or wedged process renews nothing, so interception lapses within
 * `livenessMs` and new connections go end to end until the renewals come back.
 */
const log = logger('duocell:steering');

export interface InterceptOptions extends InterceptConfig {
  routeTable: number;
  /** How long a detected M-server is bypassed (seconds). */
  mserverTtlS: number;
}

export class Intercept {
  readonly #o: InterceptOptions;
  readonly #nft: InterceptNft;
  #active = false;
  #timer: NodeJS.Timeout | undefined;
  #renewing = false;
  #renewFailing = false;
  /** Liveness renewals done and failed (for tests and status). */
  readonly renewals = { ok: 0, failed: 0 };

  constructor(o: InterceptOptions, nft: InterceptNft) {
    validateIntercept(o);
    this.#o = o;
    this.#nft = nft;
  }

  get config(): Readonly<InterceptOptions> {
    return this.#o;
  }

  /** Apply the ruleset (atomically) and the local-delivery route. A refused ruleset leaves the old one. */
  async start(): Promise<void> {
    await this.#nft.applyRuleset(buildRuleset(this.#o));
    await this.#nft.ensureLocalDelivery(this.#o.mark, this.#o.routeTable);
    this.#active = true;
    this.#startRenewals();
    log.info({ table: this.#o.table, ports: this.#o.ports, lan: this.#o.lanInterfaces }, 'steering active');
  }

  async stop(): Promise<void> {
    if (!this.#active) return;
    this.#active = false;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#nft.close?.();
    await this.#nft.deleteTable('inet', this.#o.table);
    await this.#nft.removeLocalDelivery(this.#o.mark, this.#o.routeTable);
    log.info({ table: this.#o.table }, 'steering removed');
  }

  #startRenewals(): void {
    const live = this.#o.livenessMs ?? 0;
    if (live <= 0 || this.#timer !== undefined) return;
    const ports = [...new Set(this.#o.ports.map((p) => p.port))];
    this.#timer = setInterval(() => {
      if (this.#renewing || !this.#active) return; // one renewal at a time; a slow one is a late one
      this.#renewing = true;
      this.#nft.renewTimeoutPorts('inet', this.#o.table, ALIVE_SET, ports, live)
        .then(() => {
          this.renewals.ok++;
          if (this.#renewFailing) log.info({ table: this.#o.table }, 'liveness renewals work again: interception resumes');
          this.#renewFailing = false;
        })
        .catch((e: Error & { code?: string }) => {
          if (!this.#active) return; // stopped meanwhile (the socket closed under it)
          this.renewals.failed++;
          if (!this.#renewFailing) log.warn({ code: 'DC_NFT_APPLY', cause: e.code, err: e.message }, 'cannot renew the liveness set: interception lapses (fail-open) until it works again');
          this.#renewFailing = true;
        })
        .finally(() => {
          this.#renewing = false;
        });
    }, Math.max(100, Math.floor(live / 3)));
    this.#timer.unref();
  }

  /** Bypass this server from now on, for the configured TTL. */
  async rememberMServer(address: string, port: number, ttlS = this.#o.mserverTtlS): Promise<void> {
    const a = unmapV4(address);
    const set = ipFamily(a) === 6 ? 'mservers6' : 'mservers4';
    await this.#nft.addAddrPortElement('inet', this.#o.table, set, a, port, ttlS);
    log.info({ server: `${a}:${port}`, ttlS }, 'M-server detected: later connections go end to end');
  }

  async listMServers(): Promise<Array<{ address: string; port: number; expiresS?: number }>> {
    const out = [];
    for (const s of ['mservers4', 'mservers6']) out.push(...(await this.#nft.listSetJson('inet', this.#o.table, s)));
    return out;
  }

  async flushMServers(): Promise<void> {
    await this.#nft.flushSet('inet', this.#o.table, 'mservers4');
    await this.#nft.flushSet('inet', this.#o.table, 'mservers6');
  }
}
