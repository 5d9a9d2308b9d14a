import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { Host } from '../src/sim/hosts.js';
import { transferMbit, verifyTransfer, type Received } from './transfer.js';

/** Drives bench/xfer.ts in namespaces: a server that reports per tag, and verified transfers. */
const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The checkout: this file runs as dist/bench/xfer-run.js, or from source (tests) as bench/xfer-run.ts. */
const ROOT = path.basename(path.dirname(HERE)) === 'dist' ? path.resolve(HERE, '../..') : path.resolve(HERE, '..');
export const XFER = path.join(ROOT, 'dist/bench/xfer.js');

interface ServerReport extends Received {
  tag: string;
  acceptedAt: number;
  /** Arrivals [epoch ms, cumulative bytes] when the server runs with trace (uploads' handover). */
  samples?: Array<[number, number]>;
}

export class XferServer {
  readonly #reports = new Map<string, ServerReport>();
  readonly #waiters = new Map<string, (r: ServerReport) => void>();

  private constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const r = JSON.parse(line) as ServerReport;
          if (typeof r.tag !== 'string') continue;
          const w = this.#waiters.get(r.tag);
          if (w !== undefined) w(r);
          else this.#reports.set(r.tag, r);
        } catch {
          /* not a report */
        }
      }
    });
  }

  static async start(h: Host, host: string, port: number, mptcp: boolean, trace = false): Promise<XferServer> {
    const child = h.spawn(process.execPath, [XFER, 'server', host, String(port), ...(mptcp ? ['--mptcp'] : []), ...(trace ? ['--trace'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    const s = new XferServer(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`xfer server on ${host}:${port} in ${h.ns} did not start`)), 10_000);
      child.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('"listening"')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (c) => reject(new Error(`xfer server in ${h.ns} exited (${c})`)));
    });
    return s;
  }

  /** The server's report of the connection with `tag`; undefined if none came within `ms`. */
  report(tag: string, ms: number): Promise<ServerReport | undefined> {
    const have = this.#reports.get(tag);
    if (have !== undefined) {
      this.#reports.delete(tag);
      return Promise.resolve(have);
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#waiters.delete(tag);
        resolve(undefined);
      }, ms);
      this.#waiters.set(tag, (r) => {
        clearTimeout(t);
        this.#waiters.delete(tag);
        resolve(r);
      });
    });
  }
}

let seq = 0;

export interface ClientReport extends Received {
  tag: string;
  startAt: number;
  connectedAt?: number;
  firstByteAt?: number;
  samples?: Array<[number, number]>;
}

export interface TransferResult {
  mbit: number;
  ms: number;
  client: ClientReport;
  /** The receiving server's arrivals (an upload to a tracing server). */
  serverSamples?: Array<[number, number]>;
}

/**
 * One verified transfer from `client`: a download (receive > 0) is checked and timed at the
 * client, an upload (send > 0) at the server. Rejects with what went wrong if the receiver did
 * not get every byte.
 */
export async function transfer(
  client: Host,
  server: XferServer,
  o: { host: string; port: number; mptcp: boolean; send?: number; receive?: number; from?: string; trace?: boolean; timeoutMs?: number },
): Promise<TransferResult> {
  const send = o.send ?? 0;
  const receive = o.receive ?? 0;
  const tag = String(BigInt(Date.now()) * 1000n + BigInt(seq++ % 1000));
  const args = [XFER, 'client', o.host, String(o.port), String(send), String(receive), '--tag', tag, '--timeout', String(o.timeoutMs ?? 60_000)];
  if (o.mptcp) args.push('--mptcp');
  if (o.from !== undefined) args.push('--from', o.from);
  if (o.trace === true) args.push('--trace');
  const out = await client.exec(process.execPath, args, { allowFail: true });
  let c: ClientReport;
  try {
    c = JSON.parse(out.trim().split('\n').pop() ?? '') as ClientReport;
  } catch {
    throw new Error(`xfer client printed no report: ${out.slice(-300)}`);
  }
  if (send > 0) {
    const srv = await server.report(tag, 10_000);
    const bad = verifyTransfer(srv, send) ?? (c.error === undefined ? undefined : `sender: ${c.error}`);
    if (bad !== undefined) throw new Error(`upload of ${send} bytes: ${bad}`);
    return { mbit: transferMbit(send, c.startAt, srv!.lastByteAt!), ms: srv!.lastByteAt! - c.startAt, client: c, ...(srv!.samples === undefined ? {} : { serverSamples: srv!.samples }) };
  }
  void server.report(tag, 5000); // the server's line for this download: not needed, drop it
  const bad = verifyTransfer(c, receive);
  if (bad !== undefined) throw new Error(`download of ${receive} bytes: ${bad}`);
  return { mbit: transferMbit(receive, c.startAt, c.lastByteAt!), ms: c.lastByteAt! - c.startAt, client: c };
}
