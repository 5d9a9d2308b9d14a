import { execFile } from 'node:child_process';
import { DuocellError } from '../../core/errors.js';

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
