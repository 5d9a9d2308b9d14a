// Files written from a board profile, with duocell's own code (needs dist/ built):
//   node image/system-files.mjs BOARD ROOTFS
// → ROOTFS/usr/lib/udev/rules.d/70-duocell-modem.rules   (stable modem port names, dialout)
// → ROOTFS/etc/systemd/network/20-duocell-lan.network     (the LAN address, DHCP server)
import fs from 'node:fs';
import path from 'node:path';
import { loadBoard } from '../dist/src/core/board.js';
import { udevRules } from '../dist/src/drivers/udev/index.js';

const [board, root] = process.argv.slice(2);
if (!board || !root) {
  console.error('usage: node image/system-files.mjs BOARD ROOTFS');
  process.exit(64);
}
const b = loadBoard(board);
const write = (rel, text) => {
  const f = path.join(root, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text, { mode: 0o644 });
};
write('usr/lib/udev/rules.d/70-duocell-modem.rules', udevRules(b.modem));
for (const [i, ifname] of b.lan.interfaces.entries()) {
  const lines = [
    `# The LAN of board ${b.name}, written by the duocell image build.`,
    '[Match]',
    `Name=${ifname}`,
    '',
    '[Link]',
    'RequiredForOnline=no',
    '',
    '[Network]',
    'ConfigureWithoutCarrier=yes',
    'IgnoreCarrierLoss=yes',
    'LinkLocalAddressing=ipv6',
    'IPv6AcceptRA=no',
    ...(i === 0 ? (b.lan.addresses ?? []).map((a) => `Address=${a}`) : []),
  ];
  if (i === 0 && b.lan.dhcpServer === true) {
    lines.push('DHCPServer=yes', '', '[DHCPServer]', 'PoolOffset=100', 'PoolSize=100', 'EmitDNS=yes');
  }
  write(`etc/systemd/network/${20 + i}-duocell-lan-${ifname}.network`, lines.join('\n') + '\n');
}
console.log(`system files for board ${b.name} written under ${root}`);
