import { execFileSync } from 'node:child_process';

/** Why a BIRD 2 test cannot run here, or false when `bird` is installed (scripts/setup.sh: bird2). */
export function birdMissing(): string | false {
  try {
    execFileSync('bird', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'needs BIRD 2 (apt-get install bird2)';
  }
}

/** BFD on every interface at 100 ms × 3 (a dead peer is down in ~300 ms). */
export const BIRD_BFD = `protocol bfd { interface "*" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }`;
