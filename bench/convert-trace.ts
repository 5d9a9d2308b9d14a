import diagnostics from 'node:diagnostics_channel';
import fs from 'node:fs';
import { CONVERT_TRACE_CHANNEL } from '../src/services/proxy/convert-client.js';

/**
 * Loaded into a duocell process to record the Convert client's per-connection stamps
 * (services/proxy/convert-client.ts, diagnostics channel duocell:convert-client) as JSON lines in
 * $CONVERT_TRACE_FILE; nothing happens without it. For a bench run (the appliances inherit the
 * environment):
 *   CONVERT_TRACE_FILE=/tmp/t.jsonl NODE_OPTIONS=--import=$PWD/dist/bench/convert-trace.js \
 *     BENCH_RUNS=1 BENCH_LINKS=ideal node dist/bench/run.js convert
 *   node dist/bench/convert-trace-summary.js /tmp/t.jsonl
 */
const file = process.env['CONVERT_TRACE_FILE'];
if (file !== undefined && file !== '') {
  const lines: string[] = [];
  const flush = (): void => {
    if (lines.length > 0) fs.appendFileSync(file, lines.splice(0).join(''));
  };
  diagnostics.subscribe(CONVERT_TRACE_CHANNEL, (m) => {
    lines.push(JSON.stringify({ pid: process.pid, ...(m as object) }) + '\n');
    if (lines.length >= 64) flush();
  });
  setInterval(flush, 500).unref();
  process.on('exit', flush);
}
