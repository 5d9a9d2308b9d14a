import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Host } from '../helpers/hosts.js';

/** Parent side of netlink-ns-agent.ts: call driver methods inside a namespace, collect events. */
const here = path.dirname(fileURLToPath(import.meta.url));
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || (a.startsWith('--import=') && a.includes('tsx')));

export interface AgentError { code?: string; errno?: number; origin?: string; message: string }

export class Agent {
  readonly events: Array<{ event: string; data: Record<string, unknown> }> = [];
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: AgentError) => void }>();
  readonly #eventWaiters = new Set<() => void>();
  readonly #child;
  readonly ready: Promise<void>;
  stderr = '';

  constructor(host: Host) {
    this.#child = host.spawn(process.execPath, [...loader, path.join(here, 'netlink-ns-agent.ts')], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, DUOCELL_LOG_LEVEL: process.env.DUOCELL_LOG_LEVEL ?? 'silent' },
    });
    let buf = '';
    let markReady: () => void = () => {};
    this.ready = new Promise<void>((r) => (markReady = r));
    this.#child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.#child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let m: { id?: number; ok?: unknown; error?: AgentError; event?: string; data?: Record<string, unknown>; ready?: boolean };
        try {
          m = JSON.parse(line) as typeof m;
        } catch {
          continue;
        }
        if (process.env.DUOCELL_AGENT_DEBUG !== undefined && m.id === undefined && m.event === undefined) process.stderr.write(`[agent] ${line}\n`);
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
      this.#child.stdin!.write(JSON.stringify({ id, op, args }) + '\n');
    });
  }

  /** Wait for an event matching `pred` (already received or future). */
  waitEvent(pred: (e: { event: string; data: Record<string, unknown> }) => boolean, timeoutMs = 10_000): Promise<{ event: string; data: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const e = this.events.find(pred);
        if (e === undefined) return false;
        this.#eventWaiters.delete(check as () => void);
        clearTimeout(timer);
        resolve(e);
        return true;
      };
      const timer = setTimeout(() => {
        this.#eventWaiters.delete(check as () => void);
        reject(new Error(`no matching event within ${timeoutMs} ms; have ${JSON.stringify(this.events.slice(-10))}`));
      }, timeoutMs);
      if (!check()) this.#eventWaiters.add(check as () => void);
    });
  }

  close(): void {
    this.#child.stdin!.end();
  }
}
