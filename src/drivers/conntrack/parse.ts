/**
 * One line of `conntrack -L` (the default text output) → the original direction's 5-tuple, its
 * counters (present when net.netfilter.nf_conntrack_acct is on) and the ct mark. Pure: no I/O.
 *
 *   udp  17 29 src=192.168.77.2 dst=10.182.9.1 sport=40000 dport=7100 packets=5 bytes=460
 *        [UNREPLIED] src=10.182.9.1 dst=10.182.2.2 sport=7100 dport=40000 packets=0 bytes=0
 *        mark=512 use=1
 * The first src/dst/sport/dport (and packets/bytes) are the original direction (the device);
 * the second set the reply. Anything that is not such a line gives undefined.
 */
export interface ConntrackFlow {
  proto: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** Original + reply direction; 0 without accounting. */
  packets: number;
  bytes: number;
  mark: number;
}

const ADDR = /^[0-9a-fA-F:.]{2,45}$/;

export function parseConntrackLine(line: string): ConntrackFlow | undefined {
  const words = line.trim().split(/\s+/);
  const proto = words[0];
  if (proto === undefined || !/^[a-z0-9]{2,12}$/.test(proto)) return undefined;
  const first: Record<string, string> = {};
  let packets = 0;
  let bytes = 0;
  let mark = 0;
  for (const w of words.slice(1)) {
    const eq = w.indexOf('=');
    if (eq <= 0) continue;
    const k = w.slice(0, eq);
    const v = w.slice(eq + 1);
    if (k === 'packets' || k === 'bytes') {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) return undefined;
      if (k === 'packets') packets += n;
      else bytes += n;
    } else if (k === 'mark') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) return undefined;
      mark = n;
    } else if (first[k] === undefined) first[k] = v;
  }
  const { src, dst, sport, dport } = first;
  if (src === undefined || dst === undefined || !ADDR.test(src) || !ADDR.test(dst)) return undefined;
  const sp = Number(sport);
  const dp = Number(dport);
  if (!Number.isInteger(sp) || !Number.isInteger(dp) || sp < 0 || sp > 65535 || dp < 0 || dp > 65535) return undefined;
  return { proto, src, dst, sport: sp, dport: dp, packets, bytes, mark };
}
