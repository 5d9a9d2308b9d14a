import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DuocellError } from '../../core/errors.js';
import { hostPort } from '../../core/net.js';

/**
 * SOCK_DESTROY through inet_diag (`ss -K`, kernel CONFIG_INET_DIAG_DESTROY): abort one TCP flow
 * by its 4-tuple. Used on MPTCP subflows whose radio just went away, so that the connection
 * reinjects their data on the surviving subflows at once instead of after retransmission
 * timeouts. Arguments are numeric addresses and ports only.
 */
const run = promisify(execFile);

export interface FourTuple {
  local: { address: string; port: number };
  remote: { address: string; port: number };
}

export async function destroyTcp(t: FourTuple): Promise<void> {
  try {
    await run('ss', ['-K', '-t', '-n', 'dst', hostPort(t.remote.address, t.remote.port), 'src', hostPort(t.local.address, t.local.port)]);
  } catch (e) {
    throw new DuocellError('DC_SOCKET_SYSCALL', `ss -K ${hostPort(t.local.address, t.local.port)} → ${hostPort(t.remote.address, t.remote.port)}: ${(e as Error).message}`, { cause: e, origin: 'kernel' });
  }
}
