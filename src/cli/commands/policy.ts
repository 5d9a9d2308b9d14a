import { EXIT, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import { STEERING_MODES, type PolicySpec, type SteeringMode } from '../../store/index.js';
import { STORE_FLAGS, int, list, parseStrict, printRecord, printTable, str, usageError, withStore } from './subscribers.js';

const HELP = `usage: duocell policy show [NAME] [--json]
       duocell policy show --addr ADDRESS [--json]
       duocell policy set NAME [--max-sessions N] [--max-subflows N] [--max-server-sessions N]
                               [--mode active-standby|priority|ratio|smallest-delay] [--ratio CELLULAR:WLAN]
                               [--networks P,Q] [--ports 80,443]
       duocell policy rm NAME

A policy holds the limits (M-sessions per UE, subflows per M-session, M-sessions to one
N-server), the access networks subflows may join from (prefixes), the steering mode with its
cellular:WLAN ratio (percent, summing to 100), and the TCP ports intercepted on-path.
A field left unset (or set to "inherit") comes from the policy "default", then from the
board profile, then from built-in defaults. "policy show" without NAME lists every policy
and the defaults in force; with --addr it shows the policy a session from that address gets.
"policy set" changes only the fields given; a new NAME creates the policy.

options:
  --state-dir DIR   state directory (default $DUOCELL_STATE_DIR or /var/lib/duocell)
  --json            machine-readable output (show)

exit codes: 0 ok · 1 refused or not found · 2 usage · 69 state database unavailable`;

const FLAGS = {
  ...STORE_FLAGS,
  addr: 'string',
  'max-sessions': 'string',
  'max-subflows': 'string',
  'max-server-sessions': 'string',
  mode: 'string',
  ratio: 'string',
  networks: 'string',
  ports: 'string',
  json: 'boolean',
} as const;

function inherit(flags: Record<string, string | boolean>, name: string): boolean {
  return flags[name] === 'inherit';
}

function fmt(p: PolicySpec): string[] {
  const v = (x: unknown): string => (x === undefined || x === null ? '·' : Array.isArray(x) ? x.join(',') : typeof x === 'object' ? `${(x as { cellular: number }).cellular}:${(x as { wlan: number }).wlan}` : String(x));
  return [p.name, v(p.maxSessionsPerUe), v(p.maxSubflowsPerSession), v(p.maxSessionsPerNServer), v(p.steeringMode), v(p.ratio), v(p.allowedNetworks), v(p.interceptPorts)];
}

const policy: Command = {
  name: 'policy',
  summary: 'show or change subscriber policies (limits, networks, steering)',
  help: HELP,
  async run(args, ctx) {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'show': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 0, max: 1, usage: 'duocell policy show [NAME] | --addr ADDRESS' });
        const addr = str(flags, 'addr');
        if (addr !== undefined && positional.length > 0) throw usageError('give NAME or --addr, not both');
        return withStore(ctx, flags, (s) => {
          if (addr !== undefined) {
            printRecord(ctx, { address: addr, ...s.resolvePolicy(addr) });
            return EXIT.OK;
          }
          if (positional.length === 1) {
            const p = s.getPolicy(positional[0]!);
            if (p === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no policy ${JSON.stringify(positional[0]!.slice(0, 64))}`);
            printRecord(ctx, { ...p });
            return EXIT.OK;
          }
          const all = s.listPolicies();
          const { subscriber: _s, matched: _m, policy: _p, ...defaults } = s.defaultPolicy();
          const ota = s.otaState();
          if (ctx.json) {
            ctx.io.out(JSON.stringify({ version: ota.currentVersion || null, policies: all, defaults }));
          } else {
            printTable(ctx, ['NAME', 'SESSIONS', 'SUBFLOWS', 'PER-SERVER', 'MODE', 'RATIO', 'NETWORKS', 'PORTS'], all.map(fmt));
            ctx.io.out('');
            ctx.io.out(`in force without a subscriber match (bundle version ${ota.currentVersion || '-'}, · = inherited):`);
            printTable(ctx, ['', 'SESSIONS', 'SUBFLOWS', 'PER-SERVER', 'MODE', 'RATIO', 'NETWORKS', 'PORTS'], [fmt({ name: 'default', ...defaults } as PolicySpec)]);
          }
          return EXIT.OK;
        });
      }
      case 'set': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell policy set NAME [--max-sessions N] ...' });
        const name = positional[0]!;
        const patch: Partial<PolicySpec> = {};
        const num = (flag: string, key: 'maxSessionsPerUe' | 'maxSubflowsPerSession' | 'maxSessionsPerNServer', hi: number): void => {
          if (inherit(flags, flag)) patch[key] = null;
          else {
            const v = int(flags, flag, 0, hi);
            if (v !== undefined) patch[key] = v;
          }
        };
        num('max-sessions', 'maxSessionsPerUe', 1_000_000);
        num('max-subflows', 'maxSubflowsPerSession', 8);
        num('max-server-sessions', 'maxSessionsPerNServer', 1_000_000);
        const mode = str(flags, 'mode');
        if (mode !== undefined) {
          if (mode === 'inherit') patch.steeringMode = null;
          else if (!STEERING_MODES.includes(mode as SteeringMode)) throw usageError(`--mode: expected ${STEERING_MODES.join('|')} or inherit`);
          else patch.steeringMode = mode as SteeringMode;
        }
        const ratio = str(flags, 'ratio');
        if (ratio !== undefined) {
          if (ratio === 'inherit') patch.ratio = null;
          else {
            const m = /^([0-9]{1,3}):([0-9]{1,3})$/.exec(ratio);
            if (m === null) throw usageError('--ratio: expected CELLULAR:WLAN in percent, e.g. 30:70');
            patch.ratio = { cellular: Number(m[1]), wlan: Number(m[2]) };
          }
        }
        if (inherit(flags, 'networks')) patch.allowedNetworks = null;
        else {
          const n = list(flags, 'networks');
          if (n !== undefined) patch.allowedNetworks = n;
        }
        if (inherit(flags, 'ports')) patch.interceptPorts = null;
        else {
          const p = list(flags, 'ports');
          if (p !== undefined) {
            if (!p.every((x) => /^[0-9]{1,5}$/.test(x))) throw usageError('--ports: expected comma-separated port numbers');
            patch.interceptPorts = p.map(Number);
          }
        }
        if (Object.keys(patch).length === 0) throw usageError('nothing to set: give at least one option');
        return withStore(ctx, flags, (s) => {
          const cur = s.getPolicy(name) ?? { name };
          const next = { ...cur, ...patch, name };
          const saved = s.setPolicy(next, 'cli');
          if (ctx.json) ctx.io.out(JSON.stringify(saved));
          else ctx.io.out(`policy ${name} saved`);
          return EXIT.OK;
        });
      }
      case 'rm': {
        const { flags, positional } = parseStrict(rest, FLAGS, { min: 1, max: 1, usage: 'duocell policy rm NAME' });
        return withStore(ctx, flags, (s) => {
          s.removePolicy(positional[0]!, 'cli');
          ctx.io.out(ctx.json ? JSON.stringify({ removed: positional[0] }) : `removed policy ${positional[0]}`);
          return EXIT.OK;
        });
      }
      default:
        throw usageError(sub === undefined ? 'missing sub-command (show|set|rm)' : `unknown sub-command ${JSON.stringify(sub.slice(0, 32))} (show|set|rm)`);
    }
  },
};

export default policy;
