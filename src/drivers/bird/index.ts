import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DuocellError } from '../../core/errors.js';

/**
 * BIRD 2's control socket through `birdc` (argument vector, never a shell). The concentrator
 * pool announces its anycast address with a BIRD protocol the operator names; duocell only
 * enables it (announce) and disables it (withdraw).
 */
const run = promisify(execFile);

/** Reply codes of BIRD's CLI: 0xxx ok, 8xxx/9xxx errors (e.g. 8003 "No protocols match"). */
export async function birdc(socket: string, args: readonly string[], timeoutMs = 5000): Promise<string> {
  let out: string;
  try {
    out = (await run('birdc', ['-v', '-s', socket, ...args], { timeout: timeoutMs })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new DuocellError('DC_BIRD_COMMAND', `birdc -s ${socket} ${args.join(' ')}: ${(err.stderr || err.stdout || err.message).trim()}`, { cause: e, origin: 'peer' });
  }
  const bad = /^([89]\d{3})[ -](.*)$/m.exec(out);
  if (bad !== null) throw new DuocellError('DC_BIRD_COMMAND', `birdc ${args.join(' ')}: ${bad[2]!.trim()} (${bad[1]})`, { origin: 'peer', birdCode: Number(bad[1]) });
  return out;
}

export interface Announcer {
  announce(): Promise<void>;
  withdraw(): Promise<void>;
}

/** Announce / withdraw by enabling / disabling one BIRD protocol. */
export function birdAnnouncer(socket: string, protocol: string, exec: typeof birdc = birdc): Announcer {
  return {
    announce: async () => void (await exec(socket, ['enable', protocol])),
    withdraw: async () => void (await exec(socket, ['disable', protocol])),
  };
}
