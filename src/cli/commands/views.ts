import path from 'node:path';
import { EXIT, parseFlags, type CliContext, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import { readControl } from '../../web/control.js';

/** `duocell status | sessions | paths`: read views of the running appliance over its control socket. */

function socketPath(flags: Record<string, string | boolean>, ctx: CliContext): string {
  const dir = (flags['state-dir'] as string | undefined) ?? ctx.env.DUOCELL_STATE_DIR ?? '/var/lib/duocell';
  return path.join(dir, 'control.sock');
}

async function read(view: '/status' | '/sessions' | '/paths' | '/pm' | '/udp', args: string[], ctx: CliContext, help: string): Promise<unknown> {
  const { flags, unknown } = parseFlags(args, { 'state-dir': 'string' });
  if (unknown.length > 0) throw new DuocellError('DC_USAGE', `unknown option ${unknown[0]}\n${help}`);
  const p = socketPath(flags, ctx);
  try {
    return await readControl(p, view);
  } catch (e) {
    throw new DuocellError('DC_SIM_STATE', `duocell is not running here (no answer on ${p}): ${(e as Error).message}`, { cause: e });
  }
}

function table(ctx: CliContext, head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  ctx.io.out(head.map((h, i) => h.padEnd(w[i]!)).join('  '));
  for (const r of rows) ctx.io.out(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
}

interface PathRow { name: string; access: string; interface: string; state: string; addresses: string[]; bytesTx: number; bytesRx: number }
interface SessionRow { id: string; front: string; combination: string; client: { address: string; port: number }; server: { address: string; port: number }; bytes: { up: number; down: number }; subflows: Array<{ access: string }> }

const unavailable = (e: unknown, ctx: CliContext): number => {
  if (e instanceof DuocellError && e.code === 'DC_SIM_STATE') {
    ctx.io.err(ctx.json ? JSON.stringify({ error: e.toJSON() }) : `duocell: ${e.message}`);
    return EXIT.UNAVAILABLE;
  }
  throw e;
};

/** A read-only view command: fetch `view` over the control socket, print JSON or `render` it. */
function viewCommand<T>(name: string, summary: string, help: string, view: '/status' | '/sessions' | '/paths' | '/pm' | '/udp', render: (v: T, ctx: CliContext) => void): Command {
  return {
    name,
    summary,
    help,
    async run(args, ctx) {
      try {
        const v = (await read(view, args, ctx, help)) as T;
        if (ctx.json) ctx.io.out(JSON.stringify(v));
        else render(v, ctx);
        return EXIT.OK;
      } catch (e) {
        return unavailable(e, ctx);
      }
    },
  };
}

const statusHelp = 'usage: duocell status [--state-dir DIR] [--json]\n\nHealth, uplinks and modem of the running appliance (read over its control socket).';
type StatusView = { health: { status: string; preset: string; version: string; uptimeS: number }; paths: PathRow[]; modem: { state: string } | null; sessions: number };
export const status = viewCommand<StatusView>('status', 'health, uplinks and modem of the running appliance', statusHelp, '/status', (s, ctx) => {
  ctx.io.out(`duocell ${s.health.version} (${s.health.preset}): ${s.health.status}, up ${s.health.uptimeS} s, ${s.sessions} sessions, modem ${s.modem?.state ?? 'none'}`);
  table(ctx, ['PATH', 'ACCESS', 'IF', 'STATE', 'ADDRESSES'], s.paths.map((p) => [p.name, p.access, p.interface, p.state, p.addresses.join(' ')]));
});

const sessionsHelp = 'usage: duocell sessions [--state-dir DIR] [--json]\n\nLive proxy sessions: client, server, M/N combination, subflows with access types, bytes.';
export const sessions = viewCommand<SessionRow[]>('sessions', 'live proxy sessions with their subflows', sessionsHelp, '/sessions', (s, ctx) =>
  table(ctx, ['ID', 'FRONT', 'M/N', 'CLIENT', 'SERVER', 'UP', 'DOWN', 'SUBFLOWS'], s.map((x) => [x.id, x.front, x.combination, `${x.client.address}:${x.client.port}`, `${x.server.address}:${x.server.port}`, String(x.bytes.up), String(x.bytes.down), x.subflows.map((f) => f.access).join(',')])),
);

const pathsHelp = 'usage: duocell paths [--state-dir DIR] [--json]\n\nThe uplinks: access type, interface, state, addresses, byte counters, and what the probes\nfrom each uplink measure over their window: RTT median / p95, jitter and loss (\'—\': not measured).';
type MeasuredPathRow = PathRow & { measure?: { rttMedianMs?: number; rttP95Ms?: number; jitterMs?: number; lossPct?: number; samples: number } };
const ms = (x: number | undefined): string => (x === undefined ? '—' : x.toFixed(1));
export const paths = viewCommand<MeasuredPathRow[]>('paths', 'the uplinks, their state and measured RTT/jitter/loss', pathsHelp, '/paths', (p, ctx) =>
  table(ctx, ['PATH', 'ACCESS', 'IF', 'STATE', 'ADDRESSES', 'TX', 'RX', 'RTT50', 'RTT95', 'JITTER', 'LOSS%'], p.map((x) => [
    x.name, x.access, x.interface, x.state, x.addresses.join(' '), String(x.bytesTx), String(x.bytesRx),
    ms(x.measure?.rttMedianMs), ms(x.measure?.rttP95Ms), ms(x.measure?.jitterMs), x.measure?.lossPct === undefined ? '—' : x.measure.lossPct.toFixed(1),
  ])),
);

interface PmRow {
  mode: string;
  connections: Array<{ token: number; serverSide: boolean; remote: { address: string; port: number }; subflows: Array<{ local: { address: string; port: number }; remote: { address: string; port: number }; access: string; backup: boolean; state: string }> }>;
  stats: { subflowsRefused?: Record<string, number> };
  limits: { refused?: { perUe: number; perNServer: number } };
}

const subflowsHelp = 'usage: duocell subflows [--state-dir DIR] [--json]\n\nMPTCP connections as the path manager sees them: every subflow with its access type and backup flag,\nand the subflows and sessions the resource policy refused.';
export const subflows = viewCommand<PmRow>('subflows', 'MPTCP subflows by access type, and what the policy refused', subflowsHelp, '/pm', (p, ctx) => {
  const rows = p.connections.flatMap((c) =>
    c.subflows.map((f) => [String(c.token), c.serverSide ? 'in' : 'out', `${f.local.address}:${f.local.port}`, `${f.remote.address}:${f.remote.port}`, f.access, f.backup ? 'backup' : '', f.state]),
  );
  table(ctx, ['TOKEN', 'DIR', 'LOCAL', 'REMOTE', 'ACCESS', 'PRIO', 'STATE'], rows);
  const refused = Object.entries(p.stats.subflowsRefused ?? {}).map(([k, v]) => `${k}: ${v}`);
  ctx.io.out(`path manager: ${p.mode}; subflows refused: ${refused.length === 0 ? 'none' : refused.join(', ')}; sessions refused: ${p.limits.refused?.perUe ?? 0} per UE, ${p.limits.refused?.perNServer ?? 0} per N-server`);
});

interface UdpRow { enabled: boolean; mode?: string; flows: Array<{ src: string; sport: number; dst: string; dport: number; uplink: string; bytes: number; packets: number }>; capDrops?: Record<string, number>; quicBlocked?: number; quicLimited?: number }

const udpHelp = 'usage: duocell udp [--state-dir DIR] [--json]\n\nUDP steering per flow (board udpSteering.enabled): the default UDP mode and each steered flow\nfrom conntrack: its 5-tuple, the uplink it leaves by, bytes and packets (both directions); new flows refused by the per-device\nflow cap (by source), QUIC (UDP/443) rejected by quic: block and dropped over its reject limits, since start.';
export const udp = viewCommand<UdpRow>('udp', 'UDP steering per flow: mode and each flow\'s uplink', udpHelp, '/udp', (u, ctx) => {
  if (!u.enabled) {
    ctx.io.out('UDP steering: off (board udpSteering.enabled); LAN UDP follows the main routing table');
    return;
  }
  table(ctx, ['SOURCE', 'DESTINATION', 'UPLINK', 'BYTES', 'PACKETS'], u.flows.map((f) => [`${f.src}:${f.sport}`, `${f.dst}:${f.dport}`, f.uplink, String(f.bytes), String(f.packets)]));
  const per = new Map<string, number>();
  for (const f of u.flows) per.set(f.uplink, (per.get(f.uplink) ?? 0) + 1);
  ctx.io.out(`UDP steering: on, mode ${u.mode ?? '?'}; flows ${u.flows.length}${per.size === 0 ? '' : ` (${[...per].map(([k, v]) => `${k} ${v}`).join(', ')})`}`);
  const capped = Object.entries(u.capDrops ?? {});
  ctx.io.out(`refused by the per-device flow cap: ${capped.length === 0 ? 'none' : capped.map(([k, v]) => `${k} ${v}`).join(', ')}; QUIC (UDP/443) rejected: ${u.quicBlocked ?? 0}, over the reject limits: ${u.quicLimited ?? 0}`);
});
