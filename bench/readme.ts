import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuocellError } from '../src/core/errors.js';
import { checkEntries, type Entry } from './results.js';
import { benchRoot } from './root.js';

/**
 * README.md's figures table, generated from bench/results/latest.json (never typed by hand):
 * `node dist/bench/readme.js` rewrites the block between BEGIN and END; `--check` only says
 * whether it differs (exit 1). test/unit/bench-readme.test.ts fails when they drift apart.
 *
 * One row per figure of the realistic world (lte + wlan) or of a world of its own (loopback…),
 * with the same figure in the ideal world beside it.
 */
const ROOT = benchRoot();
export const README = path.join(ROOT, 'README.md');
export const BEGIN = '<!-- bench:begin (generated from bench/results/latest.json by `node dist/bench/readme.js`; do not edit) -->';
export const END = '<!-- bench:end -->';

/** A figure for the table: 3 significant digits, thousands separated. */
export function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  const s = a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : a === 0 ? '0' : x.toPrecision(2);
  const [int, frac] = s.split('.');
  const neg = int!.startsWith('-');
  const digits = neg ? int!.slice(1) : int!;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${neg ? '−' : ''}${grouped}${frac === undefined ? '' : '.' + frac}`;
}

const cell = (s: string): string => s.replaceAll('|', '\\|').replaceAll('\n', ' ');

function figure(e: Entry): string {
  if (e.error !== undefined) return `**failed**: ${cell(e.error.length > 140 ? e.error.slice(0, 140) + '…' : e.error)}`;
  const range = e.runs > 1 ? ` (${fmt(e.min)}–${fmt(e.max)}, ${e.runs} runs)` : '';
  return `${fmt(e.value)} ${cell(e.unit)}${range}`;
}

function baseline(e: Entry): string {
  if (e.baseline === undefined) return e.error === undefined && e.baselineName !== '' ? `— ${cell(e.baselineName)}` : '—';
  const n = e.baselineRuns ?? 1;
  const range = n > 1 && e.baselineMin !== undefined ? ` (${fmt(e.baselineMin)}–${fmt(e.baselineMax)})` : '';
  return `${fmt(e.baseline)}${range} ${cell(e.baselineName)}`;
}

function met(e: Entry): string {
  if (e.error !== undefined) return 'no figure';
  if (e.met === undefined) return e.target === undefined ? '' : '—';
  return e.met ? 'yes' : '**no**';
}

function ideal(e: Entry | undefined): string {
  if (e === undefined) return '';
  if (e.error !== undefined) return 'failed';
  return `${fmt(e.value)}${e.baseline === undefined ? '' : ` / ${fmt(e.baseline)}`}${e.ratio === undefined ? '' : ` (${fmt(e.ratio)})`}`;
}

function measured(e: Entry): string {
  const day = e.date.slice(0, 10);
  const s = `${e.commit} ${day}, ${e.pm} PM`;
  return e.stale === true ? `${s}, **stale**` : s;
}

/** The Markdown of the block (without the markers). */
export function renderTable(entries: readonly Entry[]): string {
  const key = (e: Entry): string => `${e.group}\u0000${e.name}`;
  const idealOf = new Map(entries.filter((e) => e.links === 'ideal').map((e) => [key(e), e]));
  const hasReal = new Set(entries.filter((e) => e.links !== 'ideal').map(key));
  const rows = entries.filter((e) => e.links !== 'ideal' || !hasReal.has(key(e)));
  const lines = [
    '| benchmark | links | duocell: median (min–max) | same-run baseline: median (min–max) | ratio | target | met | ideal links: duocell / baseline (ratio) | measured at |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const e of rows) {
    const beside = e.links === 'ideal' ? undefined : idealOf.get(key(e));
    lines.push(`| ${cell(e.name)} | ${cell(e.links)} | ${figure(e)} | ${baseline(e)} | ${e.ratio === undefined ? '—' : fmt(e.ratio)} | ${cell(e.target ?? '')} | ${met(e)} | ${ideal(beside)} | ${measured(e)} |`);
  }
  const stale = entries.filter((e) => e.stale === true).length;
  const notes = rows.filter((e) => e.note !== undefined).map((e) => `- ${cell(e.name)} (${cell(e.links)}): ${cell(e.note!)}`);
  return [
    ...lines,
    '',
    `${entries.length} entries; ${stale === 0 ? 'none stale' : `${stale} stale (measured before code that can change them; re-run their group)`}. Kernel ${[...new Set(entries.map((e) => e.kernel))].join(', ')}.`,
    ...(notes.length > 0 ? ['', 'Notes:', '', ...notes] : []),
  ].join('\n');
}

/** README text with the block between the markers replaced by `table`. */
export function replaceBlock(readme: string, table: string): string {
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b < 0 || e < 0 || e < b) throw new DuocellError('DC_CONFIG_INVALID', `README.md lacks the markers ${BEGIN} … ${END}`);
  return `${readme.slice(0, b + BEGIN.length)}\n${table}\n${readme.slice(e)}`;
}

/** The block as README.md has it now (between the markers, trimmed of the framing newlines). */
export function currentBlock(readme: string): string {
  const b = readme.indexOf(BEGIN);
  const e = readme.indexOf(END);
  if (b < 0 || e < 0 || e < b) throw new DuocellError('DC_CONFIG_INVALID', `README.md lacks the markers ${BEGIN} … ${END}`);
  return readme.slice(b + BEGIN.length, e).replace(/^\n/, '').replace(/\n$/, '');
}

export function readLatest(file = path.join(ROOT, 'bench/results/latest.json')): Entry[] {
  return checkEntries(JSON.parse(fs.readFileSync(file, 'utf8')) as unknown, file);
}

/** Rewrite README.md from latest.json; true when it changed. */
export function updateReadme(readmeFile = README, latestFile?: string): boolean {
  const text = fs.readFileSync(readmeFile, 'utf8');
  const next = replaceBlock(text, renderTable(readLatest(latestFile)));
  if (next === text) return false;
  fs.writeFileSync(readmeFile, next);
  return true;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv.includes('--check')) {
    const text = fs.readFileSync(README, 'utf8');
    const same = currentBlock(text) === renderTable(readLatest());
    process.stdout.write(same ? 'README.md figures match bench/results/latest.json\n' : 'README.md figures differ from bench/results/latest.json: run node dist/bench/readme.js\n');
    process.exitCode = same ? 0 : 1;
  } else {
    process.stdout.write(updateReadme() ? 'README.md figures rewritten\n' : 'README.md figures already current\n');
  }
}
