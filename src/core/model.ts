/**
 * The words of DESIGN.md, declared once and imported everywhere (STYLE habit 7). A layer that
 * needs one of them re-exports it from here rather than writing its own.
 */

/** Path: one uplink with its access type. */
export type AccessType = 'cellular' | 'wlan';
export const ACCESS_TYPES: readonly AccessType[] = ['cellular', 'wlan'];

/** Where an address of the box lies (board `accessNetworks`): an uplink's access, or the LAN. */
export type NetworkAccess = AccessType | 'lan';

/** The label of a subflow by its addresses: a network, or unknown when no prefix matches. */
export type SubflowAccess = NetworkAccess | 'unknown';

/** How an M-session's traffic is spread over the paths (the backup-flag modes of services/pm/steer). */
export type SteeringMode = 'active-standby' | 'priority' | 'ratio' | 'smallest-delay';
export const STEERING_MODES: readonly SteeringMode[] = ['active-standby', 'priority', 'ratio', 'smallest-delay'];

/** Client × server of a session: M = speaks MPTCP, N = does not. */
export type Combination = 'M-N' | 'M-M' | 'N-N' | 'N-M';

/** The two presets of the one binary. */
export type Preset = 'cell' | 'concentrator';
