import fs from 'node:fs';
import path from 'node:path';
import { EXIT, type Command } from '../command.js';
import { DuocellError } from '../../core/errors.js';
import { readControl } from '../../web/control.js';
import { proxyViews } from '../../wiring/proxies.js';
import { parseStrict, str, usageError, withStore, STORE_FLAGS } from './subscribers.js';
import type { ProxyView } from '../../web/deps.js';

const help = `usage: duocell proxies [list] [--state-dir DIR] [--json]
       duocell proxies set FILE [--state-dir DIR]
       duocell proxies remove NAME [--state-dir DIR]

Candidate proxies (issue 15): concentrators (off-path) and the cell itself (on-path), with the
applications and subscriber policies each serves, and — from the running appliance — health,
RTT and sessions.

  list          the candidates (live health when duocell runs here, else the stored list)
  set FILE      replace the whole list with FILE's JSON array (or {"proxies": [...]}); a bad
                list (duplicate names, unknown types, unreachable addresses) is refused whole
                and the old list stays in force
  remove NAME   drop one candidate

A candidate: {"name": "site-a", "address": "192.0.2.10", "port": 5124, "protocol": "convert",
  "location": "cdn-east", "type": "off-path", "priority": 10, "weight": 1,
  "apps": [{"name": "video", "ports": [443], "prefixes": ["198.51.100.0/24"]}],
  "policies": ["premium"], "socks5": "192.0.2.10:1080"}
A SOCKS5-only candidate: {"name": "dante-east", "address": "192.0.2.30", "port": 1080,
  "protocol": "socks5", "auth": {"username": "cell-17", "password": "…"}} (the password is
  never listed; a list set again without it keeps the stored one)
An application may also match the TLS server name of the ClientHello (transparent listeners):
  {"name": "video", "ports": [443], "sni": ["video.example", "*.cdn.example"]}`;

function render(list: ProxyView[], out: (l: string) => void): void {
  const rows = list.map((p) => [
    p.name ?? p.id,
    p.type ?? 'off-path',
    `${p.address}:${p.port}`,
    p.location ?? '',
    String(p.priority),
    String(p.weight ?? 1),
    p.enabled === false ? 'disabled' : p.healthy ? 'healthy' : 'DOWN',
    p.rttMs === undefined ? '-' : p.rttMs.toFixed(1),
    String(p.sessions ?? 0),
    (p.apps ?? []).map((a) => a.name).join(',') || '*',
    (p.policies ?? []).join(',') || '*',
  ]);
  const head = ['NAME', 'TYPE', 'ENDPOINT', 'LOCATION', 'PRIO', 'WEIGHT', 'HEALTH', 'RTT_MS', 'SESSIONS', 'APPS', 'POLICIES'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  out(head.map((h, i) => h.padEnd(w[i]!)).join('  '));
  for (const r of rows) out(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
}

const proxies: Command = {
  name: 'proxies',
  summary: 'list or edit the candidate proxies (proxy selection)',
  help,
  async run(args, ctx) {
    const sub = args[0] !== undefined && !args[0].startsWith('-') ? args[0] : 'list';
    const rest = sub === args[0] ? args.slice(1) : args;
    if (sub === 'list') {
      const { flags } = parseStrict(rest, STORE_FLAGS, { min: 0, max: 0, usage: 'duocell proxies list [--state-dir DIR]' });
      const dir = str(flags, 'state-dir') ?? ctx.env.DUOCELL_STATE_DIR ?? '/var/lib/duocell';
      let list: ProxyView[] | undefined;
      try {
        list = (await readControl(path.join(dir, 'control.sock'), '/proxies', 2000)) as ProxyView[];
      } catch {
        list = undefined; // not running here: the stored list
      }
      if (list === undefined) {
        return withStore(ctx, flags, (store) => {
          const l = proxyViews(store);
          if (ctx.json) ctx.io.out(JSON.stringify(l));
          else render(l, (x) => ctx.io.out(x));
          return EXIT.OK;
        });
      }
      if (ctx.json) ctx.io.out(JSON.stringify(list));
      else render(list, (x) => ctx.io.out(x));
      return EXIT.OK;
    }
    if (sub === 'set') {
      const { flags, positional } = parseStrict(rest, STORE_FLAGS, { min: 1, max: 1, usage: 'duocell proxies set FILE' });
      let doc: unknown;
      try {
        doc = JSON.parse(fs.readFileSync(positional[0]!, 'utf8'));
      } catch (e) {
        throw new DuocellError('DC_USAGE', `cannot read ${positional[0]}: ${(e as Error).message}`);
      }
      const list = Array.isArray(doc) ? doc : (doc as { proxies?: unknown } | null)?.proxies;
      if (!Array.isArray(list)) throw usageError('FILE must hold a JSON array of candidates or {"proxies": [...]}');
      return withStore(ctx, flags, (store) => {
        const r = store.replaceProxies(list, 'cli');
        ctx.io.out(ctx.json ? JSON.stringify(r) : `${r.length} candidate proxies in force`);
        return EXIT.OK;
      });
    }
    if (sub === 'remove') {
      const { flags, positional } = parseStrict(rest, STORE_FLAGS, { min: 1, max: 1, usage: 'duocell proxies remove NAME' });
      return withStore(ctx, flags, (store) => {
        const p = store.listProxies().find((x) => x.name === positional[0]);
        if (p === undefined) throw new DuocellError('DC_STORE_NOT_FOUND', `no candidate proxy ${positional[0]}`);
        store.removeProxy(p.address, p.port, 'cli');
        ctx.io.out(ctx.json ? JSON.stringify({ removed: p.name }) : `removed ${p.name}`);
        return EXIT.OK;
      });
    }
    throw usageError(help);
  },
};
export default proxies;
