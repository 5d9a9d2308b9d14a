// The real control socket (native unixDgram: AF_UNIX datagrams from an abstract address of
// ours) against a small datagram server that answers as wpa_supplicant's global socket does:
// replies go back to the sender's address, an unsolicited event may come first, and the
// reply to INTERFACES with none added yet is an empty datagram (once taken as end of file).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openCtrlSocket, Supplicant } from '../../src/drivers/wlan/supplicant.js';
import { fdWatchAvailable } from '../../src/drivers/sockets/fd-watch.js';

const SERVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
ifaces = []
while True:
    data, addr = s.recvfrom(4096)
    req = data.decode()
    s.sendto(b"<3>CTRL-EVENT-SCAN-STARTED ", addr)
    if req == "INTERFACES":
        rep = "".join(i + "\\n" for i in ifaces)
    elif req.startswith("INTERFACE_ADD "):
        ifaces.append(req[14:].split("\\t")[0]); rep = "OK\\n"
    elif req == "IFNAME=wlan0 STATUS":
        rep = "wpa_state=COMPLETED\\nssid=rig\\nbssid=02:00:00:00:01:00\\n"
    elif req == "QUIT":
        break
    else:
        rep = "UNKNOWN COMMAND\\n"
    s.sendto(rep.encode(), addr)
`;

const python = ['python3', '/usr/bin/python3'].find((p) => fs.existsSync(p) || p === 'python3');

t.test('openCtrlSocket talks to a datagram server from an abstract address', { skip: fdWatchAvailable() ? false : 'the native addon has no fdWatch (rebuild it)' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'radios-wlan-ctrl-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'global');
  const srv = spawn(python!, ['-c', SERVER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void srv.kill());
  await new Promise<void>((res, rej) => {
    srv.stdout.once('data', () => res());
    srv.once('error', rej);
  });
  const s = new Supplicant({ ifname: 'wlan0', network: { ssid: 'rig', passphrase: 'abcdefgh' }, socketPath: sock, confPath: path.join(dir, 'w.conf'), timeoutMs: 5000 });
  t.equal(await s.apply(), 'added', 'INTERFACES, then INTERFACE_ADD answered OK');
  t.equal(await s.apply(), 'unchanged');
  t.match(await s.status(), { wpaState: 'COMPLETED', ssid: 'rig', bssid: '02:00:00:00:01:00' }, 'the reply, not the event before it');
  s.stop();
  t.throws(() => openCtrlSocket(path.join(dir, 'absent')), { code: 'DC_WLAN_CTRL_UNREACHABLE', errno: 2 }, 'no socket: ENOENT, coded');
});
