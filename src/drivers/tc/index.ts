import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DuocellError } from '../../core/errors.js';

/**
 * A rate limit on what the box sends on one interface: an htb qdisc whose default class every
 * packet falls into, through the `tc` program (argument vector, never a shell). Where the
 * interface's root qdisc is a tbf (a shaper with one class, as the simulated links have) the htb
 * is grafted under it, so the link's own rate stays; otherwise the htb becomes the root.
 * `restore()` removes what was added (the tbf gets its default child back; a root htb is deleted,
 * which puts the kernel's default qdisc back). Only a qdisc with our handle is ever removed.
 */
const run = promisify(execFile);
/** Our qdisc handles (htb, its leaf). */
export const PACER_HANDLE = '7dc1:';
const LEAF_HANDLE = '7dc2:';

async function tc(args: string[]): Promise<string> {
  try {
    return (await run('tc', args, { maxBuffer: 4 << 20 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new DuocellError('DC_TC_COMMAND', `tc ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, { cause: e, origin: 'kernel' });
  }
}

interface QdiscRow {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  options?: { rate?: number; burst?: number; lat?: number };
}

async function qdiscs(dev: string): Promise<QdiscRow[]> {
  return JSON.parse((await tc(['-j', 'qdisc', 'show', 'dev', dev])) || '[]') as QdiscRow[];
}

/** Where our htb hangs: under a root tbf's one class, else the root. */
async function attachPoint(dev: string): Promise<string[]> {
  const root = (await qdiscs(dev)).find((q) => q.root === true);
  return root?.kind === 'tbf' ? ['parent', `${root.handle}1`] : ['root'];
}

/**
 * Remove our htb from `dev` if it is there (the ledger's undo, and restore()). Under a tbf it is
 * replaced by the bfifo the tbf had (deleting a tbf's child would leave noop, which drops all).
 */
export async function removePacer(dev: string): Promise<boolean> {
  const list = await qdiscs(dev);
  const ours = list.find((q) => q.handle === PACER_HANDLE);
  if (ours === undefined) return false;
  const tbf = list.find((q) => q.root === true && q.kind === 'tbf');
  if (ours.root === true || tbf === undefined) await tc(['qdisc', 'del', 'dev', dev, 'root']);
  else {
    // tbf's own default child: a bfifo of rate × latency + burst bytes
    const o = tbf.options ?? {};
    const limit = Math.max(3028, Math.round(((o.rate ?? 0) * (o.lat ?? 0)) / 1e6 + (o.burst ?? 0)));
    await tc(['qdisc', 'replace', 'dev', dev, 'parent', `${tbf.handle}1`, 'bfifo', 'limit', String(limit)]);
  }
  return true;
}

/** The rate that stands for "no limit" while the pacer stays installed. */
const UNLIMITED = 10e9;

export class HtbPacer {
  #installed = false;
  #rate: number | undefined;

  /** `beforeInstall` runs before the qdisc is added, `afterRestore` once it is gone (the kernel ledger's record and forget). */
  constructor(
    readonly dev: string,
    readonly o: { beforeInstall?: (dev: string) => void; afterRestore?: (dev: string) => void; leafPackets?: number } = {},
  ) {}

  get rate(): number | undefined {
    return this.#rate;
  }

  /** Limit what the interface sends to `bitsPerSec`; undefined lifts the limit (the qdisc stays until restore()). */
  async setRate(limit: number | undefined): Promise<void> {
    if (limit === undefined && !this.#installed) return;
    const bitsPerSec = limit ?? UNLIMITED;
    const rate = `${Math.max(64_000, Math.round(bitsPerSec))}bit`;
    // a burst of ~2 ms at the rate (at least a few full frames) keeps htb's timer honest
    const burst = String(Math.max(6 * 1514, Math.round(bitsPerSec / 8 / 500)));
    if (!this.#installed) {
      this.o.beforeInstall?.(this.dev);
      await tc(['qdisc', 'replace', 'dev', this.dev, ...(await attachPoint(this.dev)), 'handle', PACER_HANDLE, 'htb', 'default', '1']);
      this.#installed = true;
      await tc(['class', 'replace', 'dev', this.dev, 'parent', PACER_HANDLE, 'classid', `${PACER_HANDLE}1`, 'htb', 'rate', rate, 'ceil', rate, 'burst', burst]);
      // a short queue (TCP small queues keeps each subflow's share of it small): a deep one
      // would hold the paced subflows' data back and stall the connections at the receiver
      await tc(['qdisc', 'replace', 'dev', this.dev, 'parent', `${PACER_HANDLE}1`, 'handle', LEAF_HANDLE, 'pfifo', 'limit', String(this.o.leafPackets ?? 50)]);
    } else {
      await tc(['class', 'change', 'dev', this.dev, 'parent', PACER_HANDLE, 'classid', `${PACER_HANDLE}1`, 'htb', 'rate', rate, 'ceil', rate, 'burst', burst]);
    }
    this.#rate = limit;
  }

  async restore(): Promise<void> {
    this.#rate = undefined;
    if (!this.#installed) return;
    this.#installed = false;
    await removePacer(this.dev);
    this.o.afterRestore?.(this.dev);
  }
}
