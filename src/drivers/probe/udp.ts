import dgram from 'node:dgram';
import net from 'node:net';
import { DuocellError } from '../../core/errors.js';
import type { ProbeSocket, ProbeTransport } from './types.js';

/**
 * Path probes over UDP: one socket per path, bound to the path's own address, so the uplink's
 * source rule (the routing keeper's `from ADDR lookup TABLE`) sends it out of that uplink and
 * never through another. Only datagrams from the target's port are handed on: an echo responder
 * on a wildcard socket (inetd's echo, the simulator's) answers from whatever address its routing
 * picks, so the source address is not checked; the probe's random session and sequence are.
 */
export const udpProbeTransport: ProbeTransport = {
  describe: (target, port) => `${target}:${port}`,
  open({ local, target, port, onMessage, onError }) {
    if (net.isIP(local) === 0 || net.isIP(target) === 0) return Promise.reject(new DuocellError('DC_PROBE_MALFORMED', `probe addresses must be numeric (${local} → ${target})`));
    if (net.isIP(local) !== net.isIP(target)) return Promise.reject(new DuocellError('DC_PROBE_MALFORMED', `probe source ${local} and target ${target} differ in family`));
    const s = dgram.createSocket({ type: net.isIPv6(local) ? 'udp6' : 'udp4' });
    return new Promise<ProbeSocket>((resolve, reject) => {
      const fail = (e: Error): void => {
        s.close();
        reject(new DuocellError('DC_SOCKET_SYSCALL', `cannot bind the probe socket to ${local}: ${e.message}`, { cause: e, origin: 'kernel' }));
      };
      s.once('error', fail);
      s.bind({ address: local, port: 0 }, () => {
        s.off('error', fail);
        s.on('error', onError);
        s.on('message', (m, r) => {
          if (r.port === port) onMessage(m);
        });
        resolve({
          send: (b) => s.send(b, port, target, (e) => e && onError(e)),
          close: () => {
            try {
              s.close();
            } catch {
              /* closed already */
            }
          },
        });
      });
    });
  },
};
