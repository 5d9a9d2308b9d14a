import { SIM_ADDR } from '../board.js';
import type { ModemSimConfig } from './sim.js';

/**
 * The modem simulator inside the simulated board: what the data session hands out is the
 * board's wwan0 addressing (dc-cell 10.21.0.2/24, fd00:21::2/64, gateways on dc-conc). The
 * simulator answers WDS Get Current Settings with it and does nothing else to wwan0: like
 * qmi_wwan, the board only provides the network device (down, unaddressed; a veth to dc-conc),
 * and duocell configures it from the session (drivers/modem/netif.ts), as on hardware.
 */

export function simBoardModemConfig(links: { readonly at: string; readonly qmi: string }, extra: Partial<ModemSimConfig> = {}): ModemSimConfig {
  const cell = SIM_ADDR.cell.wwan0;
  const conc = SIM_ADDR.conc.wwan0;
  return {
    atLink: links.at,
    qmiLink: links.qmi,
    ipv4: { address: cell[0], prefixLength: 24, gateway: conc[0], dns: [conc[0]], mtu: 1500 },
    ipv6: { address: cell[1], prefixLength: 64, gateway: conc[1], dns: [conc[1]], mtu: 1500 },
    ...extra,
  };
}
