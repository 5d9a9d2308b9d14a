import { DuocellError, toDuocellError } from '../../core/errors.js';
import type { PathView } from '../paths/types.js';
import type { EndpointFlag, PmBackend } from './types.js';

/**
 * The kernel's MPTCP endpoints that the path manager service owns (address → id), and the sync
 * that brings them in line with the wanted set: delete ours no longer wanted first (a path going
 * down acts at once), then add what is missing and fix flags that differ.
 */
export class EndpointTable {
  readonly owned = new Map<string, number>();

  /** The id for an address: the one it has, else the lowest free 1-255. */
  allocId(address: string, taken: Set<number>): number {
    const had = this.owned.get(address);
    if (had !== undefined) return had;
    for (let id = 1; id < 256; id++) {
      if (!taken.has(id) && ![...this.owned.values()].includes(id)) return id;
    }
    throw new DuocellError('DC_PM_SYNC', 'no free MPTCP endpoint id (1-255)');
  }

  async sync(
    pm: Pick<PmBackend, 'endpoints' | 'addEndpoint' | 'deleteEndpoint' | 'setEndpointFlags'>,
    want: ReadonlyMap<string, { path: PathView; flags: EndpointFlag[] }>,
    stats: { endpointAdds: number; endpointDeletes: number },
  ): Promise<{ added: number; deleted: number; changed: number }> {
    const res = { added: 0, deleted: 0, changed: 0 };
    const have = await pm.endpoints();
    const byAddr = new Map(have.map((e) => [e.address, e]));
    // 1. delete ours that are no longer wanted (first: a path going down acts at once)
    for (const [address, id] of [...this.owned]) {
      if (want.has(address)) continue;
      if (byAddr.has(address)) {
        await pm.deleteEndpoint(id, address).catch((e: unknown) => {
          const err = toDuocellError(e);
          if (err.errno !== 22 && err.errno !== 2) throw err; // already gone is fine
        });
        res.deleted++;
        stats.endpointDeletes++;
      }
      this.owned.delete(address);
    }
    // 2. add what is missing, fix flags that differ
    const taken = new Set(have.map((e) => e.id));
    for (const [address, { path, flags }] of want) {
      const cur = byAddr.get(address);
      if (cur === undefined) {
        const id = this.allocId(address, taken);
        await pm.addEndpoint({ address, id, flags, ...(path.ifindex === undefined ? {} : { ifIndex: path.ifindex }) });
        this.owned.set(address, id);
        taken.add(id);
        res.added++;
        stats.endpointAdds++;
      } else {
        this.owned.set(address, cur.id);
        const curFlags = cur.flags.filter((f) => f !== 'implicit').sort().join(',');
        if (curFlags !== [...flags].sort().join(',')) {
          await pm.setEndpointFlags({ id: cur.id, flags });
          res.changed++;
        }
      }
    }
    return res;
  }
}
