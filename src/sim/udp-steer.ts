import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { LinkShape } from './links.js';
import { Topology, type Host } from './hosts.js';

/**
 * The UDP steering world, shared by the kernel tests (test/kernel/udp-*.test.ts) and the `udp`
 * benchmarks (bench/udp.ts): the namespaces and the children (udp-steer-child.ts) in them.
 *
 *   lan [lan0]──[lan0] cell [wwan0]──[c0] net (10.182.9.1 on lo: the UDP sink)
 *                           [wlan0]──[w0]
 */
const here = path.dirname(fileURLToPath(import.meta.url));
// under tap the .ts file with tap's loader; built (dist/) the .js file with plain node
const CHILD = path.join(here, `udp-steer-child${path.extname(fileURLToPath(import.meta.url))}`);
const loader = (): string[] => process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));
/** CLOCK_MONOTONIC in ms (shared by every namespace and process). */
export const mono = (): number => Number(process.hrtime.bigint()) / 1e6;
export const CELL_ADDR = '10.182.1.2';
export const WLAN_ADDR = '10.182.2.2';

export type Sink = { flows: Record<string, Record<string, { n: number; first: number; last: number }>> };

/** Start a child (udp-steer-child.ts); resolves with it and its JSON lines (a promise for the nth). */
export function start(h: Host, args: string[]): { child: ChildProcess; line: (n: number) => Promise<Record<string, unknown>>; lines: Array<Record<string, unknown>> } {
  const child = h.spawn(process.execPath, [...loader(), CHILD, ...args]);
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (l.startsWith('{')) lines.push(JSON.parse(l) as Record<string, unknown>);
      waiters.splice(0).forEach((w) => w());
    }
  });
  const line = (n: number): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (lines.length > n) resolve(lines[n]!);
        else if (child.exitCode !== null) reject(new Error(`child ${args[0]} exited ${child.exitCode}: ${err.slice(-2000)}`));
        else waiters.push(check);
      };
      child.once('exit', check);
      check();
    });
  return { child, line, lines };
}

export const stopChild = (c: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (c.exitCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  });

/**
 * The world above. `shape` shapes both uplinks alike; `uplinks` each its own (e.g. the link
 * emulator's profiles, src/sim/links.ts profileShape). `cfg(policy)`: the cell child's
 * configuration (uplinks with tables 201/202, the LAN, a policy).
 */
export async function steerWorld(prefix: string, shape: { rateMbit?: number } = {}, uplinks: { cellular?: LinkShape; wlan?: LinkShape } = {}): Promise<{ topo: Topology; lan: Host; cell: Host; inet: Host; cfg: (policy: object, extra?: object) => string }> {
  const topo = new Topology(prefix);
  try {
    const lan = await topo.host('lan');
    const cell = await topo.host('cell', { forward: true });
    const inet = await topo.host('net');
    await topo.link(lan, 'lan0', cell, 'lan0', { a: ['192.168.77.2/24'], b: ['192.168.77.1/24'] });
    await topo.link(cell, 'wwan0', inet, 'c0', { a: [`${CELL_ADDR}/24`], b: ['10.182.1.1/24'], ...shape, ...uplinks.cellular });
    await topo.link(cell, 'wlan0', inet, 'w0', { a: [`${WLAN_ADDR}/24`], b: ['10.182.2.1/24'], ...shape, ...uplinks.wlan });
    await lan.ip('route', 'add', 'default', 'via', '192.168.77.1');
    await inet.ip('addr', 'add', '10.182.9.1/32', 'dev', 'lo');
    const cfg = (policy: object, extra: object = {}): string =>
      JSON.stringify({
        ...extra,
        lan: ['lan0'],
        uplinks: [
          { name: 'cellular', access: 'cellular', interface: 'wwan0', table: 201, gateway4: '10.182.1.1' },
          { name: 'wlan', access: 'wlan', interface: 'wlan0', table: 202, gateway4: '10.182.2.1' },
        ],
        policy: { preferred: 'wlan', ratio: { cellular: 50, wlan: 50 }, allowed: ['cellular', 'wlan'], ...policy },
      });
    return { topo, lan, cell, inet, cfg };
  } catch (e) {
    await topo.destroy();
    throw e;
  }
}
