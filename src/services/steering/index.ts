import { logger } from '../../core/logger.js';
import { addAddrPortElement, applyRuleset, deleteTable, ensureLocalDelivery, flushSet, listSetJson, removeLocalDelivery } from '../../drivers/nft/index.js';
import { unmapV4 } from '../../core/net.js';
import net from 'node:net';
import { buildRuleset, validateSteering, type SteeringConfig } from './ruleset.js';

export { buildRuleset, validateSteering, type SteeringConfig, type InterceptPort } from './ruleset.js';

/**
 * Off-path-free, on-path steering: which SYNs the cell takes into its transparent listeners.
 * Owns one nftables table and the policy-routing rule that delivers marked packets locally;
 * removes both on clean exit. M-servers found by the connector are put in a timeout set so that
 * later connections to them go end to end untouched; when the entry expires they are probed again.
 */
const log = logger('duocell:steering');

export interface SteeringOptions extends SteeringConfig {
  routeTable: number;
  /** How long a detected M-server is bypassed (seconds). */
  mserverTtlS: number;
}

export class Steering {
  readonly #o: SteeringOptions;
  #active = false;

  constructor(o: SteeringOptions) {
    validateSteering(o);
    this.#o = o;
  }

  get config(): Readonly<SteeringOptions> {
    return this.#o;
  }

  /** Apply the ruleset (atomically) and the local-delivery route. A refused ruleset leaves the old one. */
  async start(): Promise<void> {
    await applyRuleset(buildRuleset(this.#o));
    await ensureLocalDelivery(this.#o.mark, this.#o.routeTable);
    this.#active = true;
    log.info({ table: this.#o.table, ports: this.#o.ports, lan: this.#o.lanInterfaces }, 'steering active');
  }

  async stop(): Promise<void> {
    if (!this.#active) return;
    this.#active = false;
    await deleteTable('inet', this.#o.table);
    await removeLocalDelivery(this.#o.mark, this.#o.routeTable);
    log.info({ table: this.#o.table }, 'steering removed');
  }

  /** Bypass this server from now on, for the configured TTL. */
  async rememberMServer(address: string, port: number, ttlS = this.#o.mserverTtlS): Promise<void> {
    const a = unmapV4(address);
    const set = net.isIPv6(a) ? 'mservers6' : 'mservers4';
    await addAddrPortElement('inet', this.#o.table, set, a, port, ttlS);
    log.info({ server: `${a}:${port}`, ttlS }, 'M-server detected: later connections go end to end');
  }

  async listMServers(): Promise<Array<{ address: string; port: number; expiresS?: number }>> {
    const out = [];
    for (const s of ['mservers4', 'mservers6']) out.push(...(await listSetJson('inet', this.#o.table, s)));
    return out;
  }

  async flushMServers(): Promise<void> {
    await flushSet('inet', this.#o.table, 'mservers4');
    await flushSet('inet', this.#o.table, 'mservers6');
  }
}
