import { EventEmitter } from 'node:events';
import { DuocellError } from '../../src/core/errors.js';
import type { PathView } from '../../src/services/paths/index.js';
import type { PmConnectionView, SteerBackend, SteerPaths, SteerSessions, SubflowView } from '../../src/services/pm/index.js';

// Fakes for the steering controller's unit tests: the pm service's sessions, the kernel's
// SET_FLAGS / SUBFLOW_DESTROY (recorded as text), the paths service.

export class FakeSessions extends EventEmitter implements SteerSessions {
  list: PmConnectionView[] = [];
  sessions(): PmConnectionView[] {
    return this.list;
  }
  session(token: number): PmConnectionView | undefined {
    return this.list.find((s) => s.token === token);
  }
}

export class FakeBackend implements SteerBackend {
  calls: string[] = [];
  fail: ((token: number) => number | undefined) | undefined;
  async setSubflowFlags(token: number, local: { address: string; port: number }, _remote: { address: string; port: number }, flags: readonly 'backup'[]): Promise<void> {
    const errno = this.fail?.(token);
    if (errno !== undefined) throw new DuocellError('DC_NETLINK_ERRNO', `kernel said ${errno}`, { errno, origin: 'kernel' });
    this.calls.push(`flags ${token} ${local.address}:${local.port} ${flags.join(',') || '-'}`);
  }
  async subflowDestroy(token: number, local: { address: string; port: number }): Promise<void> {
    this.calls.push(`destroy ${token} ${local.address}:${local.port}`);
  }
}

export class FakePaths extends EventEmitter implements SteerPaths {
  list(): PathView[] {
    return [];
  }
}

export const CELL = '10.0.1.1';
export const WLAN = '10.0.2.1';
export const sf = (token: number, saddr: string, sport: number, state: 'established' | 'closed' = 'established'): SubflowView => ({
  token, saddr, sport, daddr: '192.0.2.1', dport: 443, locId: 0, remId: 0, access: saddr === CELL ? 'cellular' : 'wlan', backup: false, state, since: '',
});
export const session = (token: number, subflows: SubflowView[]): PmConnectionView => ({
  token, family: 4, saddr: subflows[0]!.saddr, daddr: '192.0.2.1', sport: subflows[0]!.sport, dport: 443, serverSide: false, denyJoinInitial: false, state: 'established', since: '', subflows, announced: {}, announcedPorts: {},
});
