import fs from 'node:fs';

/** Per-connection breakdown of a convert-trace.ts file: the median ms of each step. */
type Stamps = Partial<Record<'start' | 'connected' | 'first-up' | 'reply' | 'refused', number>>;

const by = new Map<string, Stamps>();
for (const l of fs.readFileSync(process.argv[2] ?? '', 'utf8').split('\n')) {
  if (l === '') continue;
  const m = JSON.parse(l) as { pid: number; id: number; stage: keyof Stamps; t: number };
  const k = `${m.pid}/${m.id}`;
  const s = by.get(k) ?? {};
  s[m.stage] = m.t;
  by.set(k, s);
}
const steps: Record<string, (s: Stamps) => number> = {
  'connect start -> connected (MPTCP handshake to the concentrator; ~0 with TFO)': (s) => s.connected! - s.start!,
  'connected -> first client byte sent on (negative: the bytes went with the Convert message)': (s) => s['first-up']! - s.connected!,
  'connected -> Convert reply parsed': (s) => s.reply! - s.connected!,
  'first client byte sent on -> reply parsed': (s) => s.reply! - s['first-up']!,
  'connect start -> reply parsed': (s) => s.reply! - s.start!,
};
const median = (xs: number[]): number => {
  const a = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
  return a.length === 0 ? NaN : a[a.length >> 1]!;
};
const done = [...by.values()].filter((s) => s.reply !== undefined);
process.stdout.write(`${done.length} connections answered, ${[...by.values()].filter((s) => s.refused !== undefined).length} refused\n`);
for (const [name, f] of Object.entries(steps)) {
  const xs = done.map(f).filter((x) => Number.isFinite(x));
  process.stdout.write(`${name}: median ${median(xs).toFixed(3)} ms (n=${xs.length})\n`);
}
