import fs from 'node:fs';
import path from 'node:path';
import { DuocellError } from '../src/core/errors.js';
import type { Host } from '../src/sim/hosts.js';
import { benchRoot } from './root.js';

/**
 * The shipped configuration in a benchmark namespace: the settings of systemd/60-duocell.conf
 * (what the box installs as /usr/lib/sysctl.d/60-duocell.conf), read from the file and applied
 * in the namespace of the box under test, as systemd-sysctl does at boot.
 */
const ROOT = benchRoot();
export const SHIPPED_SYSCTL = path.join(ROOT, 'systemd/60-duocell.conf');

export interface SysctlSetting {
  key: string;
  value: string;
  /** A leading '-' in sysctl.d: a failure to set it is not an error. */
  optional: boolean;
}

/** sysctl.d(5) syntax: `key = value`, comments with # or ;, keys with . or / separators. */
export function parseSysctlConf(text: string, file = 'sysctl.conf'): SysctlSetting[] {
  const out: SysctlSetting[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new DuocellError('DC_CONFIG_INVALID', `${file}:${i + 1}: not "key = value": ${line.slice(0, 80)}`);
    let key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim().split(/\s+/).join(' ');
    const optional = key.startsWith('-');
    if (optional) key = key.slice(1);
    if (!/^[A-Za-z0-9_.\-/]+$/.test(key)) throw new DuocellError('DC_CONFIG_INVALID', `${file}:${i + 1}: bad sysctl key "${key.slice(0, 80)}"`);
    if (value === '') throw new DuocellError('DC_CONFIG_INVALID', `${file}:${i + 1}: ${key} has no value`);
    out.push({ key: key.replaceAll('/', '.'), value, optional });
  });
  return out;
}

/** The path manager mode the settings choose (`pm_type` 1 or `path_manager` userspace). */
export function pmModeOf(settings: readonly SysctlSetting[]): 'userspace' | 'kernel' {
  let mode: 'userspace' | 'kernel' = 'kernel';
  for (const s of settings) {
    if (s.key === 'net.mptcp.pm_type') mode = s.value === '1' ? 'userspace' : 'kernel';
    if (s.key === 'net.mptcp.path_manager') mode = s.value === 'userspace' ? 'userspace' : 'kernel';
  }
  return mode;
}

export interface Applied {
  pm: 'userspace' | 'kernel';
  applied: string[];
  /** Settings the namespace does not have (global ones such as net.core.rmem_max). */
  notInNamespace: string[];
}

/**
 * Apply the shipped settings in `h`'s namespace. A key the namespace does not hold (a global
 * one) is listed, not fatal; a key it holds but refuses is an error. The path manager mode is
 * read back from the kernel.
 */
export async function applyShipped(h: Host, file = SHIPPED_SYSCTL, override: Readonly<Record<string, string>> = {}): Promise<Applied> {
  const settings = parseSysctlConf(fs.readFileSync(file, 'utf8'), path.basename(file)).map((s) => (override[s.key] === undefined ? s : { ...s, value: override[s.key]! }));
  const applied: string[] = [];
  const notInNamespace: string[] = [];
  for (const s of settings) {
    const has = (await h.exec('cat', [`/proc/sys/${s.key.replaceAll('.', '/')}`], { allowFail: true })).trim() !== '';
    if (!has) {
      notInNamespace.push(s.key);
      continue;
    }
    try {
      await h.sysctl(s.key, s.value);
      applied.push(s.key);
    } catch (e) {
      if (!s.optional) throw e;
    }
  }
  const pmType = (await h.exec('sysctl', ['-n', 'net.mptcp.pm_type'], { allowFail: true })).trim();
  const pathManager = (await h.exec('sysctl', ['-n', 'net.mptcp.path_manager'], { allowFail: true })).trim();
  const pm = pathManager === 'userspace' || pmType === '1' ? 'userspace' : 'kernel';
  return { pm, applied, notInNamespace };
}

/** LimitNOFILE of the shipped unit (systemd/duocell.service), as the box runs duocell. */
export function shippedNofile(unit = path.join(ROOT, 'systemd/duocell.service')): number {
  const m = /^LimitNOFILE=(\d+)\s*$/m.exec(fs.readFileSync(unit, 'utf8'));
  if (m === null) throw new DuocellError('DC_CONFIG_INVALID', `${unit}: no LimitNOFILE=`);
  return Number(m[1]);
}

/** Node's own flags on the shipped unit's ExecStart (`/usr/bin/node --flag … script`): the benchmarked proxy runs with them. */
export function shippedNodeFlags(unit = path.join(ROOT, 'systemd/duocell.service')): string[] {
  const m = /^ExecStart=\S*\/node((?:\s+--\S+)*)\s/m.exec(fs.readFileSync(unit, 'utf8'));
  if (m === null) throw new DuocellError('DC_CONFIG_INVALID', `${unit}: no ExecStart= running node`);
  return m[1]!.trim().split(/\s+/).filter((f) => f !== '');
}

/** This process's hard limit of open files (a child cannot get more without CAP_SYS_RESOURCE). */
export function hardNofile(): number {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m === null || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** The file limit duocell gets here: the shipped unit's, or this machine's hard limit when lower. */
export function nofileHere(): { shipped: number; effective: number } {
  const shipped = shippedNofile();
  return { shipped, effective: Math.min(shipped, hardNofile()) };
}

/** The command line that runs `cmd args` under the shipped unit's file limit (prlimit execs it: same pid). */
export function underShippedLimits(cmd: string, args: readonly string[]): [string, string[]] {
  const n = nofileHere().effective;
  return ['prlimit', [`--nofile=${n}:${n}`, cmd, ...args]];
}
