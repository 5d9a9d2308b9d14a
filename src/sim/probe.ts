import dgram from 'node:dgram';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * UDP probes for measuring emulated links (the test machine has no ping): round-trip times,
 * one-way delay, loss and order. Namespaces share CLOCK_MONOTONIC, so a sender's time stamp
 * (process.hrtime) is comparable with the receiver's clock: one-way delay is measured exactly.
 *
 * Datagram: 4 bytes magic 'DCPB', u32 sequence, u64 send time (ns, monotonic), padding.
 *
 *   node probe.js echo PORT                            echo every datagram back
 *   node probe.js rtt HOST PORT COUNT INTERVAL_MS      round trips, one JSON line
 *   node probe.js sink PORT [IDLE_MS]                  receive a stream, one JSON line after IDLE_MS of silence
 *   node probe.js stream HOST PORT COUNT PPS [SIZE]    send COUNT datagrams at PPS
 */

const MAGIC = 0x44435042; // 'DCPB'
const HEADER = 16;

export interface RttReport {
  sent: number;
  received: number;
  /** Round-trip times in ms, in sequence order of the replies received. */
  rttMs: number[];
  /** Replies that arrived after a reply with a higher sequence number. */
  outOfOrder: number;
}

export interface SinkReport {
  received: number;
  unique: number;
  duplicates: number;
  /** Datagrams that arrived after one with a higher sequence number. */
  outOfOrder: number;
  maxSeq: number;
  /** One-way delays in ms, in arrival order. */
  owdMs: number[];
}

const nowNs = (): bigint => process.hrtime.bigint();

export function encodeProbe(seq: number, size: number, t = nowNs()): Buffer {
  const b = Buffer.alloc(Math.max(HEADER, size));
  b.writeUInt32BE(MAGIC, 0);
  b.writeUInt32BE(seq >>> 0, 4);
  b.writeBigUInt64BE(t, 8);
  return b;
}

/** The sequence and send time of a probe datagram, or undefined for anything else. */
export function decodeProbe(b: Buffer): { seq: number; sentNs: bigint } | undefined {
  if (b.length < HEADER || b.readUInt32BE(0) !== MAGIC) return undefined;
  return { seq: b.readUInt32BE(4), sentNs: b.readBigUInt64BE(8) };
}

const familyOf = (host: string): 'udp4' | 'udp6' => (host.includes(':') ? 'udp6' : 'udp4');

export function echo(port: number): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  return new Promise((resolve) => s.bind(port, () => resolve(s)));
}

export function rtt(host: string, port: number, count: number, intervalMs: number): Promise<RttReport> {
  const s = dgram.createSocket(familyOf(host));
  const rep: RttReport = { sent: 0, received: 0, rttMs: [], outOfOrder: 0 };
  let maxSeq = -1;
  const seen = new Set<number>();
  return new Promise((resolve) => {
    s.on('message', (m) => {
      const t = nowNs();
      const p = decodeProbe(m);
      if (p === undefined || seen.has(p.seq)) return;
      seen.add(p.seq);
      rep.received++;
      rep.rttMs.push(Number(t - p.sentNs) / 1e6);
      if (p.seq < maxSeq) rep.outOfOrder++;
      maxSeq = Math.max(maxSeq, p.seq);
    });
    s.bind(0, () => {
      const tick = setInterval(() => {
        s.send(encodeProbe(rep.sent, 64), port, host);
        rep.sent++;
        if (rep.sent >= count) {
          clearInterval(tick);
          const worst = rep.rttMs.length === 0 ? 0 : Math.max(...rep.rttMs);
          setTimeout(() => {
            s.close();
            resolve(rep);
          }, Math.max(1000, 3 * worst));
        }
      }, intervalMs);
    });
  });
}

export function sink(port: number, idleMs: number, onListening?: () => void): Promise<SinkReport> {
  const s = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  const rep: SinkReport = { received: 0, unique: 0, duplicates: 0, outOfOrder: 0, maxSeq: -1, owdMs: [] };
  const seen = new Set<number>();
  return new Promise((resolve) => {
    let idle: NodeJS.Timeout | undefined;
    const finish = (): void => {
      s.close();
      resolve(rep);
    };
    s.on('message', (m) => {
      const t = nowNs();
      const p = decodeProbe(m);
      if (p === undefined) return;
      rep.received++;
      if (seen.has(p.seq)) {
        rep.duplicates++;
        return;
      }
      seen.add(p.seq);
      rep.unique++;
      rep.owdMs.push(Number(t - p.sentNs) / 1e6);
      if (p.seq < rep.maxSeq) rep.outOfOrder++;
      rep.maxSeq = Math.max(rep.maxSeq, p.seq);
      if (idle !== undefined) clearTimeout(idle);
      idle = setTimeout(finish, idleMs);
    });
    s.bind(port, () => onListening?.());
  });
}

/**
 * Send `count` datagrams at `pps`, paced per millisecond; resolves with the number sent. After a
 * stall (a busy machine) it catches up at most 32 datagrams per millisecond instead of in one
 * burst, which would overflow the receiving interface's backlog and count as link loss.
 */
export function stream(host: string, port: number, count: number, pps: number, size = 200): Promise<number> {
  const s = dgram.createSocket(familyOf(host));
  return new Promise((resolve) => {
    const t0 = nowNs();
    let sent = 0;
    const tick = (): void => {
      const due = Math.min(count, Math.floor((Number(nowNs() - t0) / 1e9) * pps) + 1, sent + Math.max(32, Math.ceil(pps / 1000)));
      while (sent < due) s.send(encodeProbe(sent++, size), port, host);
      if (sent >= count) {
        setTimeout(() => {
          s.close();
          resolve(sent);
        }, 50);
        return;
      }
      setTimeout(tick, 1);
    };
    tick();
  });
}

async function cli(argv: string[]): Promise<void> {
  const [mode, ...a] = argv;
  const out = (o: unknown): void => void process.stdout.write(JSON.stringify(o) + '\n');
  if (mode === 'echo' && a.length >= 1) {
    await echo(Number(a[0]));
    out({ listening: Number(a[0]) });
  } else if (mode === 'rtt' && a.length >= 4) {
    out(await rtt(a[0]!, Number(a[1]), Number(a[2]), Number(a[3])));
  } else if (mode === 'sink' && a.length >= 1) {
    out(await sink(Number(a[0]), Number(a[1] ?? 1500), () => out({ listening: Number(a[0]) })));
  } else if (mode === 'stream' && a.length >= 4) {
    out({ sent: await stream(a[0]!, Number(a[1]), Number(a[2]), Number(a[3]), a[4] === undefined ? 200 : Number(a[4])) });
  } else {
    process.stderr.write('usage: probe echo PORT | rtt HOST PORT COUNT INTERVAL_MS | sink PORT [IDLE_MS] | stream HOST PORT COUNT PPS [SIZE]\n');
    process.exitCode = 2;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  void cli(process.argv.slice(2));
}
