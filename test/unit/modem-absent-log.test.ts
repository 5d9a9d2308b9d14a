import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// A box with its modem pulled probes again every 2 s for as long as it runs. The journal must
// show the first attempts and then one reminder every 150, not two lines per attempt.
t.test('with no modem, the probe loop logs its first attempts, then only a reminder every 150', async (t) => {
  const loader = new URL('../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href;
  const attempts = 320;
  const child = spawn(process.execPath, [`--import=${loader}`, fileURLToPath(new URL('./modem-absent-log-child.ts', import.meta.url)), String(attempts)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, DUOCELL_LOG_LEVEL: 'info', DUOCELL_LOG_FORMAT: 'json' },
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  t.equal(code, 0, 'the child ran its probes and stopped');
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; attempt?: number });
  const probeLoop = lines.filter((l) => /modem (absent|probing) → (absent|probing)/.test(l.msg) || /waiting before probing again/.test(l.msg));
  const reminders = lines.filter((l) => /still not found after/.test(l.msg));
  t.ok(probeLoop.length >= 3, `the first attempts are logged (${probeLoop.length} lines)`);
  t.ok(probeLoop.length <= 12, `and then the loop is quiet: ${probeLoop.length} lines for ${attempts} attempts (was 2 a probe)`);
  t.same(reminders.map((r) => r.attempt), [150, 300], 'one warn reminder every 150 attempts');
  t.ok(reminders.every((r) => r.level === 40), 'at warn level');
});
