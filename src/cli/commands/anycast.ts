import { EXIT, type Command } from '../command.js';
import { loadBoard } from '../../core/board.js';
import { birdConfig, type BirdProfile } from '../../drivers/bird/config.js';
import { anycastProfile } from '../../wiring/anycast.js';
import { list, parseStrict, str, usageError } from './subscribers.js';

const help = `usage: duocell anycast bird-config --board NAME|FILE [--router-id A] [--local-as N]
                                 [--neighbor AS@ADDRESS[,AS@ADDRESS…]] [--prefix P[,P…]]

A concentrator of an anycast pool announces the pool's shared address with BIRD 2 over BGP
(with BFD) to its edge router(s); duocell enables the announcement while it can serve and
withdraws it first when it stops. This prints the BIRD configuration of this instance, from the
board profile's "anycast": {"protocol": NAME, "bird": {"routerId", "localAs", "prefixes",
"neighbors": [{"address", "as", "local"?, "name"?}], "bfd"?, "holdTime"?, "keepaliveTime"?,
"connectRetryTime"?, "scanTime"?}} (docs/deployment.md). Flags override the profile's values.

  --board NAME|FILE     the concentrator's board profile (required; it must have "anycast")
  --router-id A         BIRD's router id (an IPv4 address unique in the pool)
  --local-as N          this instance's AS number
  --neighbor AS@ADDR    the edge router(s): AS number and address (replaces the profile's)
  --prefix P            the anycast prefix(es), e.g. 192.0.2.80/32

Install it as /etc/bird/bird.conf (check first: bird -p -c FILE), then: systemctl reload bird.
The static protocol it writes is named after anycast.protocol and starts disabled: it is the one
duocell and the unit's ExecStopPost enable and disable.`;

const FLAGS = { board: 'string', 'router-id': 'string', 'local-as': 'string', neighbor: 'string', prefix: 'string' } as const;

const anycast: Command = {
  name: 'anycast',
  summary: "print this concentrator's BIRD 2 configuration (anycast pool)",
  help,
  async run(args, ctx) {
    const sub = args[0];
    if (sub !== 'bird-config') throw usageError(`usage: duocell anycast bird-config --board NAME|FILE (see duocell anycast --help)`);
    const { flags } = parseStrict(args.slice(1), FLAGS, { min: 0, max: 0, usage: 'duocell anycast bird-config --board NAME|FILE' });
    const boardName = str(flags, 'board');
    if (boardName === undefined) throw usageError('--board is required');
    const board = loadBoard(boardName);
    const p = anycastProfile(board);
    if (p === undefined) throw usageError(`board ${board.name} has no "anycast" section: it is not a member of an anycast pool`);
    const raw: Partial<Record<keyof BirdProfile, unknown>> = { ...(p.bird ?? {}) };
    const rid = str(flags, 'router-id');
    if (rid !== undefined) raw.routerId = rid;
    const las = str(flags, 'local-as');
    if (las !== undefined) raw.localAs = /^\d+$/.test(las) ? Number(las) : las;
    const nb = list(flags, 'neighbor');
    if (nb !== undefined) {
      raw.neighbors = nb.map((x) => {
        const m = /^(\d+)@(.+)$/.exec(x);
        if (m === null) throw usageError(`--neighbor ${JSON.stringify(x)}: expected AS@ADDRESS`);
        return { as: Number(m[1]), address: m[2] };
      });
    }
    const px = list(flags, 'prefix');
    if (px !== undefined) raw.prefixes = px;
    for (const [k, flag] of [['routerId', 'router-id'], ['localAs', 'local-as'], ['neighbors', 'neighbor'], ['prefixes', 'prefix']] as const) {
      if (raw[k] === undefined) throw usageError(`board ${board.name}: anycast.bird.${k} is not set; give it in the profile or with --${flag}`);
    }
    // birdConfig checks every field (DC_CONFIG_INVALID with the field's path).
    ctx.io.out(birdConfig(p.protocol, raw as BirdProfile, `duocell concentrator ${board.name}`).trimEnd());
    return EXIT.OK;
  },
};
export default anycast;
