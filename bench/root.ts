import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root, from bench/ (TypeScript as is) or dist/bench/ (compiled) alike. */
export function benchRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let d = from; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'bench'))) return d;
    if (path.dirname(d) === d) return path.resolve(from, '..');
  }
}
