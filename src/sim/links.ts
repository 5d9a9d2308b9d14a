import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuocellError } from '../core/errors.js';

/**
 * Link shapes and profiles for the test hosts and the simulated board.
 *
 * This kernel has no sch_netem, so a link with a delay, jitter or loss is built as
 *
 *   host a [aIf]==veth==[wN a] ${prefix}-wire [wN b]==veth==[bIf] host b
 *                              build/delayline
 *
 * where build/delayline (native/delayline.c) forwards the frames with the per-direction delay,
 * jitter (no reordering) and loss, and mirrors carrier like a veth pair. The rate stays a tbf
 * at each sender's interface, as on an ideal link, unless `rateIn: 'delayline'` is asked for.
 *
 * How a profile's round-trip figures map to each direction (both directions get the same):
 *   one-way delay  = RTT / 2
 *   one-way jitter = jitter / 2, uniform in ±(jitter / 2); the RTT then spreads over ±jitter
 *                    (a triangular distribution) with its median at the RTT
 *   loss           = the profile's loss in EACH direction (a frame is lost with that
 *                    probability on the air; a request-reply pair is lost with ≈ 2 × loss)
 *   rate           = the profile's rate in each direction
 * Jitter never reorders: a frame is released no earlier than the one before it. Back-to-back
 * frames (a bulk transfer) therefore see a delay nearer RTT/2 + jitter/2 than RTT/2, as frames
 * queued behind a slow one on a real radio do.
 */

/** One direction's impairments. */
export interface DirectionShape {
  /** One-way delay in ms (≥ 0). */
  delayMs?: number;
  /** One-way jitter in ms (≥ 0): each frame's delay is uniform in delayMs ± jitterMs. */
  jitterMs?: number;
  /** Random loss in percent (0..100) for each frame. */
  lossPct?: number;
}

/** A link's shape: rate and per-direction impairments (`aToB` / `bToA` override the common ones). */
export interface LinkShape extends DirectionShape {
  /** Rate of both directions in Mbit/s (> 0). */
  rateMbit?: number;
  rateAtoB?: number;
  rateBtoA?: number;
  aToB?: DirectionShape;
  bToA?: DirectionShape;
  /** Where the rate is enforced on an emulated link: the senders' tbf (default) or the delay line. */
  rateIn?: 'tbf' | 'delayline';
  /** The delay line's queue bound in ms when it enforces the rate (default 50). */
  queueMs?: number;
}

export type ProfileName = 'lte' | 'wlan' | '5g' | 'ideal';

/** A profile in the words a radio engineer uses: round-trip figures. */
export interface LinkProfile {
  rateMbit: number;
  rttMs: number;
  /** RTT spread: the RTT varies within ±jitterMs. */
  jitterMs: number;
  /** Loss per direction, percent. */
  lossPct: number;
}

export const PROFILES: Readonly<Record<ProfileName, Readonly<LinkProfile>>> = Object.freeze({
  lte: Object.freeze({ rateMbit: 20, rttMs: 40, jitterMs: 10, lossPct: 0.1 }),
  wlan: Object.freeze({ rateMbit: 30, rttMs: 8, jitterMs: 3, lossPct: 0.5 }),
  '5g': Object.freeze({ rateMbit: 100, rttMs: 20, jitterMs: 0, lossPct: 0 }),
  // today's plain veth: no delay line at all (the rate is the link's own)
  ideal: Object.freeze({ rateMbit: 0, rttMs: 0, jitterMs: 0, lossPct: 0 }),
});

/** The simulated board's worlds: `realistic` = lte on the cellular links, wlan on the WLAN links. */
export type LinksWorld = 'realistic' | 'ideal';
export const LINKS_WORLDS: readonly LinksWorld[] = ['realistic', 'ideal'];

export function worldProfiles(world: LinksWorld): { cellular: ProfileName; wlan: ProfileName } {
  return world === 'realistic' ? { cellular: 'lte', wlan: 'wlan' } : { cellular: 'ideal', wlan: 'ideal' };
}

export function parseLinksWorld(s: string): LinksWorld {
  if ((LINKS_WORLDS as readonly string[]).includes(s)) return s as LinksWorld;
  throw new DuocellError('DC_LINK_INVALID', `unknown links world '${s}' (known: ${LINKS_WORLDS.join(', ')})`);
}

/**
 * The per-direction shape of a profile (see the mapping at the top). `rateMbit` overrides the
 * profile's rate (the board's rates); `ideal` gives only the rate: a plain veth.
 */
export function profileShape(name: ProfileName, rateMbit?: number): LinkShape {
  const p = PROFILES[name];
  if (p === undefined) throw new DuocellError('DC_LINK_INVALID', `unknown link profile '${String(name)}' (known: ${Object.keys(PROFILES).join(', ')})`);
  const rate = rateMbit ?? (p.rateMbit > 0 ? p.rateMbit : undefined);
  if (name === 'ideal') return rate === undefined ? {} : { rateMbit: rate };
  return {
    ...(rate === undefined ? {} : { rateMbit: rate }),
    delayMs: p.rttMs / 2,
    jitterMs: p.jitterMs / 2,
    lossPct: p.lossPct,
  };
}

const MAX_MS = 60_000;
const MAX_RATE = 100_000;

function check(ok: boolean, what: string): void {
  if (!ok) throw new DuocellError('DC_LINK_INVALID', `impossible link setting: ${what}`);
}

function checkNum(v: unknown, name: string, min: number, max: number, minExclusive = false): void {
  if (v === undefined) return;
  check(typeof v === 'number' && Number.isFinite(v), `${name} must be a finite number, got ${String(v)}`);
  const n = v as number;
  check(minExclusive ? n > min : n >= min, `${name} must be ${minExclusive ? '>' : '>='} ${min}, got ${n}`);
  check(n <= max, `${name} must be <= ${max}, got ${n}`);
}

function checkDirection(d: DirectionShape | undefined, where: string): void {
  if (d === undefined) return;
  check(typeof d === 'object' && d !== null, `${where} must be an object`);
  for (const k of Object.keys(d)) check(['delayMs', 'jitterMs', 'lossPct'].includes(k), `${where}.${k} is not a direction setting (delayMs, jitterMs, lossPct)`);
  checkNum(d.delayMs, `${where}.delayMs`, 0, MAX_MS);
  checkNum(d.jitterMs, `${where}.jitterMs`, 0, MAX_MS);
  checkNum(d.lossPct, `${where}.lossPct`, 0, 100);
}

/** Refuse impossible shapes before anything is created: DC_LINK_INVALID. */
export function validateLinkShape(s: LinkShape): void {
  checkNum(s.rateMbit, 'rateMbit', 0, MAX_RATE, true);
  checkNum(s.rateAtoB, 'rateAtoB', 0, MAX_RATE, true);
  checkNum(s.rateBtoA, 'rateBtoA', 0, MAX_RATE, true);
  checkNum(s.queueMs, 'queueMs', 0, MAX_MS, true);
  check(s.rateIn === undefined || s.rateIn === 'tbf' || s.rateIn === 'delayline', `rateIn must be 'tbf' or 'delayline', got ${String(s.rateIn)}`);
  checkDirection({ delayMs: s.delayMs, jitterMs: s.jitterMs, lossPct: s.lossPct }, 'link');
  checkDirection(s.aToB, 'aToB');
  checkDirection(s.bToA, 'bToA');
}

/** Does this shape need the delay line (any delay, jitter or loss given, in either direction)? */
export function isEmulated(s: LinkShape): boolean {
  const has = (d: DirectionShape | undefined): boolean => d !== undefined && (d.delayMs !== undefined || d.jitterMs !== undefined || d.lossPct !== undefined);
  return has(s) || has(s.aToB) || has(s.bToA) || s.rateIn === 'delayline';
}

function dirSpec(s: LinkShape, d: DirectionShape | undefined, rate: number | undefined): string {
  const delay = d?.delayMs ?? s.delayMs ?? 0;
  const jitter = d?.jitterMs ?? s.jitterMs ?? 0;
  const loss = d?.lossPct ?? s.lossPct ?? 0;
  const parts = [`delay=${delay}`, `jitter=${jitter}`, `loss=${loss}`];
  if (s.rateIn === 'delayline' && rate !== undefined) parts.push(`rate=${rate}`, `queue=${s.queueMs ?? 50}`);
  return parts.join(',');
}

/** The delay line's arguments for a validated shape (interfaces `ifA` faces host a). */
export function delaylineArgs(ifA: string, ifB: string, s: LinkShape): string[] {
  return [
    '--a', ifA,
    '--b', ifB,
    '--ab', dirSpec(s, s.aToB, s.rateAtoB ?? s.rateMbit),
    '--ba', dirSpec(s, s.bToA, s.rateBtoA ?? s.rateMbit),
    '--realtime',
  ];
}

/** Where the compiled delay line is (scripts/setup.sh builds it); DUOCELL_DELAYLINE overrides. */
export function delaylinePath(): string {
  const env = process.env.DUOCELL_DELAYLINE;
  if (env !== undefined && env !== '') return env;
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const d = path.resolve(here, up);
    if (fs.existsSync(path.join(d, 'package.json'))) return path.join(d, 'build', 'delayline');
  }
  return path.resolve(here, '../../build/delayline');
}
