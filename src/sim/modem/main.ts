import fs from 'node:fs';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { ModemSimulator, type ModemSimConfig, type SimAction } from './sim.js';

/**
 * Standalone modem simulator process:
 *
 *   node dist/src/sim/modem/main.js --at-link /run/duocell/sim/ttyUSB2 --qmi-link /run/duocell/sim/cdc-wdm0 \
 *        [--script FILE] [--pin 1234]
 *
 * The script is JSON: { "config": { …ModemSimConfig without links… },
 *                       "steps": [ { "afterMs": 5000, "action": "deregister" }, … ] }
 * Control lines on stdin (one JSON SimAction each, e.g. {"action":"vanish"}) act immediately.
 * Every event is one JSON line on stdout, e.g.
 *   {"event":"wds-started","family":4,"address":"10.64.12.7","prefixLength":30,"gateway":…}
 * which is what the simulated board uses to bring wwan0 up with that address.
 */

interface Script {
  config?: Partial<ModemSimConfig>;
  steps?: (SimAction & { afterMs: number })[];
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

export async function main(): Promise<number> {
  const atLink = arg('at-link');
  const qmiLink = arg('qmi-link');
  if (!atLink || !qmiLink) {
    process.stderr.write('usage: main.js --at-link PATH --qmi-link PATH [--script FILE] [--pin PIN]\n');
    return 2;
  }
  const scriptPath = arg('script');
  const script: Script = scriptPath ? (JSON.parse(fs.readFileSync(scriptPath, 'utf8')) as Script) : {};
  const pin = arg('pin');
  const sim = new ModemSimulator({ ...script.config, atLink, qmiLink, ...(pin ? { pin } : {}) });
  const out = (event: string, data: object = {}): void => {
    process.stdout.write(`${JSON.stringify({ event, ...data })}\n`);
  };
  sim.on('wds-started', (e: object) => out('wds-started', e));
  sim.on('wds-stopped', (e: object) => out('wds-stopped', e));
  sim.on('registration', (e: object) => out('registration', e));
  sim.on('ports', (e: object) => out('ports', e));
  await sim.start();
  out('ready', { atLink, qmiLink });
  for (const s of script.steps ?? []) {
    setTimeout(() => void sim.act(s).catch((e: Error) => out('error', { message: e.message })), s.afterMs).unref();
  }
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (l) => {
    if (l.trim() === '') return;
    try {
      void sim.act(JSON.parse(l) as SimAction).catch((e: Error) => out('error', { message: e.message }));
    } catch (e) {
      out('error', { message: `bad control line: ${(e as Error).message}` });
    }
  });
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  rl.close();
  await sim.stop();
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`modem simulator: ${e.message}\n`);
      process.exit(1);
    },
  );
}
