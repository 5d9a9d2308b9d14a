import { pathToFileURL } from 'node:url';
import { isDuocellError } from '../../src/core/errors.js';
import { normalizeProxies } from '../../src/store/validate.js';
import { ProxySelector } from '../../src/services/proxy/selection.js';
import { prng } from './convert.js';

/**
 * Fuzz the candidate-proxy list parser (store/validate.ts normalizeProxies: what the web PUT,
 * the CLI, OTA bundles and board defaults feed): valid lists, mutated ones and junk. Checked on
 * every input: a rejection is a DuocellError DC_STORE_INVALID naming a field; an accepted list
 * normalises to itself (idempotent), has unique names and endpoints, and a selector built on it
 * chooses without throwing. Anything else is a bug and is thrown.
 */

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const JUNK: unknown[] = [null, undefined, 0, -1, 1.5, 70000, '', 'x', '::', '0.0.0.0', '239.0.0.1', 'ff02::1', '10.0.0.0/8', [], {}, true, 'a'.repeat(200), '__proto__', { name: 'x' }, [1, 2], NaN];

function addr(r: () => number): string {
  return int(r, 3) === 0 ? `2001:db8::${int(r, 65536).toString(16)}` : `192.0.2.${1 + int(r, 254)}`;
}

function candidate(r: () => number, i: number): Record<string, unknown> {
  const c: Record<string, unknown> = { name: `c${i}`, address: addr(r), port: 1 + int(r, 65535), protocol: pick(r, ['convert', 'socks5']) };
  if (r() < 0.5) c.type = pick(r, ['on-path', 'off-path']);
  if (r() < 0.5) c.priority = int(r, 2001) - 1000;
  if (r() < 0.5) c.weight = int(r, 1001);
  if (r() < 0.3) c.location = pick(r, ['site a', 'cdn-east', '']);
  if (r() < 0.3) c.socks5 = `${addr(r).includes(':') ? `[${addr(r)}]` : addr(r)}:${1 + int(r, 65535)}`;
  if (r() < 0.4) c.apps = [{ name: 'video', ports: [443], prefixes: ['198.51.100.0/24'] }, { name: 'web', ports: [80, 8080] }, { name: 'tv', ports: [443], sni: ['TV.example', '*.cdn.example'] }].slice(int(r, 2), 1 + int(r, 3));
  if (r() < 0.3) c.policies = ['default', 'premium'].slice(0, 1 + int(r, 2));
  return c;
}

function mutate(r: () => number, v: unknown, depth = 0): unknown {
  if (depth > 3 || v === null || typeof v !== 'object') return r() < 0.5 ? pick(r, JUNK) : v;
  if (Array.isArray(v)) {
    const a = [...v];
    if (a.length > 0 && r() < 0.6) a[int(r, a.length)] = mutate(r, a[int(r, a.length)], depth + 1);
    if (r() < 0.2) a.push(a.length > 0 ? structuredClone(a[0]) : pick(r, JUNK)); // duplicates
    return a;
  }
  const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  const keys = Object.keys(o);
  if (r() < 0.2) o[pick(r, ['colour', 'sni', 'apps', 'type', 'name'])] = pick(r, JUNK);
  else if (keys.length > 0) {
    const k = pick(r, keys);
    if (r() < 0.2) delete o[k];
    else o[k] = mutate(r, o[k], depth + 1);
  }
  return o;
}

export async function fuzz(iterations: number, seed = 1): Promise<{ iterations: number; accepted: number; rejected: Record<string, number> }> {
  const r = prng(seed);
  const rejected: Record<string, number> = {};
  let accepted = 0;
  for (let i = 0; i < iterations; i++) {
    const valid = Array.from({ length: int(r, 4) }, (_, j) => candidate(r, j));
    const input = r() < 0.3 ? valid : r() < 0.95 ? mutate(r, valid) : pick(r, JUNK);
    let out;
    try {
      out = normalizeProxies(input);
    } catch (e) {
      if (!isDuocellError(e) || e.code !== 'DC_STORE_INVALID' || typeof e.detail.field !== 'string') throw new Error(`not a coded refusal for ${JSON.stringify(input)}: ${String(e)}`);
      rejected[e.code] = (rejected[e.code] ?? 0) + 1;
      continue;
    }
    accepted++;
    const again = normalizeProxies(JSON.parse(JSON.stringify(out)));
    if (JSON.stringify(again) !== JSON.stringify(out)) throw new Error(`not idempotent: ${JSON.stringify(out)}`);
    if (new Set(out.map((p) => p.name)).size !== out.length) throw new Error('duplicate names accepted');
    const sel = new ProxySelector({ candidates: () => out, probe: async () => 1 });
    const port = pick(r, [80, 443, 8080]);
    const policy = r() < 0.5 ? 'premium' : null;
    sel.choose({ policy, address: r() < 0.5 ? '198.51.100.9' : '2001:db8::1', port, ...(r() < 0.5 ? { sni: pick(r, ['tv.example', 'a.cdn.example', 'x.example']) } : {}) });
    if (sel.needsSni(policy, port) && !sel.sniPort(port)) throw new Error('needsSni on a port no sni application lists');
    if (i % 5000 === 4999) await new Promise((res) => setImmediate(res));
  }
  return { iterations, accepted, rejected };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 100_000);
  const t0 = Date.now();
  const res = await fuzz(n, Number(process.argv[3] ?? 1));
  console.log(JSON.stringify({ ...res, ms: Date.now() - t0 }));
}
