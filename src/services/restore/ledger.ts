import { DuocellError, isDuocellError } from '../../core/errors.js';
import { logger } from '../../core/logger.js';
import { canonicalAddress } from '../../core/net.js';

/** One spelling per address (2001:DB8:0::1 = 2001:db8::1), as endpoints are keyed by it. */
const addrKey = (a: string): string => canonicalAddress(a) ?? a.toLowerCase();

/**
 * The kernel ledger: crash-safe restore of what duocell changes in the kernel (issue 16, item 4).
 *
 *   before a change    ─► record it in the store (committed first; a kill -9 after it finds it)
 *     sysctl / limits     original value, kept from the FIRST change only
 *     endpoint            an MPTCP endpoint duocell adds (address → id)
 *     table               a routing table whose duocell-made (protocol 220) rules and routes it owns
 *   clean exit: undo() ─► delete the endpoints, the rules and routes, put the limits and sysctls
 *                         back (in that order), forget each row once done
 *   start: recover()   ─► rows found = the last run did not exit cleanly: undo() them FIRST, so
 *                         this run records the true originals, not its predecessor's leftovers
 *
 * Only what is recorded is ever removed or restored: an endpoint or rule the operator made is
 * never touched (wrap() refuses to delete or re-flag an endpoint the ledger does not own).
 * No I/O here: the store rows and the kernel calls are injected (src/wiring/restore.ts).
 */
const log = logger('duocell:restore');

export type LedgerKind = 'sysctl' | 'limits' | 'endpoint' | 'table';

export interface LedgerStore {
  ledgerList(): Array<{ kind: LedgerKind; key: string; value: string }>;
  ledgerRecord(kind: LedgerKind, key: string, value: string, o: { keepFirst: boolean }): void;
  ledgerForget(kind: LedgerKind, key: string): void;
}

export interface Limits {
  subflows: number;
  addAddrAccepted: number;
}

/** The kernel calls the ledger needs to read originals and to undo. */
export interface LedgerKernel {
  readSysctl(name: string): string;
  writeSysctl(name: string, value: string): void;
  /** undefined: no MPTCP path manager to talk to (nothing to record or undo there). */
  limits(): Promise<Limits | undefined>;
  setLimits(l: Limits): Promise<void>;
  endpoints(): Promise<Array<{ id: number; address: string }>>;
  deleteEndpoint(id: number, address: string): Promise<void>;
  /** Remove the duocell-made (protocol 220) rules and routes of a routing table. */
  clearTable(table: number): Promise<{ rules: number; routes: number }>;
}

/** The calls that change the kernel, as services hold them (AnnounceOps, PmBackend). */
export interface KernelWrites {
  writeSysctl?(name: string, value: string): void;
  setLimits?(l: Partial<Limits>): Promise<void>;
  addEndpoint?(e: { address: string }): Promise<void>;
  deleteEndpoint?(id: number, address?: string): Promise<void>;
  setEndpointFlags?(e: { id?: number; address?: string }): Promise<void>;
}

/** The order undo() follows: what is made goes before the settings it may depend on. */
const ORDER: Record<LedgerKind, number> = { endpoint: 0, table: 1, limits: 2, sysctl: 3 };
/** pm_type goes back last: switching the path manager is the outermost change. */
const LAST_SYSCTLS = ['net.mptcp.pm_type', 'net.mptcp.path_manager'];

export class KernelLedger {
  /** Undo steps done and failed (status, tests). */
  readonly counts = { restored: 0, failed: 0, refusedForeign: 0 };

  constructor(
    readonly store: LedgerStore,
    readonly kernel: LedgerKernel,
  ) {}

  /** Rows left by a run that did not exit cleanly are undone before anything else changes. */
  async recover(): Promise<number> {
    const rows = this.store.ledgerList();
    if (rows.length === 0) return 0;
    log.warn({ rows: rows.map((r) => `${r.kind}:${r.key}`) }, 'the last run did not exit cleanly: restoring the kernel settings it changed before starting');
    await this.undo();
    return rows.length;
  }

  /** Record a sysctl's value before the first change of it. */
  recordSysctl(name: string): void {
    const value = this.kernel.readSysctl(name).trim();
    this.store.ledgerRecord('sysctl', name, value, { keepFirst: true });
  }

  async recordLimits(): Promise<void> {
    const l = await this.kernel.limits();
    if (l !== undefined) this.store.ledgerRecord('limits', 'mptcp', JSON.stringify({ subflows: l.subflows, addAddrAccepted: l.addAddrAccepted }), { keepFirst: true });
  }

  recordEndpoint(address: string): void {
    this.store.ledgerRecord('endpoint', addrKey(address), '{}', { keepFirst: true });
  }

  forgetEndpoint(address: string): void {
    this.store.ledgerForget('endpoint', addrKey(address));
  }

  ownsEndpoint(address: string): boolean {
    const k = addrKey(address);
    return this.store.ledgerList().some((r) => r.kind === 'endpoint' && r.key === k);
  }

  recordTable(table: number): void {
    this.store.ledgerRecord('table', String(table), '{}', { keepFirst: true });
  }

  /**
   * The same calls, each recorded before it reaches the kernel; deleting or re-flagging an
   * endpoint duocell did not make is refused (resolves without touching it, counted).
   */
  wrap<T extends KernelWrites>(ops: T): T {
    const w = { ...ops } as T;
    if (ops.writeSysctl !== undefined) {
      const f = ops.writeSysctl.bind(ops);
      w.writeSysctl = (n: string, v: string) => {
        this.recordSysctl(n);
        f(n, v);
      };
    }
    if (ops.setLimits !== undefined) {
      const f = ops.setLimits.bind(ops);
      w.setLimits = async (l: Partial<Limits>) => {
        await this.recordLimits();
        await f(l);
      };
    }
    if (ops.addEndpoint !== undefined) {
      const f = ops.addEndpoint.bind(ops);
      w.addEndpoint = async (e: { address: string }) => {
        this.recordEndpoint(e.address);
        await f(e as never);
      };
    }
    if (ops.deleteEndpoint !== undefined) {
      const f = ops.deleteEndpoint.bind(ops);
      w.deleteEndpoint = async (id: number, address?: string) => {
        if (address === undefined || !this.ownsEndpoint(address)) {
          this.#foreign(`delete endpoint ${id} ${address ?? ''}`);
          return;
        }
        await f(id, address);
        this.forgetEndpoint(address);
      };
    }
    if (ops.setEndpointFlags !== undefined) {
      const f = ops.setEndpointFlags.bind(ops);
      w.setEndpointFlags = async (e: { id?: number; address?: string }) => {
        if (e.address === undefined || !this.ownsEndpoint(e.address)) {
          this.#foreign(`change the flags of endpoint ${e.id ?? ''} ${e.address ?? ''}`);
          return;
        }
        await f(e as never);
      };
    }
    return w;
  }

  #foreign(what: string): void {
    this.counts.refusedForeign++;
    log.info({ code: 'DC_KERNEL_FOREIGN', what }, 'left alone: duocell did not make it');
  }

  /**
   * Undo every recorded change; each row is forgotten once undone. Every step is tried; the
   * first failure is thrown at the end (its row stays for the next start).
   */
  async undo(): Promise<void> {
    const rows = this.store.ledgerList().sort((a, b) => ORDER[a.kind] - ORDER[b.kind] || Number(LAST_SYSCTLS.includes(a.key)) - Number(LAST_SYSCTLS.includes(b.key)));
    let first: DuocellError | undefined;
    let have: Array<{ id: number; address: string }> | undefined;
    for (const r of rows) {
      try {
        switch (r.kind) {
          case 'endpoint': {
            have ??= await this.kernel.endpoints();
            for (const e of have.filter((x) => addrKey(x.address) === r.key)) {
              await this.kernel.deleteEndpoint(e.id, e.address).catch((err: unknown) => {
                const n = isDuocellError(err) ? err.detail.errno : undefined;
                if (n !== 2 && n !== 22) throw err; // already gone is fine
              });
            }
            break;
          }
          case 'table':
            await this.kernel.clearTable(Number(r.key));
            break;
          case 'limits': {
            const l = JSON.parse(r.value) as Limits;
            await this.kernel.setLimits({ subflows: l.subflows, addAddrAccepted: l.addAddrAccepted });
            break;
          }
          case 'sysctl':
            if (this.kernel.readSysctl(r.key).trim() !== r.value) this.kernel.writeSysctl(r.key, r.value);
            break;
        }
        this.store.ledgerForget(r.kind, r.key);
        this.counts.restored++;
      } catch (e) {
        this.counts.failed++;
        const err = new DuocellError('DC_KERNEL_RESTORE', `cannot restore ${r.kind} ${r.key}: ${(e as Error).message ?? String(e)}`, { cause: e, origin: 'kernel' });
        log.error({ code: err.code, err: err.message }, 'kernel setting not restored; kept in the ledger for the next start');
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
    if (rows.length > 0) log.info({ restored: rows.length }, 'kernel settings restored');
  }
}
