import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { DuocellError } from '../core/errors.js';

/**
 * A helper process inside a namespace (tests' netlink agent, the pm benchmark's child), driven
 * over line-delimited JSON:
 *   parent → child   { id, op, args }
 *   child → parent   { ready: true } once, then { id, ok } | { id, error } per call, and
 *                    { event, data } notifications at any time
 * BigInts are sent as decimal strings.
 */

export interface RpcError {
  message: string;
  code?: string;
  errno?: number;
  origin?: string;
}

type Op = (...args: unknown[]) => unknown;

/** Child side: answer calls on stdin with `resolve(op)`; returns the line writer (for events). */
export function serveRpc(resolve: (op: string) => Op | undefined): (o: unknown) => void {
  const write = (o: unknown): void => {
    process.stdout.write(JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
  };
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let cmd: { id: number; op: string; args?: unknown[] };
    try {
      cmd = JSON.parse(line) as typeof cmd;
    } catch {
      return;
    }
    void (async () => {
      try {
        const fn = resolve(cmd.op);
        if (fn === undefined) throw new Error(`no such op ${cmd.op}`);
        write({ id: cmd.id, ok: (await fn(...(cmd.args ?? []))) ?? null });
      } catch (e) {
        const error: RpcError = e instanceof DuocellError ? { code: e.code, errno: e.errno, origin: e.origin, message: e.message } : { message: String((e as Error).message ?? e) };
        write({ id: cmd.id, error });
      }
    })();
  });
  rl.on('close', () => process.exit(0));
  queueMicrotask(() => write({ ready: true }));
  return write;
}

/** Parent side: calls into a child started with `serveRpc`, and the events it sent. */
export class RpcClient {
  readonly events: Array<{ event: string; data: Record<string, unknown> }> = [];
  readonly ready: Promise<void>;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: RpcError) => void }>();
  readonly #eventWaiters = new Set<() => void>();

  constructor(readonly child: ChildProcess, opts: { debug?: boolean } = {}) {
    let buf = '';
    let markReady: () => void = () => {};
    this.ready = new Promise<void>((r) => (markReady = r));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let m: { id?: number; ok?: unknown; error?: RpcError; event?: string; data?: Record<string, unknown>; ready?: boolean };
        try {
          m = JSON.parse(line) as typeof m;
        } catch {
          continue;
        }
        if (opts.debug === true && m.id === undefined && m.event === undefined) process.stderr.write(`[rpc] ${line}\n`);
        if (m.ready === true) markReady();
        else if (m.event !== undefined) {
          this.events.push({ event: m.event, data: m.data ?? {} });
          for (const w of [...this.#eventWaiters]) w();
        } else if (m.id !== undefined) {
          const p = this.#pending.get(m.id);
          this.#pending.delete(m.id);
          if (m.error !== undefined) p?.reject(m.error);
          else p?.resolve(m.ok);
        }
      }
    });
  }

  async call<T = unknown>(op: string, ...args: unknown[]): Promise<T> {
    await this.ready;
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(JSON.stringify({ id, op, args }) + '\n');
    });
  }

  /** Wait for an event matching `pred` (already received or future). */
  waitEvent(pred: (e: { event: string; data: Record<string, unknown> }) => boolean, timeoutMs = 10_000): Promise<{ event: string; data: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const e = this.events.find(pred);
        if (e === undefined) return false;
        this.#eventWaiters.delete(check);
        clearTimeout(timer);
        resolve(e);
        return true;
      };
      const timer = setTimeout(() => {
        this.#eventWaiters.delete(check);
        reject(new Error(`no matching event within ${timeoutMs} ms; have ${JSON.stringify(this.events.slice(-10))}`));
      }, timeoutMs);
      if (!check()) this.#eventWaiters.add(check);
    });
  }

  close(): void {
    this.child.stdin!.end();
  }
}
