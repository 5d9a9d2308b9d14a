import { EXIT, parseFlags, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import { assertRoot } from '../../sim/board.js';
import { parseLinksWorld } from '../../sim/links.js';
import { simDown, simExists, simUp } from '../../sim/run.js';
import { POOL_MAX } from '../../sim/pool.js';

const help = `usage: duocell sim up [--with-cell] [--links realistic|ideal] [--modem qmi|at] [--concentrators N] | down | status

The simulated board: network namespaces dc-mue, dc-cell, dc-conc, dc-srv, dc-lan joined by
shaped links, an N-server (port 8000) and an M-server (port 8001) in dc-srv. See docs/sim.md.
Links: realistic (default) = cellular links lte (20 Mbit/s, 40 ms RTT ±10 ms, 0.1 % loss), WLAN
links wlan (30 Mbit/s, 8 ms RTT ±3 ms, 0.5 % loss), through delay lines in dc-wire; ideal = plain
veth pairs at the same rates, no delay.

  up [--with-cell] [--links W]  build it (and start the cell appliance in dc-cell in the background)
     [--concentrators N]        also an anycast pool: N concentrators (duocell run + BIRD 2) behind
                                dc-pool-rtr over BGP + BFD, ECMP; sites A (odd, 5 ms) and B (even, 25 ms)
     [--modem qmi|at]           qmi (default): QMI + AT modem, wwan0; at: an AT-only module whose
                                data side is usb0, addressed by DHCP from the module (board sim-at)
  down                          stop its processes and delete its namespaces
  status                        say whether it is up (--json)`;

const sim: Command = {
  name: 'sim',
  summary: 'bring the simulated board up or down',
  help,
  async run(args, ctx) {
    const [sub] = args;
    if (sub === 'status') {
      const up = await simExists();
      ctx.io.out(ctx.json ? JSON.stringify({ up }) : up ? 'sim: up' : 'sim: down');
      return EXIT.OK;
    }
    assertRoot();
    if (sub === 'up') {
      const { flags, positional, unknown } = parseFlags(args.slice(1), { 'with-cell': 'boolean', links: 'string', modem: 'string', concentrators: 'string' });
      if (unknown.length > 0 || positional.length > 0) throw new DuocellError('DC_USAGE', `unexpected ${[...unknown, ...positional].join(' ')}\n${help}`);
      const links = parseLinksWorld(typeof flags.links === 'string' ? flags.links : 'realistic');
      const modem = flags.modem === undefined ? 'qmi' : flags.modem;
      if (modem !== 'qmi' && modem !== 'at') throw new DuocellError('DC_USAGE', `--modem: qmi or at\n${help}`);
      const concentrators = flags.concentrators === undefined ? undefined : Number(flags.concentrators);
      if (concentrators !== undefined && (!Number.isInteger(concentrators) || concentrators < 1 || concentrators > POOL_MAX)) throw new DuocellError('DC_USAGE', `--concentrators: 1–${POOL_MAX}\n${help}`);
      await simUp({ withCell: flags['with-cell'] === true, links, modem, ...(concentrators === undefined ? {} : { concentrators }) });
      ctx.io.out('sim: up');
      return EXIT.OK;
    }
    if (sub === 'down') {
      await simDown();
      ctx.io.out('sim: down');
      return EXIT.OK;
    }
    throw new DuocellError('DC_USAGE', help);
  },
};
export default sim;
