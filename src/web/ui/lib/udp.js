// @ts-check
// UDP steering (issue 18): the API's view of it, and the policy's UDP words.
import { api, ApiError } from './api.js';

/** @typedef {import('../types.js').UdpView} UdpView */
/** @typedef {import('../types.js').UdpMode} UdpMode */
/** @typedef {import('../types.js').QuicOption} QuicOption */
/** @typedef {import('../types.js').PolicyDto} PolicyDto */

/** @type {readonly UdpMode[]} */
export const UDP_MODES = ['active-standby', 'priority', 'smallest-delay', 'load-balancing'];
/** @type {readonly QuicOption[]} */
export const QUIC_OPTIONS = ['allow', 'block'];

/**
 * GET /api/v1/udp, or null when this box has no UDP steering API (404).
 * @returns {Promise<UdpView | null>}
 */
export async function fetchUdp() {
  try {
    return /** @type {UdpView} */ (await api('GET', '/udp'));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/**
 * The UDP mode a policy that names none follows: its MPTCP mode's counterpart (as the box's
 * wiring derives it), `ratio` → `load-balancing`.
 * @param {PolicyDto['steering']['mode']} mptcp
 * @returns {UdpMode}
 */
export function impliedUdpMode(mptcp) {
  return mptcp === 'ratio' ? 'load-balancing' : mptcp;
}

/**
 * An address and port as one endpoint ([v6]:port).
 * @param {string} address
 * @param {number} port
 */
export function endpoint(address, port) {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
