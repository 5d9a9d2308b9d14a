import os from 'node:os';
import si from 'systeminformation';
import { logger } from '../core/logger.js';

const log = logger('duocell:web:system');

/** The box's own health for the page: temperature, load, memory, disks, uptime. */
export interface SystemView {
  cpuTempC: number | null;
  load: number[];
  cpuPercent: number | null;
  cores: number;
  memory: { totalBytes: number; usedBytes: number; availableBytes: number };
  disks: Array<{ mount: string; sizeBytes: number; usedBytes: number; usePercent: number }>;
  uptimeS: number;
  processUptimeS: number;
  rssBytes: number;
}

const INTERESTING_MOUNTS = new Set(['/', '/boot', '/boot/firmware', '/data', '/var', '/var/lib', '/var/lib/duocell', '/overlay']);

async function settle<T>(what: string, p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    log.debug({ err: e, what }, 'system information unavailable');
    return undefined;
  }
}

export async function readSystem(): Promise<SystemView> {
  const [temp, load, mem, fs] = await Promise.all([
    settle('cpuTemperature', si.cpuTemperature()),
    settle('currentLoad', si.currentLoad()),
    settle('mem', si.mem()),
    settle('fsSize', si.fsSize()),
  ]);
  const disks = (fs ?? [])
    .filter((d) => INTERESTING_MOUNTS.has(d.mount))
    .map((d) => ({ mount: d.mount, sizeBytes: d.size, usedBytes: d.used, usePercent: Math.round((d.use ?? 0) * 10) / 10 }));
  const t = temp?.main;
  return {
    cpuTempC: typeof t === 'number' && Number.isFinite(t) && t > -50 ? t : null,
    load: os.loadavg().map((x) => Math.round(x * 100) / 100),
    cpuPercent: load === undefined ? null : Math.round(load.currentLoad * 10) / 10,
    cores: os.cpus().length,
    memory: {
      totalBytes: mem?.total ?? os.totalmem(),
      usedBytes: mem === undefined ? os.totalmem() - os.freemem() : mem.total - mem.available,
      availableBytes: mem?.available ?? os.freemem(),
    },
    disks,
    uptimeS: Math.round(os.uptime()),
    processUptimeS: Math.round(process.uptime()),
    rssBytes: process.memoryUsage.rss(),
  };
}

/** readSystem() cached for ttlMs: systeminformation spawns df and reads /sys, not for every poll. */
export function cachedSystem(ttlMs = 5000, read: () => Promise<SystemView> = readSystem): () => Promise<SystemView> {
  let at = 0;
  let cur: Promise<SystemView> | undefined;
  return () => {
    const now = Date.now();
    if (cur === undefined || now - at > ttlMs) {
      at = now;
      cur = read().catch((e: unknown) => {
        cur = undefined;
        throw e;
      });
    }
    return cur;
  };
}
