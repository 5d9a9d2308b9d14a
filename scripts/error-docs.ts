import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CODES } from '../src/core/codes.js';
import { httpStatus } from '../src/web/status.js';

/**
 * docs/errors.md, generated from src/core/codes.ts: every code, its meaning, and the HTTP
 * status the API answers it with, grouped by the section comments of codes.ts.
 * test/unit/web-errors.test.ts fails when the file on disk is not what this renders.
 *
 *   npm run build && node dist/scripts/error-docs.js --write     (regenerate)
 *   DUOCELL_WRITE_ERROR_DOCS=1 npx tap test/unit/web-errors.test.ts   (same, from the test)
 */

/** The repository root: the nearest directory above this module holding package.json. */
function repoRoot(): string {
  let dir = new URL('./', import.meta.url);
  for (let i = 0; i < 6; i++) {
    if (existsSync(fileURLToPath(new URL('package.json', dir)))) return fileURLToPath(dir);
    dir = new URL('../', dir);
  }
  return process.cwd();
}

export const CODES_SOURCE = `${repoRoot()}src/core/codes.ts`;
export const ERRORS_DOC = `${repoRoot()}docs/errors.md`;

/** Sections of codes.ts in order: the comment line above a group of codes names it. */
export function sections(source: string): Array<{ title: string; codes: string[] }> {
  const out: Array<{ title: string; codes: string[] }> = [];
  let cur: { title: string; codes: string[] } | undefined;
  for (const line of source.split('\n')) {
    const c = /^\s*\/\/\s*(.+?)\s*$/.exec(line);
    if (c !== null) {
      if (cur === undefined || cur.codes.length > 0) {
        cur = { title: c[1]!, codes: [] };
        out.push(cur);
      } else {
        cur.title += ` ${c[1]}`;
      }
      continue;
    }
    const k = /^\s*(DC_[A-Z0-9_]+)\s*:/.exec(line);
    if (k !== null && cur !== undefined) cur.codes.push(k[1]!);
  }
  return out.filter((s) => s.codes.length > 0);
}

const esc = (s: string) => s.replace(/\|/g, '\\|');

export function renderErrorDocs(source: string = readFileSync(CODES_SOURCE, 'utf8')): string {
  const lines: string[] = [
    '# Error codes',
    '',
    '<!-- Generated from src/core/codes.ts by scripts/error-docs.ts. Do not edit by hand:',
    '     npm run build && node dist/scripts/error-docs.js --write -->',
    '',
    'Every failure in duocell carries one of these stable codes. On the command line it is printed',
    'as `CODE: message`; the HTTP API answers with `{ "error": { "code": "DC_…", "message": "…" } }`',
    'and the status below (validation failures add `fields`, rate limits `retryAfterS` and a',
    '`Retry-After` header). Errors duocell found itself (timeouts, malformed input) have origin',
    '`local`; errors that a device, the kernel or a peer reported carry that origin and, where there',
    'is one, the errno or the device’s own code.',
    '',
  ];
  const known = new Set(Object.keys(CODES));
  const listed = new Set<string>();
  const table = (codes: string[]): void => {
    lines.push('| code | HTTP | meaning |', '|---|---|---|');
    for (const code of codes) {
      if (!known.has(code) || listed.has(code)) continue;
      listed.add(code);
      lines.push(`| \`${code}\` | ${httpStatus(code)} | ${esc(CODES[code as keyof typeof CODES])} |`);
    }
    lines.push('');
  };
  for (const s of sections(source)) {
    lines.push(`## ${s.title}`, '');
    table(s.codes);
  }
  const rest = [...known].filter((c) => !listed.has(c));
  if (rest.length > 0) {
    lines.push('## other', '');
    table(rest);
  }
  return lines.join('\n');
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const text = renderErrorDocs();
  if (process.argv.includes('--write')) {
    writeFileSync(ERRORS_DOC, text);
    process.stdout.write(`wrote ${ERRORS_DOC}\n`);
  } else if (process.argv.includes('--check')) {
    const cur = existsSync(ERRORS_DOC) ? readFileSync(ERRORS_DOC, 'utf8') : '';
    if (cur !== text) {
      process.stderr.write(`${ERRORS_DOC} is out of date: run with --write\n`);
      process.exitCode = 1;
    }
  } else {
    process.stdout.write(text);
  }
}
