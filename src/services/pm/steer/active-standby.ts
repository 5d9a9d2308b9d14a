import type { SteerMode } from './mode.js';
import { accesses } from './mode.js';

/**
 * active-standby: the `preferred` (active) access carries everything; the other one's subflows
 * are backup from the moment they open. When the active access has no live subflow (path down,
 * subflows closed) the controller's backupFlags clears the standby's flags at once; when an
 * active subflow is back, the standby is made backup again. No state, no measurement.
 */
export const activeStandbyMode: SteerMode<null> = {
  name: 'active-standby',
  init: () => null,
  carry: (_s, p) => accesses(p.preferred ?? 'wlan'),
};
