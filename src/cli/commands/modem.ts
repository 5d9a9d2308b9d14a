import path from 'node:path';
import { EXIT, parseFlags, type CliContext, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import type { ServingCellReport, CellInfo } from '../../protocols/at/cells.js';
import type { ModemView } from '../../web/deps.js';
import { postModemAt, readControl } from '../../web/control.js';

/**
 * `duocell modem`: the modem as the running service sees it, for diagnostics (what `mmcli -m 0`
 * is on a desktop): state, SIM, registration, signal, serving cell, data-session settings.
 * Read-only, over the service's control socket: this command never opens a modem port, so
 * there is never a second writer next to the service.
 *
 * The service's modem view (web/deps ModemView) may carry more than the dashboard shows; each
 * optional block below is printed when present and shown as '--' when not.
 */

export interface ModemDiagnostics extends ModemView {
  readonly manufacturer?: string;
  readonly firmware?: string;
  readonly control?: string;
  readonly registration?: {
    readonly state: string;
    readonly accessTech?: string;
    readonly tac?: number;
    readonly ci?: number;
    readonly rejectCause?: number;
    readonly activeTimeS?: number;
    readonly periodicTauS?: number;
  };
  readonly servingCell?: ServingCellReport;
  readonly session?: {
    readonly interface?: string;
    readonly ipv4?: { readonly address: string; readonly prefixLength?: number; readonly gateway?: string; readonly dns?: readonly string[]; readonly mtu?: number };
    readonly ipv6?: { readonly address: string; readonly prefixLength?: number; readonly gateway?: string; readonly dns?: readonly string[]; readonly mtu?: number };
  };
}

const NA = '--';
const v = (x: unknown, unit = ''): string => (x === undefined || x === null || x === '' ? NA : `${String(x)}${unit}`);
const hexOf = (n: number | undefined): string => (n === undefined ? NA : `0x${n.toString(16).toUpperCase()}`);

function cellLine(c: CellInfo): string {
  const parts = [
    c.rat.toUpperCase(),
    c.band ?? NA,
    c.channel === undefined ? undefined : `ch ${c.channel}`,
    c.bandwidthMHz === undefined ? undefined : `${c.bandwidthMHz} MHz`,
    c.pci === undefined ? undefined : `pci ${c.pci}`,
    c.mcc === undefined ? undefined : `plmn ${c.mcc}-${c.mnc ?? NA}`,
    c.tac === undefined ? undefined : `tac ${hexOf(c.tac)}`,
    c.lac === undefined ? undefined : `lac ${hexOf(c.lac)}`,
    c.cellId === undefined ? undefined : `cell ${hexOf(c.cellId)}`,
    c.rsrpDbm === undefined ? undefined : `rsrp ${c.rsrpDbm} dBm`,
    c.rsrqDb === undefined ? undefined : `rsrq ${c.rsrqDb} dB`,
    c.sinrDb === undefined ? undefined : `sinr ${c.sinrDb} dB`,
    c.rscpDbm === undefined ? undefined : `rscp ${c.rscpDbm} dBm`,
    c.ecioDb === undefined ? undefined : `ec/io ${c.ecioDb} dB`,
    c.rssiDbm === undefined ? undefined : `rssi ${c.rssiDbm} dBm`,
  ];
  return parts.filter((p) => p !== undefined).join(', ');
}

function family(label: string, addr: NonNullable<ModemDiagnostics['session']>['ipv4']): string[] {
  if (addr === undefined) return [];
  return [
    `${label} address: ${addr.address}${addr.prefixLength === undefined ? '' : `/${addr.prefixLength}`}`,
    `${label} gateway: ${v(addr.gateway)}`,
    `${label} dns: ${addr.dns === undefined || addr.dns.length === 0 ? NA : addr.dns.join(' ')}`,
    `${label} mtu: ${v(addr.mtu)}`,
  ];
}

/** The text `duocell modem` prints, in mmcli's sections. Pure, for tests. */
export function renderModem(m: ModemDiagnostics | null): string[] {
  if (m === null) return ['modem: none (this box has no modem configured)'];
  const sections: [string, string[]][] = [
    ['General', [`state: ${m.present ? m.state : 'absent'}`, `manufacturer: ${v(m.manufacturer)}`, `model: ${v(m.model)}`, `firmware: ${v(m.firmware)}`, `imei: ${v(m.imei)}`, `control: ${v(m.control)}`]],
    ['SIM', [`state: ${v(m.sim)}`]],
    [
      '3GPP',
      [
        `operator: ${v(m.operator)}`,
        `registration: ${v(m.registration?.state)}`,
        `access tech: ${v(m.registration?.accessTech ?? m.rat)}`,
        `tac: ${hexOf(m.registration?.tac)}`,
        `cell id: ${hexOf(m.registration?.ci)}`,
        `reject cause: ${v(m.registration?.rejectCause)}`,
        `psm: active ${v(m.registration?.activeTimeS, ' s')}, periodic tau ${v(m.registration?.periodicTauS, ' s')}`,
      ],
    ],
    ['Signal', [`rat: ${v(m.rat)}`, `band: ${v(m.band)}`, `rsrp: ${v(m.rsrp, ' dBm')}`, `rsrq: ${v(m.rsrq, ' dB')}`, `sinr: ${v(m.sinr, ' dB')}`, `rssi: ${v(m.rssiDbm, ' dBm')}`]],
    [
      'Serving cell',
      m.servingCell === undefined
        ? [NA]
        : [`mode: ${m.servingCell.mode}, ${m.servingCell.state} (from ${m.servingCell.source})`, ...m.servingCell.cells.map(cellLine)],
    ],
    [
      'Data session',
      [
        `apn: ${v(m.apn)}`,
        `interface: ${v(m.session?.interface)}`,
        ...(m.session?.ipv4 || m.session?.ipv6 ? [...family('ipv4', m.session.ipv4), ...family('ipv6', m.session.ipv6)] : [`addresses: ${m.addresses === undefined || m.addresses.length === 0 ? NA : m.addresses.join(' ')}`]),
      ],
    ],
  ];
  const w = Math.max(...sections.map(([s]) => s.length));
  const out: string[] = [];
  for (const [name, lines] of sections) {
    out.push('-'.repeat(w + 3 + 40));
    lines.forEach((l, i) => out.push(`${(i === 0 ? name : '').padEnd(w)} | ${l}`));
  }
  return out;
}

const help = `usage: duocell modem [--state-dir DIR] [--json]
       duocell modem at 'AT+CSQ' [--timeout MS] [--state-dir DIR] [--json]

The modem as the running service sees it (like mmcli -m 0): state, SIM, registration (with
the EMM reject cause and PSM timers when the modem reports them), signal, serving cell, and the
data session's settings. Read over the service's control socket: it never opens a modem port.
Exit 69 when duocell is not running or the box has no modem present.

\`modem at\` sends one AT command through the running service, which queues it with its own
AT commands on the same port (never two writers). Commands that would break the service's
session are refused with DC_MODEM_AT_REFUSED (exit 2): echo/format changes, reset, radio off,
PIN entry, the data session, registration URC settings, persistent configuration; their
queries (…?) are allowed. At most 256 characters, one command, timeout 1000..30000 ms
(default 5000). Exit 0 on OK, 1 on an error final result, 69 when duocell or the AT port is
not there.`;

async function runAt(args: readonly string[], ctx: CliContext, dir: (flags: Record<string, string | boolean>) => string): Promise<number> {
  const { flags, unknown, positional } = parseFlags(args, { 'state-dir': 'string', timeout: 'string' });
  const fail = (code: string, message: string, exit: number): number => {
    ctx.io.err(ctx.json ? JSON.stringify({ error: { code, message } }) : `duocell: ${code}: ${message}`);
    return exit;
  };
  if (unknown.length > 0 || positional.length !== 1) return fail('DC_USAGE', `usage: duocell modem at 'AT…' [--timeout MS] [--state-dir DIR]`, EXIT.USAGE);
  const t = flags.timeout;
  const timeoutMs = t === undefined ? 5000 : typeof t === 'string' && /^\d{1,6}$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1000 || timeoutMs > 30_000) return fail('DC_USAGE', '--timeout: an integer 1000..30000 (ms)', EXIT.USAGE);
  const sock = path.join(dir(flags), 'control.sock');
  let r: { status: number; body: unknown };
  try {
    r = await postModemAt(sock, positional[0]!, timeoutMs);
  } catch (e) {
    return fail('DC_SIM_STATE', `duocell is not running here (no answer on ${sock}): ${(e as Error).message}`, EXIT.UNAVAILABLE);
  }
  const body = r.body as { lines?: string[]; final?: string; finalText?: string; error?: { code: string; message: string } };
  if (body.error !== undefined) return fail(body.error.code, body.error.message, body.error.code === 'DC_MODEM_AT_REFUSED' ? EXIT.USAGE : r.status === 503 ? EXIT.UNAVAILABLE : EXIT.FAILED);
  if (ctx.json) ctx.io.out(JSON.stringify(body));
  else for (const l of [...(body.lines ?? []), body.final ?? '']) ctx.io.out(l);
  return body.final === 'OK' || body.final === 'CONNECT' ? EXIT.OK : EXIT.FAILED;
}

const modem: Command = {
  name: 'modem',
  summary: 'modem diagnostics: state, SIM, registration, signal, serving cell, data session',
  help,
  async run(args, ctx: CliContext) {
    if (args[0] === 'at') return runAt(args.slice(1), ctx, (f) => (f['state-dir'] as string | undefined) ?? ctx.env.DUOCELL_STATE_DIR ?? '/var/lib/duocell');
    const { flags, unknown } = parseFlags(args, { 'state-dir': 'string' });
    if (unknown.length > 0) {
      ctx.io.err(`duocell: unknown option ${unknown[0]}\n${help}`);
      return EXIT.USAGE;
    }
    const dir = (flags['state-dir'] as string | undefined) ?? ctx.env.DUOCELL_STATE_DIR ?? '/var/lib/duocell';
    const sock = path.join(dir, 'control.sock');
    let m: ModemDiagnostics | null;
    try {
      const s = (await readControl(sock, '/status')) as { modem?: ModemDiagnostics | null };
      m = s.modem ?? null;
    } catch (e) {
      const err = new DuocellError('DC_SIM_STATE', `duocell is not running here (no answer on ${sock}): ${(e as Error).message}`);
      ctx.io.err(ctx.json ? JSON.stringify({ error: err.toJSON() }) : `duocell: ${err.message}`);
      return EXIT.UNAVAILABLE;
    }
    if (ctx.json) ctx.io.out(JSON.stringify(m));
    else for (const l of renderModem(m)) ctx.io.out(l);
    return m !== null && m.present ? EXIT.OK : EXIT.UNAVAILABLE;
  },
};

export default modem;
