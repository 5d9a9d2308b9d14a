import { activeStandbyMode } from './active-standby.js';
import type { SteerMode } from './mode.js';
import { priorityMode } from './priority.js';
import { ratioMode } from './ratio.js';
import { smallestDelayMode } from './smallest-delay.js';
import type { SteerAccess, SteerModeName } from './types.js';

/** Every steering mode the controller knows, by name. */
export const STEER_MODES: Readonly<Record<SteerModeName, SteerMode<never>>> = {
  'active-standby': activeStandbyMode,
  priority: priorityMode,
  ratio: ratioMode,
  'smallest-delay': smallestDelayMode,
} as Readonly<Record<SteerModeName, SteerMode<never>>>;

export function modeOf(name: SteerModeName): SteerMode<unknown> {
  return STEER_MODES[name] as unknown as SteerMode<unknown>;
}

/** Reason a policy cannot be used, or undefined when it is fine. */
export function policyProblem(p: unknown): string | undefined {
  if (typeof p !== 'object' || p === null) return 'policy is not an object';
  const o = p as Record<string, unknown>;
  if (typeof o.mode !== 'string' || !Object.hasOwn(STEER_MODES, o.mode)) return `unknown steering mode ${JSON.stringify(o.mode)}`;
  if (o.preferred !== undefined && o.preferred !== 'cellular' && o.preferred !== 'wlan') return `unknown access ${JSON.stringify(o.preferred)}`;
  if (o.group !== undefined && typeof o.group !== 'string') return 'group is not a string';
  return modeOf(o.mode as SteerModeName).problem?.(o);
}

/**
 * Backup flag each subflow should have: true = backup. `carry` = accesses the connection should
 * send on; when none of them has a live subflow, nothing is backup (never strand a connection).
 */
export function backupFlags(
  subflows: ReadonlyArray<{ key: string; access: SteerAccess | undefined; alive: boolean }>,
  carry: ReadonlySet<SteerAccess>,
): Map<string, boolean> {
  const alive = new Set(subflows.filter((f) => f.alive && f.access !== undefined).map((f) => f.access!));
  const use = [...carry].some((a) => alive.has(a)) ? carry : alive;
  const out = new Map<string, boolean>();
  for (const f of subflows) if (f.access !== undefined) out.set(f.key, !use.has(f.access));
  return out;
}

