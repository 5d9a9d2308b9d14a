import { birdc } from './index.js';

/**
 * BIRD 2's own view of its sessions, read through `birdc -v show protocols` and
 * `show bfd sessions` (reply codes 1002 and 1020; continuation lines start with a space).
 * The parsers are pure and never throw on what BIRD prints: an unknown line is skipped.
 *
 *   1002-edge       BGP        ---        up     22:42:03.013  Established
 *        anycast    Static     master4    down   22:42:03.010
 *   1020-bfd1:
 *        IP address                Interface  State      Since         Interval  Timeout
 *        10.71.1.1                 eth0       Up         22:42:04.101    0.100    0.300
 */
export interface BirdProtocol {
  name: string;
  proto: string;
  state: string;
  /** BIRD's info column: "Established", "Active", "Error: …" */
  info: string;
}

export interface BfdSession {
  peer: string;
  interface: string;
  state: string;
}

export interface BirdStatus {
  protocols: BirdProtocol[];
  bfd: BfdSession[];
}

/** The rows of one reply code: the line with the code and its continuation lines. */
function rows(text: string, code: string): string[] {
  const out: string[] = [];
  let inside = false;
  for (const raw of text.split('\n')) {
    const m = /^(\d{4})([ -])(.*)$/.exec(raw);
    if (m !== null) {
      inside = m[1] === code;
      if (inside) out.push(m[3]!);
    } else if (inside && raw.startsWith(' ')) out.push(raw.slice(1));
  }
  return out;
}

const SINCE = /^(\d{4}-\d{2}-\d{2}|\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$/;

export function parseBirdProtocols(text: string): BirdProtocol[] {
  const out: BirdProtocol[] = [];
  for (const row of rows(text, '1002')) {
    const tok = row.trim().split(/\s+/);
    if (tok.length < 4 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(tok[0]!)) continue;
    let i = 4;
    while (i < tok.length && SINCE.test(tok[i]!)) i++;
    out.push({ name: tok[0]!, proto: tok[1]!, state: tok[3]!, info: tok.slice(i).join(' ') });
  }
  return out;
}

export function parseBfdSessions(text: string): BfdSession[] {
  const out: BfdSession[] = [];
  for (const row of rows(text, '1020')) {
    const tok = row.trim().split(/\s+/);
    if (tok.length < 3 || !/^[0-9a-fA-F.:]+$/.test(tok[0]!) || !/[.:]/.test(tok[0]!)) continue;
    out.push({ peer: tok[0]!, interface: tok[1]!, state: tok[2]! });
  }
  return out;
}

export async function birdStatus(socket: string, exec: typeof birdc = birdc): Promise<BirdStatus> {
  const protocols = parseBirdProtocols(await exec(socket, ['show', 'protocols']));
  // a BIRD without a BFD protocol answers "No protocols match": no sessions, not an error
  const bfd = parseBfdSessions(await exec(socket, ['show', 'bfd', 'sessions']).catch(() => ''));
  return { protocols, bfd };
}
