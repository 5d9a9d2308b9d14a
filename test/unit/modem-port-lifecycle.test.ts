import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { PtyPort } from '../../src/sim/modem/pty.js';
import { CharDeviceTransport, SerialTransport, type ModemTransport } from '../../src/drivers/modem/transport.js';

/** Port lifecycle over a real pseudo-terminal (needs socat): close cancels the read for real. */
const why = spawnSync('socat', ['-V']).status === 0 ? false : 'socat not installed';

function nextData(tr: ModemTransport, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      tr.off('data', on);
      reject(new Error(`no data on ${tr.path} within ${ms} ms`));
    }, ms);
    const on = (b: Buffer): void => {
      clearTimeout(timer);
      tr.off('data', on);
      resolve(b.toString('latin1'));
    };
    tr.on('data', on);
  });
}

for (const [name, open] of [
  ['CharDeviceTransport', (p: string) => CharDeviceTransport.open(p)],
  ['SerialTransport', (p: string) => SerialTransport.open(p)],
] as const) {
  t.test(`${name}: a closed port leaves no read behind; the reopened port gets its own replies (needs socat)`, { skip: why }, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tport-'));
    const port = new PtyPort(path.join(dir, 'cdc-wdm0'));
    await port.appear();
    t.teardown(async () => {
      await port.vanish();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    // open and close several times (as failed probes do): each would leave a blocked read
    for (let i = 0; i < 3; i++) {
      const tr = await open(port.link);
      await tr.write('x');
      await tr.close();
      t.equal(tr.isOpen, false);
    }
    const tr = await open(port.link);
    t.teardown(() => tr.close());
    for (let i = 0; i < 3; i++) {
      const got = nextData(tr, 2000);
      port.write(`reply-${i}`);
      t.equal(await got, `reply-${i}`, `reply ${i} reaches the reopened port`);
    }
  });
}

t.test('CharDeviceTransport: the port vanishing closes the transport with DC_MODEM_PORT (needs socat)', { skip: why }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tport-'));
  const port = new PtyPort(path.join(dir, 'cdc-wdm0'));
  await port.appear();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const tr = await CharDeviceTransport.open(port.link);
  const closed = new Promise<{ code?: string } | undefined>((r) => tr.on('close', (e) => r(e)));
  await port.vanish();
  const e = await closed;
  t.equal(e?.code, 'DC_MODEM_PORT');
  t.equal(tr.isOpen, false);
});

t.test('a process holding an open CharDeviceTransport exits promptly after close (needs socat)', { skip: why }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tport-'));
  const port = new PtyPort(path.join(dir, 'cdc-wdm0'));
  await port.appear();
  t.teardown(async () => {
    await port.vanish();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const mod = path.resolve('src/drivers/modem/transport.ts');
  const script = `import { CharDeviceTransport } from ${JSON.stringify(mod)};
const tr = await CharDeviceTransport.open(${JSON.stringify(port.link)});
process.on('SIGTERM', () => void tr.close());
process.stdout.write('ready\\n');`;
  const child = spawn(process.execPath, ['--import=./node_modules/@tapjs/typescript/dist/esm/import.mjs', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && r()));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000); // ends a hang only: at load 20 the exit can take seconds
  const code = await exited;
  clearTimeout(timer);
  t.equal(code, 0, 'exited by itself once the port was closed (a blocked pool read would keep it alive)');
});
