#!/usr/bin/env node
// The duocell command: runs the compiled CLI (npm start / npm test build it first).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { process.exitCode = code ?? 0; },
  (e) => { console.error(e?.stack ?? String(e)); process.exitCode = 70; },
);
