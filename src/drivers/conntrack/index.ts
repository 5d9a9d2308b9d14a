import { execFile } from 'node:child_process';
import { DuocellError } from '../../core/errors.js';
import { parseConntrackLine, type ConntrackFlow } from './parse.js';

export type { ConntrackFlow } from './parse.js';

/**
 * Conntrack entries through the `conntrack` program (Debian package `conntrack`), with an
 * argument vector, never a shell. Deleting a flow's entry makes its next packet NEW again: it is
 * steered and NATed afresh (services/udp/steering.ts moves flows off a dead uplink this way).
 */

export interface FlowFilter {
  proto: 'udp' | 'tcp';
  /** ct mark and mask (`--mark M/MASK`). */
  mark: number;
  mask: number;
  /** Only flows from this source address. */
  source?: string;
}

const COUNT = /(\d+) flow entr(?:y|ies) ha(?:s|ve) been deleted/;

/** Delete the matching entries (both families unless a source says which); resolves with how many. */
export async function deleteFlows(f: FlowFilter): Promise<number> {
  const fams = f.source === undefined ? ['ipv4', 'ipv6'] : [f.source.includes(':') ? 'ipv6' : 'ipv4'];
  let n = 0;
  for (const fam of fams) {
    const args = ['-D', '-f', fam, '-p', f.proto, '-m', `0x${f.mark.toString(16)}/0x${f.mask.toString(16)}`, ...(f.source === undefined ? [] : ['-s', f.source])];
    n += await new Promise<number>((resolve, reject) => {
      execFile('conntrack', args, (err, _stdout, stderr) => {
        const m = COUNT.exec(stderr);
        // conntrack exits 1 when nothing matched ("0 flow entries have been deleted")
        if (m !== null) return resolve(Number(m[1]));
        if (err === null) return resolve(0);
        reject(new DuocellError('DC_UDP_STEER', `conntrack ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err, origin: 'kernel' }));
      });
    });
  }
  return n;
}

/** The matching entries (both families), parsed; lines that do not parse are left out. */
export async function listFlows(f: FlowFilter): Promise<ConntrackFlow[]> {
  const out: ConntrackFlow[] = [];
  for (const fam of ['ipv4', 'ipv6']) {
    const args = ['-L', '-f', fam, '-p', f.proto, '-m', `0x${f.mark.toString(16)}/0x${f.mask.toString(16)}`, ...(f.source === undefined ? [] : ['-s', f.source])];
    const text = await new Promise<string>((resolve, reject) => {
      execFile('conntrack', args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        // the summary ("N flow entries have been shown") goes to stderr; exit 0 even when empty
        if (err !== null && stdout === '') return reject(new DuocellError('DC_UDP_STEER', `conntrack ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err, origin: 'kernel' }));
        resolve(stdout);
      });
    });
    for (const l of text.split('\n')) {
      const x = parseConntrackLine(l);
      if (x !== undefined) out.push(x);
    }
  }
  return out;
}
