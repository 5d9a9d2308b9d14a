import { EXIT, parseFlags, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import { tableExists, flushSet, listSetJson } from '../../drivers/nft/index.js';
import { withStore } from './subscribers.js';

const help = `usage: duocell mservers list|flush [--table NAME] [--state-dir DIR] [--json]

The M-server cache of on-path steering: servers that answered MPTCP, whose connections go end to
end untouched until their entry expires (then they are probed again).

  list    entries in force (the nft set of the running cell, and the store's copy)
  flush   forget them all: the next connection to each is proxied and probed again`;

const mservers: Command = {
  name: 'mservers',
  summary: 'list or flush the M-server bypass cache (on-path steering)',
  help,
  async run(args, ctx) {
    const { flags, positional, unknown } = parseFlags(args, { table: 'string', 'state-dir': 'string' });
    if (unknown.length > 0) throw new DuocellError('DC_USAGE', `unknown option ${unknown[0]}\n${help}`);
    const table = (flags.table as string | undefined) ?? 'duocell';
    const sub = positional[0];
    const live = await tableExists('inet', table);
    if (sub === 'list') {
      const kernel = live ? [...(await listSetJson('inet', table, 'mservers4')), ...(await listSetJson('inet', table, 'mservers6'))] : [];
      return withStore(ctx, flags, (store) => {
        const stored = store.listMServers().map((m) => ({ address: m.address, port: m.port, expiresAt: new Date(m.expiresAt).toISOString() }));
        if (ctx.json) ctx.io.out(JSON.stringify({ steeringActive: live, kernel, stored }));
        else {
          ctx.io.out(live ? `steering table inet ${table}: active` : `steering table inet ${table}: not loaded`);
          for (const k of kernel) ctx.io.out(`  ${k.address} port ${k.port}${k.expiresS === undefined ? '' : ` (expires in ${k.expiresS} s)`}`);
          if (kernel.length === 0) ctx.io.out('  (no M-server bypassed)');
          ctx.io.out(`stored: ${stored.length}`);
        }
        return EXIT.OK;
      });
    }
    if (sub === 'flush') {
      if (live) {
        await flushSet('inet', table, 'mservers4');
        await flushSet('inet', table, 'mservers6');
      }
      return withStore(ctx, flags, (store) => {
        for (const m of store.listMServers()) store.forgetMServer(m.address, m.port);
        ctx.io.out(ctx.json ? JSON.stringify({ flushed: true }) : 'M-server cache flushed');
        return EXIT.OK;
      });
    }
    throw new DuocellError('DC_USAGE', help);
  },
};
export default mservers;
